"""Error codes and masking: every error a client sees has an ``extensions.code``; anything
unexpected is logged and becomes ``Internal server error.``.

``ErrorCodes`` applies the rule to every result, whichever transport carries it; the HTTP view
and the websocket server call ``format_errors`` themselves for errors raised outside the
operation. The hook is synchronous: an async hook would make every field async (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from graphql.error import GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from tortoise.exceptions import ValidationError as TortoiseValidationError

from api.core.errors import ApiError
from db.health import is_database_down
from logs import get_logger, truncate

logger = get_logger("agora.errors")

MASKED_MESSAGE = "Internal server error."
# graphql-core's wording for a value that doesn't fit its type (a literal or a variable): those
# are malformed arguments (BAD_USER_INPUT), not malformed documents.
_INPUT_ERROR_MARKERS = (
    "got invalid value",
    "cannot represent",
    "Expected value of type",
    "Expected type",
    "of required type",
    "was not provided",
)


def _api_error(error: BaseException | None) -> ApiError | None:
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ApiError):
            return error
        error = getattr(error, "original_error", None) or error.__cause__
        seen += 1
    return None


def format_error(error: GraphQLError) -> GraphQLError:
    """Give ``error`` its ``extensions.code``; mask anything unexpected (and log it)."""
    extensions = dict(error.extensions or {})
    if "code" in extensions and error.original_error is None:
        return error
    api_error = _api_error(error.original_error)
    if api_error is not None:
        message = error.message
        if error.path is not None or isinstance(error.original_error, ApiError):
            message = api_error.message
        return rewritten(
            error, message, {**api_error.extensions, **extensions, "code": api_error.code}
        )
    if isinstance(error, GraphQLSyntaxError):
        code = "QUERY_TOO_COMPLEX" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
        return _with_code(error, code)
    if error.original_error is None or isinstance(error.original_error, GraphQLError):
        # Document validation and variable coercion: readable as graphql-core wrote them.
        input_error = any(marker in error.message for marker in _INPUT_ERROR_MARKERS)
        return _with_code(error, "BAD_USER_INPUT" if input_error else "GRAPHQL_VALIDATION_FAILED")
    if error.path is None and any(marker in error.message for marker in _INPUT_ERROR_MARKERS):
        # A literal that fails its scalar during validation with a Python error (an integer of
        # 5,000 digits): the client's input, said as graphql-core says it.
        return rewritten(error, truncate(error.message, 500), {"code": "BAD_USER_INPUT"})
    where = ".".join(str(p) for p in error.path or []) or "(operation)"
    original = error.original_error
    if is_database_down(original):
        logger.warning("database unavailable at %s: %s", where, truncate(repr(original)))
        return rewritten(
            error, "The database is unavailable; retry shortly.", {"code": "SERVICE_UNAVAILABLE"}
        )
    if isinstance(original, TortoiseValidationError):
        # A value the model refuses (longer than its column, say) that no resolver checked
        # first: still the client's input, never an internal error.
        logger.warning("unchecked input at %s: %s", where, truncate(str(original)))
        return rewritten(
            error,
            "A value is not acceptable for this field (too long, perhaps).",
            {"code": "BAD_USER_INPUT"},
        )
    logger.error(
        "unexpected error at %s: %s",
        where,
        error.message,
        exc_info=(type(original), original, original.__traceback__),
    )
    return rewritten(error, MASKED_MESSAGE, {"code": "INTERNAL_SERVER_ERROR"})


def rewritten(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    """``error`` at the same place, with another message and extensions."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    return rewritten(error, error.message, {**(error.extensions or {}), "code": code})


def format_errors(errors: list[GraphQLError] | None) -> list[GraphQLError] | None:
    """``format_error`` over a result's errors."""
    if not errors:
        return errors
    return [format_error(error) for error in errors]


class ErrorCodes(SchemaExtension):
    """Applies ``format_error`` to every result, whichever transport carries it."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = format_errors(result.errors)
