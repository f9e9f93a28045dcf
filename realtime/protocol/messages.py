"""The messages of both subprotocols, typed: what clients send (parsed and validated), what the
server sends, and the close codes.

One vocabulary is understood on either subprotocol, as it always was: ``subscribe``/``start``,
``complete``/``stop``, ``pong``/``ka`` are the same operation under the two protocols' names, and
``connection_terminate`` ends either. What differs between the protocols (the data message's
name, keep-alives, what a message before ``connection_init`` means) is theirs:
``transport_ws`` and ``legacy_ws``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal, NotRequired, TypedDict

import orjson


class CloseCode(IntEnum):
    """Every code the server closes a socket with."""

    NORMAL = 1000
    GOING_AWAY = 1001  # no pong in time: the connection is presumed dead
    ABNORMAL = 1006  # the client vanished (recorded, never sent)
    POLICY_VIOLATION = 1008  # a cross-site handshake, refused before accept (HTTP 403)
    MESSAGE_TOO_BIG = 1009
    TRY_AGAIN_LATER = 1013  # the database is unavailable
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    SUBPROTOCOL_NOT_ACCEPTABLE = 4406
    INIT_TIMEOUT = 4408
    SUBSCRIBER_EXISTS = 4409
    TOO_MANY_INIT = 4429


class Closed(Exception):
    """The connection is being closed with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = int(code)
        self.reason = reason


def dumps(value: Any) -> str:
    """Compact JSON, as every frame is sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# What orjson hands back to ``default`` (which refuses it, so json.dumps decides) instead of
# encoding it its own way: whatever json.dumps would encode differently or refuse.
_PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dumps_payload(value: Any) -> str:
    """An execution result's payload as :func:`dumps` writes it, by orjson (an odds update's
    payload: 7 µs with json.dumps, 0.5 µs; once per group and event). What orjson refuses or
    would write otherwise (a lone surrogate, an integer past 64 bits, a non-str key, a subclass
    of a JSON type, a dataclass or datetime) is json.dumps's, as before. Execution results hold
    only JSON values (their scalars are serialized, a Float never NaN): the same compact UTF-8,
    but for a float's notation (1e-05 is written 0.00001, as HTTP answers already write it)."""
    try:
        return orjson.dumps(value, option=_PASSTHROUGH).decode()
    except TypeError:  # orjson.JSONEncodeError included
        return dumps(value)


# -- frames in --------------------------------------------------------------------------------


def decode_frame(text: str | None, data: bytes | None, limit: int) -> dict[str, Any]:
    """A received frame as a message (a JSON object with a string ``type``), or Closed."""
    # Size first, whatever the kind: a too-big binary message is "too big" (1009) too. A
    # character is 1 to 4 bytes of UTF-8, so most texts are decided without encoding them.
    if text is not None:
        too_big = len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit)
    else:
        too_big = len(data or b"") > limit
    if too_big:
        raise Closed(CloseCode.MESSAGE_TOO_BIG, "Message too big")
    if text is None:
        raise Closed(CloseCode.BAD_REQUEST, "Binary messages are not supported")
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise Closed(CloseCode.BAD_REQUEST, "Invalid message received") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise Closed(CloseCode.BAD_REQUEST, "Invalid message received")
    return message


# -- what clients send --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionInit:
    """``connection_init``: its payload, checked when the connection is initialised."""

    payload: Any

    def params(self) -> dict[str, Any]:
        """The connection parameters (``authorization``…); 4400 when not an object."""
        payload = self.payload or {}
        if not isinstance(payload, dict):
            raise Closed(CloseCode.BAD_REQUEST, "Invalid connection_init payload")
        return payload


@dataclass(frozen=True, slots=True)
class Ping:
    """``ping``, answered with a ``pong`` carrying the same payload, if it had one."""

    payload: Any
    has_payload: bool


@dataclass(frozen=True, slots=True)
class Pong:
    """``pong`` (or ``ka``): the client is alive; nothing to answer."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``subscribe`` (or ``start``): an operation to run under ``id``."""

    id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Complete:
    """``complete`` (or ``stop``): end the operation ``id``, if it runs."""

    id: str


@dataclass(frozen=True, slots=True)
class Terminate:
    """``connection_terminate``: close normally."""


ClientMessage = ConnectionInit | Ping | Pong | Subscribe | Complete | Terminate


