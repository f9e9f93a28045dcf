"""The broker interface: small events (ids and sequence numbers) from writers to subscribers.

Every backend delivers within the process first, so a writer's own subscribers never depend on
anything outside it; backends that reach other processes say so with ``healthy``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import metrics

Listener = Callable[[str, dict[str, Any]], Awaitable[None] | None]
ReconnectCallback = Callable[[], Awaitable[None]]

# The kinds of channel ``realtime.events`` names (``comments:<id>``, ``odds:<id>``,
# ``sessions``): the broker metrics' ``kind`` label, bounded to these and ``other``.
CHANNEL_KINDS = frozenset({"comments", "odds", "sessions"})


def channel_kind(channel: str) -> str:
    """The kind of ``channel``: the part before its id, if it is a known one; else ``other``."""
    kind = channel.partition(":")[0]
    return kind if kind in CHANNEL_KINDS else "other"


@dataclass(frozen=True, slots=True)
class KindMeters:
    """The broker metrics of one channel kind, their label children built once."""

    published: Any
    delivered: Any
    lag: Any

    def received(self, published_at: float | None, now: float) -> None:
        """Count one event reaching this process's listeners, published at ``published_at``
        (wall time, any process; None for a message from before the field existed)."""
        self.delivered.inc()
        if published_at is not None:
            # Another host's clock may be ahead: a lag is never negative.
            self.lag.observe(max(0.0, now - published_at))


_METERS = {
    kind: KindMeters(
        metrics.BROKER_PUBLISHED.labels(kind),
        metrics.BROKER_DELIVERED.labels(kind),
        metrics.BROKER_LAG.labels(kind),
    )
    for kind in sorted(CHANNEL_KINDS | {"other"})
}


def meters(channel: str) -> KindMeters:
    """The broker metrics of ``channel``'s kind."""
    return _METERS[channel_kind(channel)]


class Broker(Protocol):
    """Publish events on channels; listeners get (channel, event) in order per channel."""

    healthy: bool

    async def start(self) -> None:
        """Start delivering (a dispatcher task, connections to other processes)."""

    async def stop(self) -> None:
        """Stop delivering and close what ``start`` opened."""

    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        """Hand ``event`` to every listener of this process and, where there are, to others."""

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` for every event on every channel (the hub routes them)."""

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Call ``callback`` after a lost connection to other processes comes back."""
