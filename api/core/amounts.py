"""Decimals ↔ integer units: cents for money, 1/10,000 for shares."""

from __future__ import annotations

from decimal import Context, Decimal

from refusals import validation


def to_units(value: Decimal, places: int, field: str, allow_zero: bool = False) -> int:
    """``value`` × 10^places as an integer; VALIDATION if it has more places or isn't positive."""
    exact = Context(prec=60)  # above any input the scalar lets through: no silent rounding
    exponent = value.normalize(exact).as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -places:
        raise validation(f"{field} has at most {places} decimal places.", field)
    units = int(value.scaleb(places, exact))
    if units < 0 or (units == 0 and not allow_zero):
        raise validation(f"{field} must be positive.", field)
    return units


def to_cents(value: Decimal, field: str, allow_zero: bool = False) -> int:
    """Credits as cents (2 places)."""
    return to_units(value, 2, field, allow_zero)


def to_share_units(value: Decimal, field: str, allow_zero: bool = False) -> int:
    """Shares as ten-thousandths (4 places)."""
    return to_units(value, 4, field, allow_zero)


def money(cents: int) -> Decimal:
    """Cents as a Decimal with exactly 2 places."""
    return Decimal(int(cents)).scaleb(-2)


def shares(units: int) -> Decimal:
    """Ten-thousandths of a share as a Decimal with 4 places."""
    return Decimal(int(units)).scaleb(-4)


def optional_cents(value: Decimal | None, field: str) -> int | None:
    """A guard amount (zero allowed) as cents; None when not given."""
    return None if value is None else to_cents(value, field, allow_zero=True)


def optional_share_units(value: Decimal | None, field: str) -> int | None:
    """A guard number of shares (zero allowed) as units; None when not given."""
    return None if value is None else to_share_units(value, field, allow_zero=True)
