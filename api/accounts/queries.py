"""The accounts' root fields."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.accounts.types import User


@strawberry.field(description="The logged-in account; null when anonymous.")
def me(info: Info) -> User | None:
    viewer = info.context.viewer
    return User.from_row(viewer) if viewer else None
