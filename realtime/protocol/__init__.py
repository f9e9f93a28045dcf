"""The websocket subprotocols: their messages (``messages``) and rules (``transport_ws``,
``legacy_ws``), and the choice between them at the handshake."""

from __future__ import annotations

from realtime.protocol.base import Subprotocol
from realtime.protocol.legacy_ws import LEGACY_WS
from realtime.protocol.transport_ws import TRANSPORT_WS

# In order of preference: a client offering both gets graphql-transport-ws.
PROTOCOLS: dict[str, Subprotocol] = {p.name: p for p in (TRANSPORT_WS, LEGACY_WS)}


def negotiate(offered_header: str) -> Subprotocol | None:
    """The subprotocol to accept for a ``Sec-WebSocket-Protocol`` header, or None."""
    offered = [p.strip() for p in offered_header.split(",")]
    return next((p for name, p in PROTOCOLS.items() if name in offered), None)


def subprotocol(name: str) -> Subprotocol:
    """The subprotocol called ``name``."""
    return PROTOCOLS[name]


__all__ = ["LEGACY_WS", "PROTOCOLS", "TRANSPORT_WS", "Subprotocol", "negotiate", "subprotocol"]
