"""The accounts' root fields."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from api.accounts.types import User
from api.core.dataloader import then


@strawberry.field(description="The logged-in account; null when anonymous.")
def me(info: Info) -> User | None:
    viewer = info.context.viewer
    return User.from_row(viewer) if viewer else None


@strawberry.field(description="A public profile by username (as at sign-up: case is ignored).")
def user(
    info: Info,
    username: Annotated[str, strawberry.argument(description="The login name.")],
) -> User | None:
    return then(info.context.loaders.user_by_username.load(username.strip().lower()), _user_or_none)


def _user_or_none(row: Any) -> User | None:
    return None if row is None else User.from_row(row)
