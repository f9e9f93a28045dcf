"""Business refusals raised by domain code; resolvers turn them into ``UserError`` payloads.

A refusal means nothing changed: domain functions raise it before writing or inside the
transaction they roll back. :class:`RefusalCode` is the whole list of reasons; the GraphQL
``ErrorCode`` enum is generated from it (names, order and descriptions), so a new code is added
here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum


class RefusalCode(StrEnum):
    """Why the domain said no. The order and descriptions are printed in the API's schema."""

    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    USERNAME_TAKEN = "USERNAME_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    INSUFFICIENT_SHARES = "INSUFFICIENT_SHARES"
    MARKET_NOT_OPEN = "MARKET_NOT_OPEN"
    SLIPPAGE_EXCEEDED = "SLIPPAGE_EXCEEDED"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"

    @property
    def description(self) -> str:
        """One sentence for API users on what the code means."""
        return DESCRIPTIONS[self]


DESCRIPTIONS: dict[RefusalCode, str] = {
    RefusalCode.VALIDATION: "An input is not acceptable.",
    RefusalCode.NOT_FOUND: "A referenced object is missing.",
    RefusalCode.RATE_LIMITED: "Too many attempts; see retryAfterSeconds.",
    RefusalCode.USERNAME_TAKEN: "Pick another username.",
    RefusalCode.INVALID_CREDENTIALS: "Wrong username or password.",
    RefusalCode.INSUFFICIENT_FUNDS: "The wallet holds less than the trade costs.",
    RefusalCode.INSUFFICIENT_SHARES: "The position holds fewer shares than the sale.",
    RefusalCode.MARKET_NOT_OPEN: "The market is closed, resolved or cancelled.",
    RefusalCode.SLIPPAGE_EXCEEDED: "The price moved past the trade's guard.",
    RefusalCode.IDEMPOTENCY_CONFLICT: "The key was used for a different request.",
}


class Refusal(Exception):
    """An expected "no": a :class:`RefusalCode`, a message and the input field at fault."""

    def __init__(
        self,
        code: RefusalCode,
        message: str,
        field: list[str] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        # A plain string would slip past the enum and past ErrorCode; say so at the raise.
        self.code = RefusalCode(code)
        self.message = message
        self.field = field
        self.retry_after_seconds = retry_after_seconds


def validation(message: str, *field: str) -> Refusal:
    """A VALIDATION refusal for ``field`` (a path into the input)."""
    return Refusal(RefusalCode.VALIDATION, message, list(field) or None)


def not_found(message: str, *field: str) -> Refusal:
    """A NOT_FOUND refusal."""
    return Refusal(RefusalCode.NOT_FOUND, message, list(field) or None)
