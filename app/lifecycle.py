"""The app's side of a graceful shutdown, without the app knowing which server runs it.

The server (``app.serve.AgoraServer``) finds the app's ``Lifecycle`` in the ASGI lifespan state
(the app's lifespan yields it under ``STATE_KEY``: the channel the ASGI spec gives a server and
its app, so each server finds exactly the app it serves, however many apps a process builds).
On the first SIGTERM the server calls ``start_draining`` at once (``/readyz`` answers 503 from
then on); once it has stopped accepting connections it awaits ``drain``, which ends what only
the app can end cleanly: HTTP subscription streams (their protocol's end, after a coded error)
and websockets (closed with 1012 once their in-flight operation is done). In-flight HTTP
requests need nothing from the app: the server waits for their responses.

A server that doesn't look for it (plain ``uvicorn app:create_app --factory``) never calls
either: that server closes websockets itself (1012, in-flight operations cut) and cuts streams
after its ``--timeout-graceful-shutdown``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from logs import get_logger

logger = get_logger("agora")

# Where the app's lifespan state holds its Lifecycle.
STATE_KEY = "agora.lifecycle"

Drain = Callable[[], Awaitable[None]]


class Lifecycle:
    """Whether the app is draining, and what ends its long-lived connections."""

    def __init__(self) -> None:
        self.draining = False
        self._drains: list[tuple[str, Drain]] = []

    def on_drain(self, name: str, drain: Drain) -> None:
        """Run ``drain`` (named ``name`` in the log) when the app drains."""
        self._drains.append((name, drain))

    def start_draining(self) -> None:
        """From now on ``/readyz`` answers 503. Only sets a flag: safe in a signal handler."""
        self.draining = True

    async def drain(self) -> None:
        """End every long-lived connection cleanly; returns once they have all ended. The server
        bounds the wait (SHUTDOWN_TIMEOUT_SECONDS) and cancels this if it runs out."""
        self.start_draining()
        results = await asyncio.gather(
            *(drain() for _, drain in self._drains), return_exceptions=True
        )
        for (name, _), result in zip(self._drains, results, strict=True):
            if isinstance(result, Exception):
                logger.error("draining %s failed", name, exc_info=result)
