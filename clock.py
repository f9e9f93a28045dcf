"""The one wall clock of the domain: aware UTC datetimes, replaceable in tests.

Services take a :data:`Clock` argument (``now`` by default) rather than reading the time
themselves, so a test or the demo data can walk time by hand.

Tests that drive real server processes can't hand them a clock: they point
``AGORA_TEST_CLOCK_FILE`` (honoured only when ``AGORA_ENV=test``; the app calls
:func:`use_offset_file`) at a file every process reads, holding either an offset in seconds
added to the real time (``3600``, ``-1.5``) or an absolute ISO 8601 time with its zone
(``2030-01-01T00:00:00+00:00``: the clock stands still there). Replace the file atomically
(write another, then ``os.replace``): a process looks at it at most every
:data:`RECHECK_SECONDS` and re-reads it only when it changed. Without the setting ``now``
costs one global check more than ``datetime.now(UTC)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""Anything that returns the current time as an aware UTC datetime."""

# How often a process looks whether the clock file changed: a test that rewrites it waits at
# most this long before every process tells the new time.
RECHECK_SECONDS = 0.05

# The test clock file, or None (production, and every test that doesn't drive processes).
_file: str | None = None
# What the file said: an offset from the real time, or a fixed time (then the offset is unused).
_offset = timedelta(0)
_fixed: datetime | None = None
# When it was last looked at (time.monotonic) and what it looked like then (inode, mtime, size).
_checked_at = 0.0
_seen: tuple[int, int, int] | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    if _file is None:
        return datetime.now(UTC)
    return _test_now()


def use_offset_file(path: str | None) -> None:
    """Read the time from ``path`` from now on (None: the real time again).

    Raises ValueError when the file exists but doesn't hold an offset or a time: a test
    clock that silently read as zero would pass tests for the wrong reason. A missing file is
    an offset of zero until it appears.
    """
    global _file, _offset, _fixed, _checked_at, _seen
    _file, _offset, _fixed, _checked_at, _seen = None, timedelta(0), None, 0.0, None
    if path is None:
        return
    _reload(path, strict=True)
    _file = path


def parse(text: str) -> timedelta | datetime:
    """What a clock file holds: seconds (an offset) or an aware ISO 8601 time."""
    text = text.strip()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"a clock file's time needs its zone (+00:00), got {text!r}")
    return moment.astimezone(UTC)


def _test_now() -> datetime:
    global _checked_at
    if _file is not None:
        checked = time.monotonic()
        if checked - _checked_at >= RECHECK_SECONDS:
            _checked_at = checked
            _reload(_file, strict=False)
    if _fixed is not None:
        return _fixed
    return datetime.now(UTC) + _offset


def _reload(path: str, *, strict: bool) -> None:
    """Re-read ``path`` if it changed since the last look. A file caught half-written (not
    strict) keeps the previous value: the next look reads it again."""
    global _offset, _fixed, _seen
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        _offset, _fixed, _seen = timedelta(0), None, None
        return
    seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if seen == _seen:
        return
    try:
        with open(path, encoding="utf-8") as file:
            value = parse(file.read())
    except (OSError, ValueError):
        if strict:
            raise
        return
    _seen = seen
    if isinstance(value, datetime):
        _offset, _fixed = timedelta(0), value
    else:
        _offset, _fixed = value, None
