"""Strict scalars. Strawberry's own Decimal accepts NaN, Infinity and exponents; ours doesn't."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import strawberry

from api.core.errors import BadUserInput

_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")


def parse_decimal(value: object) -> Decimal:
    """A plain finite decimal from a JSON string ("12.50"); anything else is BAD_USER_INPUT."""
    if not isinstance(value, str) or not _PLAIN_DECIMAL.fullmatch(value):
        shown = repr(value)[:40]
        raise BadUserInput(
            f'Decimal must be a string holding a plain decimal number like "12.50", got {shown}.'
        )
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # unreachable after the pattern, kept for safety
        raise BadUserInput(f"Invalid decimal {value!r}.") from exc


def serialize_decimal(value: Decimal) -> str:
    """Fixed-point text, never an exponent: Decimal("1E+2") → "100"."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"cannot serialise {value!r} as Decimal")
    return format(value, "f")


# Fields annotated ``decimal.Decimal`` use this definition (StrawberryConfig.scalar_map).
DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description=(
        'An exact decimal number, as a string in JSON: "12.50". Money has 2 places, shares up '
        "to 4. No exponent, NaN or Infinity."
    ),
    serialize=serialize_decimal,
    parse_value=parse_decimal,
)
