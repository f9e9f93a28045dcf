"""GraphQL over Server-Sent Events, graphql-sse's "distinct connections" mode: one operation per
response, its results as ``next`` events, then one ``complete`` event; comments as heartbeats.

A payload is compact JSON, so it never holds a line break and each event has one ``data`` line.
"""

from __future__ import annotations

from realtime.protocol.base import StreamWire


class ServerSentEvents(StreamWire):
    """``text/event-stream``, as graphql-sse's client reads it."""

    name = "graphql-sse"
    content_type = "text/event-stream; charset=utf-8"
    # A result is a ``next`` event.
    result_prefix = "event: next\ndata: "
    result_suffix = "\n\n"

    def heartbeat(self) -> str:
        """An SSE comment: clients ignore it, proxies see traffic."""
        return ":\n\n"

    def start(self) -> str:
        """A comment at once: some browsers show nothing of a stream before its first bytes."""
        return ":\n\n"

    def end(self) -> str:
        """The ``complete`` event."""
        return "event: complete\ndata:\n\n"


SSE = ServerSentEvents()
