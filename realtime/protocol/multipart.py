"""Apollo's multipart HTTP subscription protocol (``subscriptionSpec=1.0``): one operation per
response, each result a part ``{"payload": result}``, ``{}`` parts as heartbeats, the closing
delimiter at the end.
"""

from __future__ import annotations

from typing import Any

from realtime.protocol.base import StreamWire
from realtime.protocol.messages import ExecutionPayload, dumps

BOUNDARY = "graphql"
_PART = "\r\n--" + BOUNDARY + "\r\nContent-Type: application/json; charset=utf-8\r\n\r\n"


class MultipartSubscriptions(StreamWire):
    """``multipart/mixed;boundary="graphql";subscriptionSpec="1.0"``, as Apollo Client reads it."""

    name = "multipart-subscriptions"
    content_type = f'multipart/mixed;boundary="{BOUNDARY}";subscriptionSpec="1.0"'

    def result(self, payload: ExecutionPayload | str) -> str:
        """A part carrying one result."""
        encoded = payload if isinstance(payload, str) else dumps(payload)
        return _PART + '{"payload":' + encoded + "}"

    def heartbeat(self) -> str:
        """An empty object part: Apollo's heartbeat."""
        return _PART + "{}"

    def end(self) -> str:
        """The closing delimiter."""
        return "\r\n--" + BOUNDARY + "--\r\n"

    def errors(self, errors: list[Any]) -> str:
        """The subscription ended with ``errors``: the protocol's transport-level error, no
        payload and the errors beside it (Apollo Client reports them as protocol errors)."""
        return _PART + dumps({"payload": None, "errors": errors})


MULTIPART = MultipartSubscriptions()
