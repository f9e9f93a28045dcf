"""Business refusals raised by domain code; resolvers turn them into ``UserError`` payloads.

A refusal means nothing changed: domain functions raise it before writing or inside the
transaction they roll back.
"""

from __future__ import annotations


class Refusal(Exception):
    """An expected "no" with an ``ErrorCode`` name, a message and the input field at fault."""

    def __init__(
        self,
        code: str,
        message: str,
        field: list[str] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_seconds = retry_after_seconds


def validation(message: str, *field: str) -> Refusal:
    """A VALIDATION refusal for ``field`` (a path into the input)."""
    return Refusal("VALIDATION", message, list(field) or None)


def not_found(message: str, *field: str) -> Refusal:
    """A NOT_FOUND refusal."""
    return Refusal("NOT_FOUND", message, list(field) or None)
