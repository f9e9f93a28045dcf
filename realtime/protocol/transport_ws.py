"""graphql-transport-ws (the ``graphql-ws`` npm client's protocol): ``subscribe``, ``next``,
``error``, ``complete``, and ``ping``/``pong`` both ways.

The server pings every interval and presumes a client that answers nothing for two intervals
(and a second) dead; a ``subscribe`` before ``connection_init`` is 4401 Unauthorized.
"""

from __future__ import annotations

from realtime.protocol.base import Subprotocol
from realtime.protocol.messages import CloseCode, Closed, KeepAliveMessage, PingMessage


class TransportWS(Subprotocol):
    """graphql-transport-ws."""

    name = "graphql-transport-ws"
    data_type = "next"

    def before_init(self, message_type: str) -> Closed:
        """4401 for an early ``subscribe`` (the spec's code), else 4400."""
        if message_type == "subscribe":
            return Closed(CloseCode.UNAUTHORIZED, "Unauthorized")
        return Closed(CloseCode.BAD_REQUEST, "Expected connection_init")

    def keepalive(
        self, silent_seconds: float, interval: float
    ) -> PingMessage | KeepAliveMessage | Closed:
        """A ``ping``, or 1001 once the client has been silent past two intervals."""
        if silent_seconds > 2 * interval + 1:
            return Closed(CloseCode.GOING_AWAY, "No pong: connection presumed dead")
        return {"type": "ping"}


TRANSPORT_WS = TransportWS()
