"""What a transport's protocol decides, as interfaces: ``Wire`` for every transport (how its
messages and data frames are written), ``Subprotocol`` for the websocket ones
(``transport_ws``, ``legacy_ws``), ``StreamWire`` for the HTTP streams (``sse``, ``multipart``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from realtime.protocol.messages import (
    Closed,
    ExecutionPayload,
    KeepAliveMessage,
    PingMessage,
    ServerMessage,
    data_frame_prefix,
    dumps,
)


class Wire(ABC):
    """How one transport writes what the server sends: messages and data frames."""

    # The protocol's name (a websocket's Sec-WebSocket-Protocol).
    name: ClassVar[str]
    # The type of the message carrying a result.
    data_type: ClassVar[str]

    def data_frame(self, sub_id: str) -> tuple[str, str]:
        """What goes before and after an encoded payload in a data frame of ``sub_id``: built
        once per subscription, so an event's frame is the two around the group's payload."""
        return data_frame_prefix(sub_id, self.data_type), "}"

    def encode(self, message: ServerMessage) -> str:
        """``message`` as one frame."""
        return dumps(message)

    def ends_stream(self, message: ServerMessage) -> bool:
        """Whether sending ``message`` ends the connection (a stream carries one operation)."""
        return False


class Subprotocol(Wire):
    """The rules of one websocket subprotocol (messages themselves are ``messages``')."""

    @abstractmethod
    def before_init(self, message_type: str) -> Closed:
        """How to close when the first message is ``message_type``, not ``connection_init``."""

    @abstractmethod
    def keepalive(
        self, silent_seconds: float, interval: float
    ) -> PingMessage | KeepAliveMessage | Closed:
        """What to do every ``interval`` seconds, the client having said nothing for
        ``silent_seconds``: send a message, or close."""


class StreamWire(Wire):
    """An HTTP response streaming one operation's results (Server-Sent Events, multipart)."""

    data_type = "next"

    @property
    @abstractmethod
    def content_type(self) -> str:
        """The response's Content-Type."""

    # What goes before and after one encoded result in its frame.
    result_prefix: ClassVar[str]
    result_suffix: ClassVar[str]

    def result(self, payload: ExecutionPayload | str) -> str:
        """One result (a payload, or one already encoded as JSON) as a frame."""
        encoded = payload if isinstance(payload, str) else dumps(payload)
        return self.result_prefix + encoded + self.result_suffix

    @abstractmethod
    def heartbeat(self) -> str:
        """What is sent when nothing else has been for a while, so proxies keep the stream."""

    @abstractmethod
    def start(self) -> str:
        """What opens the stream, before its first result."""

    @abstractmethod
    def end(self) -> str:
        """What ends the stream after its last result."""

    def data_frame(self, sub_id: str) -> tuple[str, str]:
        """The frame of one result around the group's encoded payload."""
        return self.result_prefix, self.result_suffix

    def encode(self, message: ServerMessage) -> str:
        """``error`` ends the stream with its errors as a result, ``complete`` just ends it;
        a ``next``/``data`` message is its payload; keep-alives are heartbeats."""
        kind = message.get("type")
        if kind == "error":
            errors = message.get("payload")
            return self.errors(errors if isinstance(errors, list) else [])
        if kind == "complete":
            return ""
        if kind in ("next", "data"):
            return self.result(message["payload"])  # type: ignore[typeddict-item,arg-type]
        return self.heartbeat()

    def errors(self, errors: list[Any]) -> str:
        """The operation failed with ``errors`` before it ran (so no ``data`` at all)."""
        return self.result(dumps({"errors": errors}))

    def ends_stream(self, message: ServerMessage) -> bool:
        """An operation's error or completion ends its stream."""
        return message.get("type") in ("error", "complete")
