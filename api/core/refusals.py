"""Refusals as payload data: the ``ErrorCode`` enum (generated from the domain's codes), the
``UserError`` type and the mapping of a domain ``Refusal`` onto it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

import strawberry

from refusals import Refusal, RefusalCode

T = TypeVar("T")
P = TypeVar("P")

# Generated from the domain's codes: their names, order and descriptions are the schema's.
# Type checkers can't follow an Enum built from a mapping; to them it is the domain's enum.
if TYPE_CHECKING:
    from refusals import RefusalCode as ErrorCode
else:
    ErrorCode = strawberry.enum(
        Enum(
            "ErrorCode",
            {
                code.name: strawberry.enum_value(code.value, description=code.description)
                for code in RefusalCode
            },
        ),
        description="Why a mutation was refused.",
    )


@strawberry.type(description="A business refusal: nothing changed.")
class UserError:
    code: ErrorCode = strawberry.field(description="What kind of refusal.")
    message: str = strawberry.field(description="A sentence to show the user.")
    field: list[str] | None = strawberry.field(
        description='The input field at fault, as a path (e.g. ["body"]), if one is.'
    )
    retry_after_seconds: int | None = strawberry.field(
        description="With RATE_LIMITED: seconds until the next attempt can succeed."
    )


def user_error(refusal: Refusal) -> UserError:
    """The payload form of a domain refusal."""
    return UserError(
        code=ErrorCode[refusal.code],
        message=refusal.message,
        field=refusal.field,
        retry_after_seconds=refusal.retry_after_seconds,
    )


async def payload_of(
    call: Awaitable[T], success: Callable[[T], P], refused: Callable[[UserError], P]
) -> P:
    """``success(await call)``, or ``refused(...)`` with the ``UserError`` of its refusal."""
    try:
        result = await call
    except Refusal as refusal:
        return refused(user_error(refusal))
    return success(result)
