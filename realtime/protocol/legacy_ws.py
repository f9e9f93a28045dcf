"""graphql-ws, the legacy subscriptions-transport-ws protocol: ``start``, ``data``, ``error``,
``complete``, ``stop``, ``connection_terminate``, and the server's ``ka`` keep-alive.

Its clients never answer keep-alives, so silence doesn't end the connection here.
"""

from __future__ import annotations

from realtime.protocol.base import Subprotocol
from realtime.protocol.messages import CloseCode, Closed, KeepAliveMessage, PingMessage


class LegacyWS(Subprotocol):
    """graphql-ws (legacy)."""

    name = "graphql-ws"
    data_type = "data"

    def before_init(self, message_type: str) -> Closed:
        """Always 4400: the protocol has no code of its own for it."""
        return Closed(CloseCode.BAD_REQUEST, "Expected connection_init")

    def keepalive(
        self, silent_seconds: float, interval: float
    ) -> PingMessage | KeepAliveMessage | Closed:
        """A ``ka``, whatever the client said."""
        return {"type": "ka"}


LEGACY_WS = LegacyWS()
