"""What a subprotocol decides, as one interface: ``transport_ws`` and ``legacy_ws`` implement it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from realtime.protocol.messages import Closed, KeepAliveMessage, PingMessage


class Subprotocol(ABC):
    """The rules of one websocket subprotocol (messages themselves are ``messages``')."""

    # The Sec-WebSocket-Protocol name.
    name: ClassVar[str]
    # The type of the message carrying a result.
    data_type: ClassVar[str]

    @abstractmethod
    def before_init(self, message_type: str) -> Closed:
        """How to close when the first message is ``message_type``, not ``connection_init``."""

    @abstractmethod
    def keepalive(
        self, silent_seconds: float, interval: float
    ) -> PingMessage | KeepAliveMessage | Closed:
        """What to do every ``interval`` seconds, the client having said nothing for
        ``silent_seconds``: send a message, or close."""
