"""How the domain tells the rest of the system what changed: events and their publisher.

A domain service takes a :data:`Publisher` when it is built and calls it with each event once
the write that the event describes has committed: never inside the transaction, so a refusal
or a rollback publishes nothing, and never left to the caller, so no caller can forget. The
app passes one that hands events to the realtime broker; callers that want no events (the demo
data, scripts, some tests) pass :func:`discard`, by name.

This module imports nothing of the project: every domain package may depend on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Something that changed, told after its commit; each domain defines its own kinds."""


Publisher = Callable[[Event], Awaitable[None]]
"""Called with each event after its write committed."""


async def discard(event: Event) -> None:
    """A publisher that drops every event, for callers that want none (demo data, scripts)."""
    return None