def parse(message: dict[str, Any]) -> ClientMessage:
    """A decoded message of an initialised connection, typed; Closed(4400) when malformed."""
    kind = message["type"]
    if kind == "connection_init":
        return ConnectionInit(message.get("payload"))
    if kind == "ping":
        return Ping(message.get("payload"), "payload" in message)
    if kind in ("pong", "ka"):
        return Pong()
    if kind in ("complete", "stop"):
        return Complete(str(message.get("id")))
    if kind == "connection_terminate":
        return Terminate()
    if kind not in ("subscribe", "start"):
        raise Closed(CloseCode.BAD_REQUEST, f"Unexpected message type {kind!r}")
    sub_id = message.get("id")
    payload = message.get("payload")
    if not isinstance(sub_id, str) or not sub_id or not isinstance(payload, dict):
        raise Closed(CloseCode.BAD_REQUEST, "Invalid subscribe message")
    return Subscribe(sub_id, payload)


@dataclass(frozen=True, slots=True)
class Operation:
    """A subscribe message's payload: the GraphQL request."""

    # None only with ``extensions`` naming a persisted document.
    query: str | None
    variables: dict[str, Any]
    operation_name: str | None
    extensions: dict[str, Any] | None = None

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> Operation:
        """The request of ``payload``; Closed(4400) when its fields have the wrong types."""
        query = payload.get("query")
        variables = payload.get("variables")
        if variables is None:
            variables = {}
        operation_name = payload.get("operationName")
        extensions = payload.get("extensions")
        if (
            not isinstance(query, str | None)
            or (query is None and not isinstance(extensions, dict))
            or not isinstance(variables, dict)
            or not isinstance(operation_name, str | None)
            or not isinstance(extensions, dict | None)
        ):
            raise Closed(
                CloseCode.BAD_REQUEST, "Invalid message received: malformed subscribe payload"
            )
        return cls(query, variables, operation_name, extensions)


# -- what the server sends ----------------------------------------------------------------------


class FormattedError(TypedDict):
    """One entry of an ``errors`` list."""

    message: str
    extensions: NotRequired[dict[str, Any]]


class ExecutionPayload(TypedDict):
    """A result: the payload of a data message."""

    data: dict[str, Any] | None
    errors: NotRequired[list[Any]]


class ConnectionAckMessage(TypedDict):
    type: Literal["connection_ack"]


class PingMessage(TypedDict):
    type: Literal["ping"]


class PongMessage(TypedDict):
    type: Literal["pong"]
    payload: NotRequired[Any]


class KeepAliveMessage(TypedDict):
    type: Literal["ka"]


class DataMessage(TypedDict):
    """``next`` (graphql-transport-ws) or ``data`` (graphql-ws)."""

    id: str
    type: Literal["next", "data"]
    payload: ExecutionPayload


class ErrorMessage(TypedDict):
    """An operation's errors; the operation is over (both protocols send a list)."""

    id: str
    type: Literal["error"]
    payload: list[Any]


class CompleteMessage(TypedDict):
    id: str
    type: Literal["complete"]


ServerMessage = (
    ConnectionAckMessage
    | PingMessage
    | PongMessage
    | KeepAliveMessage
    | DataMessage
    | ErrorMessage
    | CompleteMessage
)

ACK: ConnectionAckMessage = {"type": "connection_ack"}


def pong(ping: Ping) -> PongMessage:
    """The answer to ``ping``."""
    if ping.has_payload:
        return {"type": "pong", "payload": ping.payload}
    return {"type": "pong"}


def coded_error(message: str, code: str, **extensions: Any) -> FormattedError:
    """An error entry with ``extensions.code`` first, then ``extensions``."""
    return {"message": message, "extensions": {"code": code, **extensions}}


def error(sub_id: str, errors: list[Any]) -> ErrorMessage:
    """The operation ``sub_id`` ended with ``errors``."""
    return {"id": sub_id, "type": "error", "payload": errors}


def internal_error(sub_id: str) -> ErrorMessage:
    """The operation ``sub_id`` failed in the server: nothing more said."""
    return error(sub_id, [coded_error("Internal server error.", "INTERNAL_SERVER_ERROR")])


def complete(sub_id: str) -> CompleteMessage:
    """The operation ``sub_id`` is done."""
    return {"id": sub_id, "type": "complete"}


def data_frame_prefix(sub_id: str, data_type: str) -> str:
    """Everything of a data frame but its payload and closing brace, built once per
    subscription: the frames of an event are this, the group's encoded payload, and ``}``."""
    return '{"id":' + dumps(sub_id) + ',"type":"' + data_type + '","payload":'
