"""Refusals as payload data: the ``ErrorCode`` enum (generated from the domain's codes), the
``UserError`` type and the mapping of a domain ``Refusal`` onto it."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry
from graphql import GraphQLFieldResolver, GraphQLSchema

import metrics
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


# -- Operations: metrics ------------------------------------------------------------------------

# Set on a wrapped resolver, so a schema wrapped twice counts once: the mutation field's name
# and the resolver it wraps (an executor calling that resolver itself counts with
# ``count_refusals_in`` / ``counted_when_done``, as the wrapper would).
COUNTED = "_agora_counts_refusals"


def count_refusals(schema: GraphQLSchema) -> None:
    """Count every ``UserError`` a mutation returns in ``agora_refusals_total`` (by the
    mutation's field name and the code), whichever way the payload was built: each Mutation
    field's resolver of ``schema`` is wrapped once, so no mutation can forget to.

    Both label values are bounded by the schema: its mutation fields and ``ErrorCode``.
    """
    mutation = schema.mutation_type
    if mutation is None:
        return
    for name, field in mutation.fields.items():
        if field.resolve is not None and counted_resolver(field.resolve) is None:
            field.resolve = _counting(name, field.resolve)


def counted_resolver(resolve: Any) -> tuple[str, GraphQLFieldResolver] | None:
    """The (field name, wrapped resolver) of a resolver ``count_refusals`` wrapped, or None."""
    wrapped = getattr(resolve, COUNTED, None)
    return wrapped if isinstance(wrapped, tuple) else None


def _counting(name: str, resolve: GraphQLFieldResolver) -> GraphQLFieldResolver:
    def counted(source: Any, info: Any, **arguments: Any) -> Any:
        result = resolve(source, info, **arguments)
        if inspect.isawaitable(result):
            return counted_when_done(name, result)
        count_refusals_in(name, result)
        return result

    setattr(counted, COUNTED, (name, resolve))
    return counted


async def counted_when_done(name: str, result: Awaitable[Any]) -> Any:
    """``result``'s payload, once awaited, with its refusals counted under ``name``."""
    payload = await result
    count_refusals_in(name, payload)
    return payload


def count_refusals_in(name: str, payload: Any) -> None:
    """Count the ``UserError``s of mutation ``name``'s ``payload`` (none: nothing)."""
    errors = getattr(payload, "errors", None)
    if not isinstance(errors, list):
        return
    for error in errors:
        if isinstance(error, UserError):
            code = getattr(error.code, "value", error.code)
            metrics.REFUSALS.labels(name, str(code)).inc()
