"""The broker interface: small events (ids and sequence numbers) from writers to subscribers.

Every backend delivers within the process first, so a writer's own subscribers never depend on
anything outside it; backends that reach other processes say so with ``healthy``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Listener = Callable[[str, dict[str, Any]], Awaitable[None] | None]
ReconnectCallback = Callable[[], Awaitable[None]]


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
