"""The fan-out's and the brokers' counters, driven without sockets: the hub's per-group counting
(deliveries, coalesced frames, overflows), subscription and group gauges that never double
count, the broker's kinds, publish and deliver counts and lag (with old messages that carry no
publication time), and refusals counted once per mutation field however often the schema is
wrapped."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest

import metrics
from accounts.events import SessionRevoked, SessionsRevoked
from api.core.refusals import ErrorCode, UserError, count_refusals
from api.schema import build_schema
from comments.events import CommentChanged
from markets.events import OddsChanged
from realtime.brokers import MemoryBroker, RedisBroker
from realtime.brokers.base import CHANNEL_KINDS, channel_kind
from realtime.events import to_message
from realtime.fanout import Connection, Group, Hub, Sub
from realtime.sources import SubscriptionSource
from settings import Settings


@pytest.fixture
def fresh_settings() -> Settings:
    """Settings for connections that never reach a database."""
    return Settings(env="test")


def value(name: str, **labels: str) -> float:
    """A sample of the process's registry (0 before the series exists)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


class Stuck:
    """A transport whose client never reads."""

    async def send_text(self, frame: str) -> None:
        await asyncio.Event().wait()


class Reading:
    """A transport whose client reads everything at once."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, frame: str) -> None:
        self.sent.append(frame)


class Layer:
    """The little of the GraphQL layer the hub's event path uses here."""

    def loaders(self) -> None:
        return None


class Latest(SubscriptionSource[int]):
    """A coalesced source whose root is the event itself."""

    delivery = "coalesced"

    async def root(self, target: int, event: Mapping[str, Any], loaders: Any) -> Any:
        return event


class InOrder(SubscriptionSource[int]):
    """An ordered, sequenced source whose root is the event itself."""

    sequenced = True

    async def root(self, target: int, event: Mapping[str, Any], loaders: Any) -> Any:
        return event


@dataclass(eq=False)
class Rendered(Group):
    """A group whose payload is the event's sequence (no schema to execute)."""

    async def render(self, root: Any, loaders: Any) -> str:
        return '{"data":{"n":' + str(root["seq"]) + "}}"


def hub_for(settings: Settings) -> Hub:
    """A hub with nothing but what the event path and membership need."""
    hub = Hub.__new__(Hub)
    hub.graphql = Layer()  # type: ignore[assignment]
    hub.settings = settings
    hub.groups, hub.by_channel, hub.connections = {}, {}, set()
    return hub


def join(hub: Hub, conn: Connection, sub_id: str, field: str, source: Any) -> Sub:
    """Subscription ``sub_id`` of ``conn`` to ``field``'s one group (made on first use)."""
    key = (field, 1)
    return hub.add(
        conn,
        sub_id,
        key,
        lambda: Rendered(hub, key, field, 1, f"test:{field}", None, None, source),  # type: ignore[arg-type]
    )


async def test_coalesced_frames_are_counted_once_a_group(fresh_settings: Settings) -> None:
    field = "testLatest"
    hub = hub_for(fresh_settings)
    stuck = [Connection(Stuck(), "graphql-transport-ws", fresh_settings) for _ in range(5)]
    subs = [join(hub, conn, "s", field, Latest()) for conn in stuck]
    assert value("agora_subscriptions_active", field=field) == 5
    assert value("agora_subscription_groups", field=field) == 1

    await hub.on_event(f"test:{field}", {"seq": 1})
    assert value("agora_subscription_deliveries_total", field=field) == 5
    assert value("agora_subscription_coalesced_frames_total", field=field) == 0
    # Nobody took the first: the second replaces it, for each of them.
    await hub.on_event(f"test:{field}", {"seq": 2})
    assert value("agora_subscription_deliveries_total", field=field) == 10
    assert value("agora_subscription_coalesced_frames_total", field=field) == 5
    # An older event than the last one offered is dropped, and not counted.
    await hub.on_event(f"test:{field}", {"seq": 2})
    assert value("agora_subscription_deliveries_total", field=field) == 10

    reading = Reading()
    fast = Connection(reading, "graphql-transport-ws", fresh_settings)
    writer = asyncio.create_task(fast.writer())
    subs.append(join(hub, fast, "f", field, Latest()))
    await hub.on_event(f"test:{field}", {"seq": 3})
    await asyncio.sleep(0.01)  # the reading client's writer sends it
    await hub.on_event(f"test:{field}", {"seq": 4})
    await asyncio.sleep(0.01)
    assert len(reading.sent) == 2
    assert value("agora_subscription_deliveries_total", field=field) == 10 + 6 + 6
    assert value("agora_subscription_coalesced_frames_total", field=field) == 5 + 5 + 5
    assert value("agora_subscription_overflows_total", field=field) == 0

    for sub in subs:
        hub.remove(sub)
        hub.remove(sub)  # ended twice (say, overflowed, then its socket closed): counted once
    assert value("agora_subscriptions_active", field=field) == 0
    assert value("agora_subscription_groups", field=field) == 0
    writer.cancel()


