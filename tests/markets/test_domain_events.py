"""Domain events: each committed change is published once, after its commit; nothing else is.

The services are built here with a recording publisher, as the app builds them with the
broker's. The last tests go through the app: a mutation publishes to the broker exactly once
(the resolvers no longer publish), and the messages on the wire keep their shape.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from argon2 import PasswordHasher
from tortoise import Tortoise

from accounts.events import SessionRevoked, SessionsRevoked
from accounts.ratelimit import MemoryRateLimiter
from accounts.service import Accounts, token_hash
from api.core.node import from_global_id, to_global_id
from comments.events import CommentChanged
from comments.service import Comments
from db import models
from db.config import tortoise_config
from domain_events import Event, discard
from markets.events import OddsChanged
from markets.trading import Trading
from realtime.brokers import MemoryBroker
from realtime.events import broker_publisher, to_message
from refusals import Refusal, RefusalCode
from settings import Settings
from tests.conftest import FakeClock, GraphQLClient, forget_compiled_statements

_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Recorder:
    """A publisher that keeps what it is given, and can run a check as each event arrives."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.on_event: Any = None

    async def __call__(self, event: Event) -> None:
        if self.on_event is not None:
            await self.on_event(event)
        self.events.append(event)

    def take(self) -> list[Event]:
        """The events since the last take."""
        taken, self.events = self.events, []
        return taken


@pytest.fixture
async def db(fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Settings]:
    """Tortoise on a migrated, empty database for the test."""
    # Sign-ups are not what is tested here: argon2's defaults cost 0.2 s a hash.
    monkeypatch.setattr("accounts.service.hash_password", _cheap_hasher.hash)
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(fresh_settings))
    try:
        yield fresh_settings
    finally:
        await Tortoise.close_connections()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def accounts(db: Settings, recorder: Recorder) -> Accounts:
    return Accounts(db, MemoryRateLimiter(clock=FakeClock()), publish=recorder)


@pytest.fixture
def trading(db: Settings, recorder: Recorder) -> Trading:
    return Trading(db, publish=recorder)


async def _user(accounts: Accounts, recorder: Recorder, name: str) -> tuple[models.User, str]:
    session = await accounts.sign_up(name, "a-good-password", name.title(), "10.0.0.1")
    assert recorder.take() == [], "a sign-up publishes nothing"
    return session.user, session.token


async def _market(trading: Trading, user: models.User) -> tuple[models.Market, list[int]]:
    market = await trading.create_market(
        user,
        "Will the events arrive exactly once?",
        "",
        "The test says so.",
        ["Yes", "No"],
        datetime.now(UTC) + timedelta(days=30),
        10_000,
        [],
        [],
    )
    outcomes = await models.Outcome.filter(market_id=market.id).order_by("position")
    return market, [o.id for o in outcomes]


