"""The brokers, one backend per module behind ``base.Broker``; ``broker_for`` picks one.

``MemoryBroker`` delivers within the process (the embedded mode). ``RedisBroker`` also publishes
to Redis pub/sub so other processes hear it, delivering locally first.
"""

from __future__ import annotations

from realtime.brokers.base import Broker, Listener, ReconnectCallback
from realtime.brokers.memory import MemoryBroker
from realtime.brokers.redis import RedisBroker
from settings import Settings

__all__ = ["Broker", "Listener", "MemoryBroker", "ReconnectCallback", "RedisBroker", "broker_for"]


def broker_for(settings: Settings) -> Broker:
    """The broker for the settings: Redis when ``redis_url`` is set, else in-memory."""
    return RedisBroker(settings.redis_url) if settings.redis_url else MemoryBroker()
