"""The one wall clock of the domain: aware UTC datetimes, replaceable in tests.

Services take a :data:`Clock` argument (``now`` by default) rather than reading the time
themselves, so a test or the demo data can walk time by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Anything that returns the current time as an aware UTC datetime."""


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
