"""Errors raised as GraphQL errors, each with its ``extensions.code``.

Business refusals of mutations are not here: they are ``UserError`` values in payloads.
These are the request-level kinds of API.md's "one rule for each kind".
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError


class ApiError(Exception):
    """An expected error whose message is safe to show; ``code`` goes to ``extensions.code``."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions

    def formatted(self) -> dict[str, Any]:
        """As an entry of a response's ``errors``."""
        return {"message": self.message, "extensions": {**self.extensions, "code": self.code}}


class BadUserInput(ApiError):
    """A malformed argument: a bad ID, cursor, scalar or page size."""

    code = "BAD_USER_INPUT"


class Unauthenticated(ApiError):
    """The field needs a logged-in viewer."""

    code = "UNAUTHENTICATED"


class Forbidden(ApiError):
    """The viewer is logged in but may not see or do this."""

    code = "FORBIDDEN"


class NotFound(ApiError):
    """A well-formed ID or slug of nothing, where null is not an answer (mutations)."""

    code = "NOT_FOUND"


class QueryTooComplex(ApiError):
    """The document exceeds a query limit (depth, tokens, aliases, nodes)."""

    code = "QUERY_TOO_COMPLEX"


class ResponseTooLarge(ApiError):
    """The response outgrew its bound during execution: answered with ``data: null``."""

    code = "RESPONSE_TOO_LARGE"


class StreamingTransportRequired(ApiError):
    """A subscription sent over plain HTTP: HTTP 400, use the websocket."""

    code = "STREAMING_TRANSPORT_REQUIRED"


class Refused(ApiError):
    """A query's business refusal, carrying the ErrorCode the mutation would have given."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message, **extensions)
        self.code = code


def graphql_error(error: ApiError) -> GraphQLError:
    """A GraphQLError carrying ``error``'s code, for places that report rather than raise."""
    return GraphQLError(
        error.message, original_error=error, extensions={"code": error.code, **error.extensions}
    )
