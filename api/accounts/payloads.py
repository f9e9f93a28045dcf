"""The accounts' mutation payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.accounts.types import User
from api.core.refusals import UserError
from db import models


@strawberry.type(description="The result of signUp, logIn and changePassword.")
class AuthPayload:
    token: str | None = strawberry.field(
        description="The bearer token: send `Authorization: Bearer <token>`. Shown once."
    )
    expires_at: datetime | None = strawberry.field(description="When the token stops working.")
    user: User | None = strawberry.field(description="The account.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


def auth_payload(token: str, expires_at: datetime, user: models.User) -> AuthPayload:
    """The payload of a session issued (or kept) for ``user``."""
    return AuthPayload(token=token, expires_at=expires_at, user=User.from_row(user), errors=[])


def auth_error(error: UserError) -> AuthPayload:
    """The payload of a refused account mutation."""
    return AuthPayload(token=None, expires_at=None, user=None, errors=[error])
