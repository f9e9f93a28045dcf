"""The session cache (accounts.sessions): sessions kept for a moment, revocations at once.

Two workers are two ``Accounts`` services on one database. Worker A's publisher hands its
events, as ``realtime.events`` puts them on the wire, to worker B's broker (a fake with the
``Broker`` interface), which the app's own ``wire_session_cache`` ties to B's cache; the fake
can drop a message, lose its connection and come back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from tortoise import Tortoise

from accounts.ratelimit import MemoryRateLimiter
from accounts.service import Accounts, token_hash
from accounts.sessions import SessionCache
from app import wire_session_cache
from db import instrument, models
from db.config import tortoise_config
from domain_events import Event
from realtime.brokers.base import Listener, ReconnectCallback
from realtime.events import to_message
from settings import Settings, load_settings
from tests.conftest import FakeClock, forget_compiled_statements, with_settings

_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
CACHE_MS = Settings().session_cache_ms


class Clock:
    """The services' wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class FakeBroker:
    """Worker B's broker: delivers what worker A publishes, unless told to drop it."""

    def __init__(self) -> None:
        self.healthy = True
        self.listeners: list[Listener] = []
        self.reconnects: list[ReconnectCallback] = []
        self.drop_next = False
        self.dropped: list[tuple[str, dict[str, Any]]] = []

    def listen(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        self.reconnects.append(callback)

    async def deliver(self, channel: str, message: dict[str, Any]) -> None:
        if self.drop_next:
            self.drop_next = False
            self.dropped.append((channel, message))
            return
        for listener in self.listeners:
            result = listener(channel, message)
            if result is not None:
                await result

    async def reconnected(self) -> None:
        self.healthy = True
        for callback in self.reconnects:
            await callback()


@pytest.fixture
async def db(fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Settings]:
    monkeypatch.setattr("accounts.service.hash_password", _cheap_hasher.hash)
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(fresh_settings))
    from tortoise import connections

    instrument.install_for(connections.all())
    try:
        # The suite's settings turn the cache off (tests/conftest.py): on here, as deployed.
        yield with_settings(fresh_settings, session_cache_ms=CACHE_MS)
    finally:
        await Tortoise.close_connections()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


def _workers(settings: Settings, clock: Clock, broker: FakeBroker) -> tuple[Accounts, Accounts]:
    async def to_b(event: Event) -> None:
        message = to_message(event)
        assert message is not None
        await broker.deliver(*message)

    a = Accounts(settings, MemoryRateLimiter(clock=FakeClock()), publish=to_b, clock=clock)

    async def nowhere(event: Event) -> None:
        return None

    b = Accounts(settings, MemoryRateLimiter(clock=FakeClock()), publish=nowhere, clock=clock)
    wire_session_cache(b, broker)  # type: ignore[arg-type]
    return a, b


async def _statements(accounts: Accounts, token: str) -> tuple[models.User | None, int]:
    with instrument.counting() as counted:
        user = await accounts.authenticate(token)
    return user, counted.count


async def test_a_cached_session_costs_no_statement_and_is_a_copy(
    db: Settings, clock: Clock, broker: FakeBroker
) -> None:
    a, b = _workers(db, clock, broker)
    session = await a.sign_up("carol", "a-good-password", "Carol", "10.0.0.1")
    first, read = await _statements(b, session.token)
    again, cached = await _statements(b, session.token)
    assert first is not None and again is not None
    assert (read, cached) == (1, 0)
    assert (again.id, again.username) == (first.id, "carol")
    again.password_hash = "changed by one request"
    third = await b.authenticate(session.token)
    assert third is not None and third.password_hash != "changed by one request"
    assert await b.authenticate("not a token") is None
    assert await b.authenticate("") is None


async def test_log_out_acts_at_once_on_this_and_another_worker(
    db: Settings, clock: Clock, broker: FakeBroker
) -> None:
    a, b = _workers(db, clock, broker)
    session = await a.sign_up("dave", "a-good-password", "Dave", "10.0.0.1")
    assert await a.authenticate(session.token) is not None
    assert await b.authenticate(session.token) is not None
    assert await a.log_out(session.token)
    assert await a.authenticate(session.token) is None
    assert await b.authenticate(session.token) is None


