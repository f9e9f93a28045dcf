"""The fan-out engine: connections with their bounded queues and writers (``connection``),
subscriptions with their order and replays (``subscription``), groups executed once per event
for all their subscribers (``group``), and the hub routing events to them (``hub``)."""

from __future__ import annotations

from realtime.fanout.connection import Connection
from realtime.fanout.group import Group
from realtime.fanout.hub import Hub
from realtime.fanout.subscription import Sub

__all__ = ["Connection", "Group", "Hub", "Sub"]