async def _rows_elsewhere(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows read on a connection of its own, which sees committed data only."""
    url = settings.database_url
    if url.startswith("sqlite://"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            return conn.execute(sql).fetchall()
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


# -- trading -----------------------------------------------------------------------------------


async def test_each_committed_change_of_odds_is_published_once(
    trading: Trading, accounts: Accounts, recorder: Recorder
) -> None:
    alice, _ = await _user(accounts, recorder, "alice")
    market, (yes, no) = await _market(trading, alice)
    assert recorder.take() == [OddsChanged(market.id, 0, None)]

    bought = await trading.buy(alice, yes, 500, idempotency_key="k1")
    assert recorder.take() == [OddsChanged(market.id, bought.market.odds_seq, bought.trade.id)]
    # A replay changes nothing, so it tells nobody.
    replay = await trading.buy(alice, yes, 500, idempotency_key="k1")
    assert replay.replayed and recorder.take() == []

    sold = await trading.sell(alice, yes, bought.trade.shares_units // 2)
    assert recorder.take() == [OddsChanged(market.id, sold.market.odds_seq, sold.trade.id)]
    assert sold.market.odds_seq == bought.market.odds_seq + 1

    resolved = await trading.resolve(market.id, no)
    assert recorder.take() == [OddsChanged(market.id, resolved.odds_seq, None)]
    await trading.resolve(market.id, no)  # again: nothing changes
    assert recorder.take() == []


async def test_refused_trades_and_settlements_publish_nothing(
    trading: Trading, accounts: Accounts, recorder: Recorder
) -> None:
    alice, _ = await _user(accounts, recorder, "alice")
    market, (yes, _no) = await _market(trading, alice)
    recorder.take()
    refusals = {
        RefusalCode.INSUFFICIENT_FUNDS: trading.buy(alice, yes, 10**9),
        RefusalCode.INSUFFICIENT_SHARES: trading.sell(alice, yes, 10_000),
        RefusalCode.VALIDATION: trading.buy(alice, yes, 0),
        RefusalCode.NOT_FOUND: trading.buy(alice, 10**9, 100),
    }
    for code, call in refusals.items():
        with pytest.raises(Refusal) as refused:
            await call
        assert refused.value.code is code
    await trading.cancel(market.id)
    recorder.take()
    with pytest.raises(Refusal) as refused:
        await trading.resolve(market.id, yes)
    assert refused.value.code is RefusalCode.MARKET_NOT_OPEN
    assert recorder.take() == []
    assert await models.Trade.all().count() == 0


async def test_a_trade_that_fails_inside_its_transaction_publishes_nothing(
    trading: Trading,
    accounts: Accounts,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, _ = await _user(accounts, recorder, "alice")
    _, (yes, _no) = await _market(trading, alice)
    recorder.take()

    async def broken(*args: object) -> None:
        raise RuntimeError("the disk is full")

    # The last write of the trade's transaction, after the debit and the trade row.
    monkeypatch.setattr("markets.trading.record_price", broken)
    with pytest.raises(RuntimeError):
        await trading.buy(alice, yes, 500)
    assert recorder.take() == []
    assert await models.Trade.all().count() == 0


async def test_the_publisher_runs_after_the_commit(
    db: Settings, trading: Trading, accounts: Accounts, recorder: Recorder
) -> None:
    alice, _ = await _user(accounts, recorder, "alice")
    await _market(trading, alice)
    outcome = await models.Outcome.filter(position=0).first()
    assert outcome is not None
    seen: list[list[tuple[Any, ...]]] = []

    async def read_elsewhere(event: Event) -> None:
        assert isinstance(event, OddsChanged) and event.trade_id is not None
        seen.append(await _rows_elsewhere(db, f"SELECT id FROM trades WHERE id = {event.trade_id}"))

    recorder.on_event = read_elsewhere
    result = await trading.buy(alice, outcome.id, 500)
    assert seen == [[(result.trade.id,)]], "the event was published before its trade committed"


# -- comments ------------------------------------------------------------------------------------


async def _article() -> models.Article:
    author = await models.Author.create(slug="w", name="W Riter")
    category = await models.Category.create(slug="c", name="C", path="/", depth=0)
    now = datetime.now(UTC)
    return await models.Article.create(
        slug="story",
        title="Story",
        excerpt="e",
        body="b",
        word_count=1,
        published_at=now,
        updated_at=now,
        author=author,
        category=category,
    )


async def test_comment_changes_are_published_once_after_their_commit(
    db: Settings, accounts: Accounts, recorder: Recorder
) -> None:
    comments = Comments(db, MemoryRateLimiter(clock=FakeClock()), publish=recorder)
    alice, _ = await _user(accounts, recorder, "alice")
    article = await _article()
    seen: list[list[tuple[Any, ...]]] = []

    async def read_elsewhere(event: Event) -> None:
        assert isinstance(event, CommentChanged)
        sql = f"SELECT id FROM comments WHERE id = {event.comment_id}"
        seen.append(await _rows_elsewhere(db, sql))

    recorder.on_event = read_elsewhere
    first = await comments.post(alice, article.id, "First!", None)
    assert recorder.take() == [CommentChanged("added", article.id, first.id, 1)]
    assert seen == [[(first.id,)]], "published before the comment committed"
    recorder.on_event = None
    reply = await comments.post(alice, article.id, "A reply.", first.id)
    assert recorder.take() == [CommentChanged("added", article.id, reply.id, 2)]

    await comments.edit(alice, first.id, "First, edited.")
    assert recorder.take() == [CommentChanged("edited", article.id, first.id, 1)]
    await comments.report(alice, reply.id, "Spam.")
    assert recorder.take() == []
    await comments.delete(alice, reply.id)
    assert recorder.take() == [CommentChanged("deleted", article.id, reply.id, 2)]
    await comments.delete(alice, reply.id)  # already deleted: nothing changes
    assert recorder.take() == []


async def test_refused_and_failed_comments_publish_nothing(
    db: Settings, accounts: Accounts, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    comments = Comments(db, MemoryRateLimiter(clock=FakeClock()), publish=recorder)
    alice, _ = await _user(accounts, recorder, "alice")
    article = await _article()
    # Refused inside the transaction (the article's counter is the first write).
    with pytest.raises(Refusal) as refused:
        await comments.post(alice, article.id + 1, "Nowhere.", None)
    assert refused.value.code is RefusalCode.NOT_FOUND
    with pytest.raises(Refusal):
        await comments.post(alice, article.id, " ", None)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    # Fails after the article's counters moved, inside the same transaction.
    monkeypatch.setattr(models.Comment, "create", broken)
    with pytest.raises(RuntimeError):
        await comments.post(alice, article.id, "Lost.", None)
    assert recorder.take() == []
    assert (await models.Article.get(id=article.id)).comment_seq == 0


# -- accounts ------------------------------------------------------------------------------------


async def test_ended_sessions_are_published_by_hash(accounts: Accounts, recorder: Recorder) -> None:
    alice, token = await _user(accounts, recorder, "alice")
    other = (await accounts.log_in("alice", "a-good-password", "10.0.0.1")).token
    assert recorder.take() == []

    with pytest.raises(Refusal):
        await accounts.change_password(alice, token, "a-wrong-password", "a-new-password")
    assert recorder.take() == []
    await accounts.change_password(alice, token, "a-good-password", "a-new-password")
    assert recorder.take() == [SessionsRevoked(alice.id, token_hash(token))]
    assert await accounts.session(other) is None

    assert await accounts.log_out(token) is True
    assert recorder.take() == [SessionRevoked(token_hash(token))]
    assert await accounts.log_out(token) is False  # not live any more: nothing to tell
    assert recorder.take() == []


# -- the wire, and the app's publisher -----------------------------------------------------------


def test_events_keep_their_messages_on_the_wire() -> None:
    assert to_message(CommentChanged("edited", 3, 41, 7)) == (
        "comments:3",
        {"kind": "edited", "comment_id": 41, "seq": 7},
    )
    assert to_message(OddsChanged(5, 12, 99)) == ("odds:5", {"seq": 12, "trade_id": 99})
    assert to_message(OddsChanged(5, 0, None)) == ("odds:5", {"seq": 0, "trade_id": None})
    assert to_message(SessionRevoked("ab12")) == (
        "sessions",
        {"kind": "token", "token_hash": "ab12"},
    )
    assert to_message(SessionsRevoked(8, "cd34")) == (
        "sessions",
        {"kind": "user", "user_id": 8, "keep": "cd34"},
    )
    assert to_message(Event()) is None


async def test_the_broker_publisher_hands_events_to_the_broker() -> None:
    broker = MemoryBroker()  # not started: delivers inline
    received: list[tuple[str, dict[str, Any]]] = []
    broker.listen(lambda channel, message: received.append((channel, message)))
    publish = broker_publisher(broker)
    await publish(OddsChanged(5, 12, 99))
    await publish(Event())  # nobody listens to it: not sent
    await discard(OddsChanged(5, 13, None))
    assert received == [("odds:5", {"seq": 12, "trade_id": 99})]


async def test_a_mutation_publishes_once_through_the_app(demo_client: GraphQLClient) -> None:
    app: Any = demo_client.http._transport.app  # type: ignore[attr-defined]
    received: list[tuple[str, dict[str, Any]]] = []
    app.state.broker.listen(lambda channel, message: received.append((channel, message)))
    alice = await demo_client.log_in("alice")
    market = (
        await models.Market.filter(state=models.MarketState.OPEN, closes_at__gt=datetime.now(UTC))
        .order_by("id")
        .first()
    )
    assert market is not None
    outcome = await models.Outcome.get(market_id=market.id, position=0)
    data = await alice.data(
        """mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "1.00"}) {
             trade { id } errors { code } } }""",
        {"o": to_global_id("Outcome", outcome.id)},
    )
    assert data["buyShares"]["errors"] == []
    trade_id = from_global_id(data["buyShares"]["trade"]["id"], "Trade")[1]
    assert await alice.data("mutation { logOut }") == {"logOut": True}
    # The started broker delivers from its own task: let it run, then some more.
    for _ in range(50):
        await asyncio.sleep(0)
    seq = (await models.Market.get(id=market.id)).odds_seq
    assert received == [
        (f"odds:{market.id}", {"seq": seq, "trade_id": trade_id}),
        ("sessions", {"kind": "token", "token_hash": token_hash(alice.token or "")}),
    ]