async def test_an_overflow_is_counted_and_ends_the_counting(fresh_settings: Settings) -> None:
    field = "testOrdered"
    settings = replace(fresh_settings, ws_queue_length=4)
    hub = hub_for(settings)
    slow = Connection(Stuck(), "graphql-transport-ws", settings)
    reading = Reading()
    fast = Connection(reading, "graphql-transport-ws", settings)
    writer = asyncio.create_task(fast.writer())
    subs = [join(hub, slow, "s", field, InOrder()), join(hub, fast, "f", field, InOrder())]
    for sub in subs:  # live already (no catch-up in this test)
        sub.replaying = False
    for seq in range(1, 11):
        await hub.on_event(f"test:{field}", {"seq": seq})
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert len(reading.sent) == 10
    # The stuck one took 4 (its queue's bound), then overflowed on the 5th and was removed.
    assert value("agora_subscription_overflows_total", field=field) == 1
    assert value("agora_subscription_deliveries_total", field=field) == 10 + 4
    assert value("agora_subscriptions_active", field=field) == 1
    assert subs[0].done and subs[0].overflowed
    hub.remove(subs[1])
    assert value("agora_subscriptions_active", field=field) == 0
    assert value("agora_subscription_groups", field=field) == 0
    writer.cancel()


async def test_a_stale_removal_never_drops_a_newer_group(fresh_settings: Settings) -> None:
    field = "testRegroup"
    hub = hub_for(fresh_settings)
    conn = Connection(Reading(), "graphql-transport-ws", fresh_settings)
    old = join(hub, conn, "a", field, Latest())
    hub.remove(old)
    new = join(hub, conn, "b", field, Latest())
    hub.remove(old)  # again, after a new group took the same key
    assert hub.groups[(field, 1)] is new.group
    assert value("agora_subscription_groups", field=field) == 1
    assert value("agora_subscriptions_active", field=field) == 1
    hub.remove(new)
    assert value("agora_subscription_groups", field=field) == 0


# -- brokers -----------------------------------------------------------------------------------


def test_every_channel_the_app_publishes_on_has_a_bounded_kind() -> None:
    events = [
        CommentChanged("added", 7, 1, 1),
        OddsChanged(3, 1, None),
        SessionRevoked("h"),
        SessionsRevoked(1, "h"),
    ]
    kinds = []
    for event in events:
        message = to_message(event)
        assert message is not None
        kinds.append(channel_kind(message[0]))
    assert kinds == ["comments", "odds", "sessions", "sessions"]
    assert set(kinds) == CHANNEL_KINDS
    assert channel_kind("comments") == "comments"
    assert channel_kind("nobody-knows:1") == "other"
    assert channel_kind("x" * 10_000) == "other"


def _broker_values(kind: str) -> tuple[float, float, float, float]:
    return (
        value("agora_broker_published_total", kind=kind),
        value("agora_broker_delivered_total", kind=kind),
        value("agora_broker_lag_seconds_count", kind=kind),
        value("agora_broker_lag_seconds_sum", kind=kind),
    )