async def test_change_password_ends_other_sessions_at_once_on_another_worker(
    db: Settings, clock: Clock, broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("accounts.service.verify_password", _cheap_hasher.verify)
    a, b = _workers(db, clock, broker)
    kept = await a.sign_up("erin", "a-good-password", "Erin", "10.0.0.1")
    other = await a.log_in("erin", "a-good-password", "10.0.0.2")
    assert await b.authenticate(kept.token) is not None
    assert await b.authenticate(other.token) is not None
    assert await a.authenticate(kept.token) is not None
    await a.change_password(kept.user, kept.token, "a-good-password", "another-password")
    assert await b.authenticate(other.token) is None
    # The kept session lives on, but no worker hands out its user as cached before the change:
    # the old password hash would let a second changePassword pass with the old password.
    stored = (await models.User.get(id=kept.user.id)).password_hash
    for worker in (a, b):
        user = await worker.authenticate(kept.token)
        assert user is not None and user.password_hash == stored


async def test_a_dropped_message_is_caught_by_the_reconnect_and_bounded_by_the_lifetime(
    db: Settings, clock: Clock, broker: FakeBroker
) -> None:
    a, b = _workers(db, clock, broker)
    first = await a.sign_up("frank", "a-good-password", "Frank", "10.0.0.1")
    second = await a.log_in("frank", "a-good-password", "10.0.0.1")
    for token in (first.token, second.token):
        assert await b.authenticate(token) is not None
    broker.drop_next = True
    assert await a.log_out(first.token)
    assert broker.dropped == [
        ("sessions", {"kind": "token", "token_hash": token_hash(first.token)})
    ]
    # The message never arrived and nothing told B: its entry lives on, for its lifetime only.
    assert await b.authenticate(first.token) is not None
    # The broker lost its connection (that is how Redis pub/sub loses messages): bypassed...
    broker.healthy = False
    assert await b.authenticate(first.token) is None
    assert await b.authenticate(second.token) is not None  # read, not cached
    assert len(b.sessions) == 0
    # ... and emptied when it is back.
    await b.authenticate(second.token)
    await broker.reconnected()
    assert len(b.sessions) == 0
    assert await b.authenticate(first.token) is None

    # A drop the connection never noticed: the lifetime (SESSION_CACHE_MS) bounds it.
    third = await a.log_in("frank", "a-good-password", "10.0.0.1")
    assert await b.authenticate(third.token) is not None
    broker.drop_next = True
    assert await a.log_out(third.token)
    clock.now += timedelta(milliseconds=db.session_cache_ms - 1)
    assert await b.authenticate(third.token) is not None
    clock.now += timedelta(milliseconds=1)
    assert await b.authenticate(third.token) is None


async def test_the_cache_never_outlives_the_session(
    db: Settings, clock: Clock, broker: FakeBroker
) -> None:
    settings = with_settings(db, session_ttl_seconds=60, session_cache_ms=5000)
    a, b = _workers(settings, clock, broker)
    session = await a.sign_up("gina", "a-good-password", "Gina", "10.0.0.1")
    clock.now += timedelta(seconds=58)
    assert await b.authenticate(session.token) is not None
    clock.now += timedelta(seconds=2)
    assert await b.authenticate(session.token) is None


async def test_session_cache_ms_0_reads_every_time(
    db: Settings, clock: Clock, broker: FakeBroker
) -> None:
    a, b = _workers(with_settings(db, session_cache_ms=0), clock, broker)
    session = await a.sign_up("hana", "a-good-password", "Hana", "10.0.0.1")
    counts = [(await _statements(b, session.token))[1] for _ in range(3)]
    assert counts == [1, 1, 1]
    assert len(b.sessions) == 0


async def test_a_read_in_flight_across_a_revocation_is_not_kept(
    db: Settings, clock: Clock, broker: FakeBroker
) -> None:
    a, b = _workers(db, clock, broker)
    session = await a.sign_up("ivan", "a-good-password", "Ivan", "10.0.0.1")
    original = b.session

    async def slow_read(token: str) -> models.Session | None:
        found = await original(token)
        # The revocation commits and arrives while this read is on its way back.
        await a.log_out(token)
        return found

    b.session = slow_read  # type: ignore[method-assign]
    assert await b.authenticate(session.token) is not None  # what the read saw
    b.session = original  # type: ignore[method-assign]
    assert len(b.sessions) == 0
    assert await b.authenticate(session.token) is None


def test_entries_are_bounded_and_unknown_messages_empty_the_cache() -> None:
    cache = SessionCache(2000, 2)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = now + timedelta(days=1)
    users = [models.User(id=i, username=f"u{i}", display_name="U") for i in range(3)]
    for i, user in enumerate(users):
        cache.put(f"h{i}", user, later, now, cache.generation)
    assert len(cache) == 2 and cache.get("h0", now) is None
    cache.forget_user(2)
    assert cache.get("h2", now) is None and cache.get("h1", now) is not None
    cache.forget_message({"kind": "something new"})
    assert len(cache) == 0
    stale = cache.generation
    cache.forget_token("h9")
    cache.put("h1", users[1], later, now, stale)
    assert len(cache) == 0


def test_the_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (load_settings().session_cache_ms, load_settings().session_cache_size) == (2000, 10000)
    monkeypatch.setenv("SESSION_CACHE_MS", "0")
    monkeypatch.setenv("SESSION_CACHE_SIZE", "5")
    assert (load_settings().session_cache_ms, load_settings().session_cache_size) == (0, 5)
    assert "SESSION_CACHE_MS" in os.environ


async def test_through_the_app_log_out_ends_a_cached_session_at_once(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import _client_for

    monkeypatch.setattr("accounts.service.hash_password", _cheap_hasher.hash)
    settings = with_settings(fresh_settings, session_cache_ms=CACHE_MS)
    async for client in _client_for(settings):
        user = await client.sign_up("judy")
        me = "{ me { username } }"
        for _ in range(2):
            assert await user.data(me) == {"me": {"username": "judy"}}
        assert await user.data("mutation { logOut }") == {"logOut": True}
        assert await user.data(me) == {"me": None}


async def test_a_revocation_is_in_redis_before_log_out_answers() -> None:
    """RedisBroker queues events for Redis off the writer's path; a session revocation instead
    goes out before its publisher returns, so a backed-up queue (odds traffic, an outage that
    just ended) can't delay it on the other workers."""
    import asyncio

    from realtime.brokers.redis import AWAITED_CHANNELS, RedisBroker
    from realtime.events import SESSIONS
    from tests.services import start_redis

    assert SESSIONS in AWAITED_CHANNELS
    server = start_redis()
    a, b = RedisBroker(server.url), RedisBroker(server.url)
    heard: list[tuple[str, dict[str, Any]]] = []
    try:
        await a.start()
        await b.start()
        b.listen(lambda channel, message: heard.append((channel, message)))
        # A's queue is stuck (as behind a backlog): only what skips it can arrive.
        assert a._publishing is not None
        a._publishing.cancel()
        await a.publish("comments:1", {"kind": "queued"})
        await a.publish(SESSIONS, {"kind": "token", "token_hash": "abc"})
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert heard == [(SESSIONS, {"kind": "token", "token_hash": "abc"})]
    finally:
        await a.stop()
        await b.stop()
        server.stop()


async def test_cached_user_answers_from_the_cache_only(
    db: Settings, clock: Clock, broker: FakeBroker
) -> None:
    a, b = _workers(db, clock, broker)
    session = await a.sign_up("quinn", "a-good-password", "Quinn", "10.0.0.1")
    with instrument.counting() as counted:
        assert b.cached_user(session.token) is None  # never read on B: only authenticate can say
    assert counted.count == 0
    assert await b.authenticate(session.token) is not None
    cached = b.cached_user(session.token)
    assert cached is not None and cached.username == "quinn"
    cached.password_hash = "changed by one request"
    again = b.cached_user(session.token)
    assert again is not None and again.password_hash != "changed by one request"
    assert b.cached_user("") is None and b.cached_user("x" * 201) is None
    clock.now += timedelta(milliseconds=CACHE_MS)
    assert b.cached_user(session.token) is None  # its lifetime is over
    assert await b.authenticate(session.token) is not None
    assert await a.log_out(session.token)
    assert b.cached_user(session.token) is None  # the revocation reached B
    off = Accounts(
        with_settings(db, session_cache_ms=0),
        MemoryRateLimiter(clock=FakeClock()),
        publish=b.publish,
        clock=clock,
    )
    assert await off.authenticate(session.token) is None  # logged out
    assert off.cached_user(session.token) is None


async def test_the_session_read_is_tortoises(
    db: Settings, clock: Clock, broker: FakeBroker
) -> None:
    a, _ = _workers(db, clock, broker)
    session = await a.sign_up("rhea", "a-good-password", "Rhea", "10.0.0.1")
    read = await a.session(session.token)
    expected = (
        await models.Session.filter(
            token_hash=token_hash(session.token), revoked_at=None, expires_at__gt=clock()
        )
        .select_related("user")
        .first()
    )
    assert read is not None and expected is not None
    assert {k: v for k, v in vars(read).items() if k != "_user"} == {
        k: v for k, v in vars(expected).items() if k != "_user"
    }
    assert vars(read.user) == vars(expected.user) and read.user_id == expected.user_id
    clock.now = read.expires_at  # exactly at its expiry it is over, as Tortoise's filter says
    assert await a.session(session.token) is None
    clock.now -= timedelta(microseconds=1)
    assert await a.session(session.token) is not None
    await models.Session.filter(id=read.id).update(revoked_at=clock())
    assert await a.session(session.token) is None
