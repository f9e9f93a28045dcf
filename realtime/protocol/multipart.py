"""Apollo's multipart HTTP subscription protocol (``subscriptionSpec=1.0``): one operation per
response, each result a part ``{"payload": result}``, ``{}`` parts as heartbeats, the closing
delimiter at the end.

Every part is written with the delimiter that follows it (the stream opens with the first
delimiter): Apollo Client hands a part on only once the next delimiter has arrived, so a part
written before its delimiter would wait for the next heartbeat.
"""

from __future__ import annotations

from typing import Any

from realtime.protocol.base import StreamWire
from realtime.protocol.messages import dumps

BOUNDARY = "graphql"
DELIMITER = "\r\n--" + BOUNDARY
_HEAD = "\r\nContent-Type: application/json; charset=utf-8\r\n\r\n"


class MultipartSubscriptions(StreamWire):
    """``multipart/mixed;boundary="graphql";subscriptionSpec="1.0"``, as Apollo Client reads it."""

    name = "multipart-subscriptions"
    content_type = f'multipart/mixed;boundary="{BOUNDARY}";subscriptionSpec="1.0"'
    # A result is a part ``{"payload": result}``.
    result_prefix = _HEAD + '{"payload":'
    result_suffix = "}" + DELIMITER

    def heartbeat(self) -> str:
        """An empty object part: Apollo's heartbeat."""
        return _HEAD + "{}" + DELIMITER

    def start(self) -> str:
        """The first delimiter."""
        return DELIMITER

    def end(self) -> str:
        """What turns the last delimiter into the closing one."""
        return "--\r\n"

    def errors(self, errors: list[Any]) -> str:
        """The subscription ended with ``errors``: the protocol's transport-level error, no
        payload and the errors beside it (Apollo Client reports them as protocol errors)."""
        return _HEAD + dumps({"payload": None, "errors": errors}) + DELIMITER


MULTIPART = MultipartSubscriptions()