def _moved(before: tuple[float, ...], after: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(b - a for a, b in zip(before, after, strict=True))


async def test_the_memory_broker_counts_each_event_published_and_delivered() -> None:
    broker = MemoryBroker()
    heard: list[tuple[str, dict[str, Any]]] = []
    broker.listen(lambda channel, event: heard.append((channel, event)))
    await broker.start()
    try:
        before = _broker_values("odds")
        await broker.publish("odds:1", {"seq": 1})
        await broker.publish("odds:2", {"seq": 1})
        assert _moved(before, _broker_values("odds"))[:3] == (2, 0, 0)  # not dispatched yet
        await asyncio.sleep(0.01)
        published, delivered, lags, lag = _moved(before, _broker_values("odds"))
        assert (published, delivered, lags) == (2, 2, 2)
        assert 0 <= lag < 1
        assert [channel for channel, _ in heard] == ["odds:1", "odds:2"]
    finally:
        await broker.stop()


async def test_redis_messages_carry_their_publication_time() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")  # never started: nothing connects
    heard: list[tuple[str, dict[str, Any]]] = []
    broker.listen(lambda channel, event: heard.append((channel, event)))
    before = _broker_values("comments")
    start = time.time()
    await broker.publish("comments:4", {"kind": "added", "comment_id": 1, "seq": 1})
    channel, message = broker._outbound.get_nowait()
    envelope = json.loads(message)
    assert channel == "comments:4" and envelope["o"] == broker.origin
    assert envelope["e"] == {"kind": "added", "comment_id": 1, "seq": 1}
    assert start <= envelope["t"] <= time.time()
    # Delivered locally at once; the same message coming back from Redis isn't delivered again.
    await broker._receive({"channel": b"agora:comments:4", "data": message})
    assert _moved(before, _broker_values("comments"))[:3] == (1, 1, 1)
    assert len(heard) == 1


@pytest.mark.parametrize(
    ("extra", "lagged"),
    [
        ({"t": "SENT_AT"}, True),
        ({}, False),  # a process of an earlier version: no publication time
        ({"t": "soon"}, False),
        ({"t": True}, False),
        ({"t": None}, False),
    ],
)
async def test_redis_messages_from_other_processes_are_counted(
    extra: dict[str, Any], lagged: bool
) -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    heard: list[tuple[str, dict[str, Any]]] = []
    broker.listen(lambda channel, event: heard.append((channel, event)))
    sent_at = time.time() - 0.25
    body: dict[str, Any] = {"o": "another-process", "e": {"seq": 5}}
    body.update({k: sent_at if v == "SENT_AT" else v for k, v in extra.items()})
    before = _broker_values("odds")
    await broker._receive({"channel": b"agora:odds:9", "data": json.dumps(body)})
    published, delivered, lags, lag = _moved(before, _broker_values("odds"))
    assert heard == [("odds:9", {"seq": 5})]
    assert (published, delivered, lags) == (0, 1, 1 if lagged else 0)
    if lagged:
        assert 0.25 <= lag < 5
    else:
        assert lag == 0


@pytest.mark.parametrize(
    "data",
    [
        '{"o":"x","e":{},"t":NaN}',
        '{"o":"x","e":{},"t":-Infinity}',
        '{"o":"x","e":{},"t":1' + "0" * 400 + "}",
    ],
)
async def test_a_publication_time_that_is_not_finite_is_ignored(data: str) -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    before = _broker_values("odds")
    await broker._receive({"channel": b"agora:odds:1", "data": data})
    _, delivered, lags, lag = _moved(before, _broker_values("odds"))
    assert (delivered, lags) == (1, 0) and math.isfinite(lag) and lag == 0


@pytest.mark.parametrize("data", ["[1, 2]", '"text"', "12", "not json"])
async def test_a_malformed_redis_message_is_ignored_not_a_lost_connection(data: str) -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    heard: list[Any] = []
    broker.listen(lambda channel, event: heard.append(event))
    before = _broker_values("odds")
    await broker._receive({"channel": b"agora:odds:1", "data": data})  # raises nothing
    assert heard == [] and _moved(before, _broker_values("odds")) == (0, 0, 0, 0)


# -- refusals ----------------------------------------------------------------------------------


@dataclass
class Payload:
    """A mutation payload: its refusals."""

    errors: list[Any]


@pytest.mark.parametrize("asynchronous", [True, False])
def test_refusals_are_counted_once_by_field_and_code(asynchronous: bool) -> None:
    schema = build_schema(Settings())._schema
    field = schema.mutation_type.fields["postComment"]  # type: ignore[union-attr]
    refused = Payload(
        [
            UserError(
                code=ErrorCode.RATE_LIMITED,
                message="slow down",
                field=None,
                retry_after_seconds=3,
            )
        ]
    )

    async def later() -> Payload:
        return refused

    field.resolve = (lambda source, info: later()) if asynchronous else (lambda s, i: refused)
    count_refusals(schema)
    count_refusals(schema)  # a schema wrapped twice still counts once
    labels = {"field": "postComment", "code": "RATE_LIMITED"}
    before = value("agora_refusals_total", **labels)
    result = field.resolve(None, None)
    if asynchronous:
        result = asyncio.run(result)
    assert result is refused
    assert value("agora_refusals_total", **labels) - before == 1
    # A payload without errors, or a result that isn't a payload, counts nothing.
    field.resolve = lambda s, i: Payload([])
    count_refusals(schema)
    assert field.resolve(None, None) == Payload([])
    assert value("agora_refusals_total", **labels) - before == 1
