"""``GET /metrics``: its access rules, its text (parsed with prometheus-client's own parser), and
counters that move by exactly what a scripted session implies (trades, refusals, settlements,
websockets, subscriptions, deliveries, replays, broker events, the database pool).

The registry is the process's: every check compares a scrape with one taken before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

import metrics
from app import create_app
from db import models
from settings import Settings, SettingsError, defaults_for, load_settings
from tests.conftest import GraphQLClient, forget_compiled_statements, seed_demo
from tests.realtime.test_realtime import ADDED, ODDS, POST, Live, recv, serving, subscribe

TOKEN = "s3cret-metrics-token-0123456789"

Key = tuple[str, tuple[tuple[str, str], ...]]


class Scrape:
    """One scrape's samples, read by name and labels (0 for a series not there yet)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.values: dict[Key, float] = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in self.families.values()
            for sample in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)

    def since(self, before: Scrape, name: str, **labels: str) -> float:
        """How far the sample moved since ``before``."""
        return self(name, **labels) - before(name, **labels)


async def scrape(http: httpx.AsyncClient, **headers: str) -> Scrape:
    """``GET /metrics``, answered 200 with the Prometheus text, parsed."""
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert response.headers["cache-control"] == "no-store"
    return Scrape(response.text)


async def until(
    http: httpx.AsyncClient, check: Callable[[Scrape], bool], seconds: float = 5.0
) -> Scrape:
    """Scrape until ``check`` holds (the broker delivers after the mutation answers)."""
    deadline = time.monotonic() + seconds
    while True:
        current = await scrape(http)
        if check(current) or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.02)


@pytest.fixture
def bare_settings(tmp_path: Path) -> Settings:
    """Settings on a database no request of these tests reads (only /metrics is asked for)."""
    return Settings(database_url=f"sqlite://{tmp_path}/metrics.sqlite3", env="test")


def production(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with production's defaults."""
    return replace(defaults_for("production"), database_url=settings.database_url, **changes)


@contextlib.asynccontextmanager
async def http_for(settings: Settings, peer: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app for ``settings``, its requests coming from ``peer``."""
    forget_compiled_statements()
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(peer, 40000)),
            base_url="http://testserver",
        ) as http,
    ):
        yield http


async def get(settings: Settings, peer: str = "127.0.0.1", **headers: str) -> httpx.Response:
    """``GET /metrics`` of a new app for ``settings`` from ``peer``."""
    async with http_for(settings, peer) as http:
        return await http.get("/metrics", headers=headers)


# -- the text --------------------------------------------------------------------------------


async def test_metrics_parse_and_list_the_whole_catalogue(bare_settings: Settings) -> None:
    async with http_for(bare_settings) as http:
        current = await scrape(http)
    declared = {m.name for m in metrics.REGISTRY.collect()}
    assert declared and all(name.startswith("agora_") for name in declared)
    assert declared <= set(current.families)
    # Label children built at start-up are there at 0 before anything happened.
    assert ("agora_broker_published_total", (("kind", "comments"),)) in current.values
    assert ("agora_http_streams_open", (("protocol", "sse"),)) in current.values


async def test_a_head_request_answers_like_get(bare_settings: Settings) -> None:
    async with http_for(bare_settings) as http:
        response = await http.head("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"] == CONTENT_TYPE_LATEST


async def test_concurrent_scrapes_share_one_render(
    bare_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders = 0
    real = metrics.render

    def counted() -> bytes:
        nonlocal renders
        renders += 1
        time.sleep(0.2)  # on the render thread: the loop goes on meanwhile
        return real()

    monkeypatch.setattr(metrics, "render", counted)
    async with http_for(bare_settings) as http:
        started = time.monotonic()
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while time.monotonic() - started < 0.15:
                ticks += 1
                await asyncio.sleep(0.01)

        *responses, _ = await asyncio.gather(*(http.get("/metrics") for _ in range(5)), ticking())
    assert [r.status_code for r in responses if r] == [200] * 5
    assert len({r.text for r in responses if r}) == 1
    assert renders == 1
    # The loop kept turning while the render ran.
    assert ticks >= 5


async def test_a_failed_render_is_a_coded_500(
    bare_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> bytes:
        raise OSError("a worker's file vanished")

    monkeypatch.setattr(metrics, "render", broken)
    response = await get(bare_settings)
    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "vanished" not in response.text


# -- access ----------------------------------------------------------------------------------


async def test_production_without_a_token_or_allow_list_answers_as_an_unknown_path(
    bare_settings: Settings,
) -> None:
    async with http_for(production(bare_settings)) as http:
        refused = await http.get("/metrics")
        unknown = await http.get("/no-such-page")
        # Nor does another method tell the route exists (a 405 would).
        posted = await http.post("/metrics")
    assert refused.status_code == 404 and posted.status_code == 404
    assert refused.json() == unknown.json() == posted.json()
    # The same headers but each response's own request id.
    assert {k: v for k, v in refused.headers.items() if k != "x-request-id"} == {
        k: v for k, v in unknown.headers.items() if k != "x-request-id"
    }
    assert refused.headers["x-request-id"] != unknown.headers["x-request-id"]
    assert refused.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "agora_" not in refused.text


@pytest.mark.parametrize("env", ["production", "development"])
async def test_a_token_is_wanted_when_set(bare_settings: Settings, env: str) -> None:
    settings = replace(
        production(bare_settings) if env == "production" else bare_settings,
        metrics_token=TOKEN,
    )
    async with http_for(settings) as http:
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        prefix = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN[:-1]}"})
        basic = await http.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
        latin = "Bearer \u00e9t\u00e9".encode("latin-1")
        odd = await http.get("/metrics", headers=[(b"Authorization", latin)])
        right = await http.get("/metrics", headers={"Authorization": f"bearer  {TOKEN} "})
    for refused in (missing, wrong, prefix, basic, odd):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "agora_" not in refused.text
    assert right.status_code == 200
    assert "agora_trades_total" in right.text


async def test_the_allow_list_checks_the_derived_client_address(bare_settings: Settings) -> None:
    settings = production(
        bare_settings, metrics_allow=("10.1.0.0/16", "2001:db8::1"), trusted_proxies=("10.9.0.1",)
    )
    assert (await get(settings, "10.1.2.3")).status_code == 200
    assert (await get(settings, "2001:db8::1")).status_code == 200
    # An IPv4 client on a dual-stack socket.
    assert (await get(settings, "::ffff:10.1.2.3")).status_code == 200
    other = await get(settings, "10.2.0.1")
    assert other.status_code == 403
    assert other.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "agora_" not in other.text
    # Behind the trusted proxy: the address it forwards decides.
    forwarded = {"X-Forwarded-For": "10.1.2.3"}
    assert (await get(settings, "10.9.0.1", **forwarded)).status_code == 200
    assert (await get(settings, "10.9.0.1", **{"X-Forwarded-For": "10.2.0.1"})).status_code == 403
    assert (await get(settings, "10.9.0.1")).status_code == 403  # the proxy itself isn't listed
    # An untrusted peer can't claim an allowed address.
    assert (await get(settings, "10.2.0.1", **forwarded)).status_code == 403
    # A client can prepend anything: only what the proxy appended is believed.
    spoofed = {"X-Forwarded-For": "10.1.2.3, 10.2.0.1"}
    assert (await get(settings, "10.9.0.1", **spoofed)).status_code == 403


async def test_token_and_allow_list_together_both_apply(bare_settings: Settings) -> None:
    settings = production(bare_settings, metrics_allow=("10.1.0.0/16",), metrics_token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert (await get(settings, "10.1.0.7", **bearer)).status_code == 200
    assert (await get(settings, "10.1.0.7")).status_code == 401
    # The address is checked first: a stranger learns nothing of the token.
    stranger = await get(settings, "10.2.0.7")
    assert stranger.status_code == 403 and "www-authenticate" not in stranger.headers
    assert (await get(settings, "10.2.0.7", **bearer)).status_code == 403


async def test_development_is_open_unless_a_rule_is_set(bare_settings: Settings) -> None:
    assert (await get(bare_settings, "203.0.113.9")).status_code == 200
    listed = replace(bare_settings, metrics_allow=("127.0.0.1",))
    assert (await get(listed, "203.0.113.9")).status_code == 403
    assert (await get(listed, "127.0.0.1")).status_code == 200


def test_the_settings_are_checked_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.0/8, ::1 ,")
    monkeypatch.setenv("METRICS_TOKEN", f"  {TOKEN}\n")
    settings = load_settings()
    assert settings.metrics_allow == ("10.0.0.0/8", "::1")
    assert settings.metrics_token == TOKEN
    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.0/8,not-a-range")
    with pytest.raises(SettingsError, match="METRICS_ALLOW"):
        load_settings()
    monkeypatch.setenv("METRICS_ALLOW", "")
    monkeypatch.setenv("METRICS_TOKEN", "short")
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        load_settings()


# -- markets, refusals, settlements, the pool --------------------------------------------------

CREATE = """
mutation($input: CreateMarketInput!) {
  createMarket(input: $input) { market { id outcomes { id } } errors { code } }
}
"""
BUY = """
mutation($o: ID!, $a: Decimal!, $k: String) {
  buyShares(input: {outcomeId: $o, amount: $a, idempotencyKey: $k}) {
    trade { id shares } errors { code } }
}
"""
SELL = """
mutation($o: ID!, $s: Decimal!) {
  sellShares(input: {outcomeId: $o, shares: $s}) { trade { id } errors { code } }
}
"""
RESOLVE = """
mutation($m: ID!, $o: ID!) {
  resolveMarket(input: {marketId: $m, outcomeId: $o}) { market { status } errors { code } }
}
"""


async def test_trades_refusals_and_settlements_count_what_committed(
    fresh_client: GraphQLClient, fresh_settings: Settings
) -> None:
    http = fresh_client.http
    admin = await fresh_client.sign_up("boss")
    await models.User.filter(username="boss").update(role=models.Role.ADMIN)
    created = (
        await admin.data(
            CREATE,
            {
                "input": {
                    "question": "Will the metrics count exactly?",
                    "description": "A market made by a test.",
                    "resolutionCriteria": "Resolves by the test's decision.",
                    "outcomes": ["Yes", "No"],
                    "closesAt": "2099-01-01T00:00:00+00:00",
                    "liquidity": "100.00",
                }
            },
        )
    )["createMarket"]
    assert created["errors"] == []
    market, yes = created["market"]["id"], created["market"]["outcomes"][0]["id"]
    trader = await fresh_client.sign_up("trader")
    before = await scrape(http)

    shares = []
    for amount in ("10.00", "12.50", "7.25"):
        bought = (await trader.data(BUY, {"o": yes, "a": amount}))["buyShares"]
        assert bought["errors"] == []
        shares.append(bought["trade"]["shares"])
    # The replay of an idempotent buy is the same trade, not another one.
    keyed = {"o": yes, "a": "1.00", "k": "metrics-key-1"}
    first = (await trader.data(BUY, keyed))["buyShares"]
    again = (await trader.data(BUY, keyed))["buyShares"]
    assert first["trade"]["id"] == again["trade"]["id"]
    # Sent at once, a key's copies wait for its first trade under the locks and answer as its
    # replay: one trade.
    raced = {"o": yes, "a": "2.00", "k": "metrics-key-2"}
    copies = await asyncio.gather(*(trader.data(BUY, raced) for _ in range(4)))
    assert len({copy["buyShares"]["trade"]["id"] for copy in copies}) == 1
    sold = (await trader.data(SELL, {"o": yes, "s": shares[0]}))["sellShares"]
    assert sold["errors"] == []
    refused = (await trader.data(BUY, {"o": yes, "a": "999999.00"}))["buyShares"]
    assert refused["errors"] == [{"code": "INSUFFICIENT_FUNDS"}] and refused["trade"] is None
    after = await scrape(http)

    assert after.since(before, "agora_trades_total", side="buy") == 5
    assert after.since(before, "agora_trades_total", side="sell") == 1
    assert (
        after.since(before, "agora_refusals_total", field="buyShares", code="INSUFFICIENT_FUNDS")
        == 1
    )
    assert (
        sum(
            after.since(before, name, **dict(labels))
            for name, labels in after.values
            if name == "agora_refusals_total"
        )
        == 1
    )

    # A reader may not resolve: FORBIDDEN is a GraphQL error, not a refusal.
    assert (await trader.post(RESOLVE, {"m": market, "o": yes}))["errors"]
    resolved = (await admin.data(RESOLVE, {"m": market, "o": yes}))["resolveMarket"]
    assert resolved == {"market": {"status": "RESOLVED"}, "errors": []}
    # Resolving it again the same way changes nothing, and counts nothing.
    assert (await admin.data(RESOLVE, {"m": market, "o": yes}))["resolveMarket"]["errors"] == []
    no = created["market"]["outcomes"][1]["id"]
    other = (await admin.data(RESOLVE, {"m": market, "o": no}))["resolveMarket"]
    assert other["errors"] == [{"code": "MARKET_NOT_OPEN"}]
    late = (await trader.data(BUY, {"o": yes, "a": "1.00"}))["buyShares"]
    assert late["errors"] == [{"code": "MARKET_NOT_OPEN"}]
    # Each committed change of the market's odds went through the broker, once: the trades
    # (not the replays, nor the refusals) and the settlement.
    settled = await until(
        http, lambda s: s.since(before, "agora_broker_delivered_total", kind="odds") >= 7
    )
    assert settled.since(before, "agora_settlements_total", kind="resolved") == 1
    assert settled.since(before, "agora_settlements_total", kind="cancelled") == 0
    assert settled.since(before, "agora_trades_total", side="buy") == 5
    assert (
        settled.since(before, "agora_refusals_total", field="resolveMarket", code="MARKET_NOT_OPEN")
        == 1
    )
    assert (
        settled.since(before, "agora_refusals_total", field="buyShares", code="MARKET_NOT_OPEN")
        == 1
    )
    assert settled.since(before, "agora_broker_published_total", kind="odds") == 7
    assert settled.since(before, "agora_broker_delivered_total", kind="odds") == 7
    assert settled.since(before, "agora_broker_lag_seconds_count", kind="odds") == 7

    # Nothing holds a connection between requests; SQLite has its one.
    assert settled("agora_db_pool_connections_in_use") == 0
    size = settled("agora_db_pool_connections")
    if fresh_settings.is_sqlite:
        assert size == 1
    else:
        assert 1 <= size <= fresh_settings.db_pool_size


async def test_the_pool_gauges_see_a_connection_in_use(fresh_client: GraphQLClient) -> None:
    from tortoise.transactions import in_transaction

    from app.metrics_route import pool_usage, sample_pool

    await fresh_client.data("{ stats { articleCount } }")  # connections open on first use
    size, in_use = pool_usage() or (0, 0)
    assert size >= 1 and in_use == 0
    async with in_transaction() as conn:
        await conn.execute_query("SELECT 1")
        sample_pool()
        assert pool_usage() is not None and pool_usage()[1] == 1  # type: ignore[index]
        inside = Scrape(metrics.render().decode())
        assert inside("agora_db_pool_connections_in_use") == 1
    assert (pool_usage() or (0, 1))[1] == 0


# -- real time -------------------------------------------------------------------------------

SUBSCRIBERS = 3


@pytest.fixture
async def live(fresh_settings: Settings) -> AsyncIterator[Live]:
    """A uvicorn server on its own demo database."""
    settings = replace(fresh_settings, comment_rate="1000/1")
    await seed_demo(settings)
    async with serving(settings) as server:
        yield server


async def _frames(ws: Any, count: int, seconds: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        message = json.loads(await recv(ws, seconds))
        if message["type"] not in ("ping", "pong"):
            got.append(message)
    return got


async def test_sockets_subscriptions_deliveries_and_broker_events_are_counted(
    live: Live,
) -> None:
    http = live.http
    token = await live.token("alice")
    article = await live.article()
    before = await scrape(http)

    ws = await live.connect()
    opened = await scrape(http)
    assert opened.since(before, "agora_websockets_open") == 1
    for n in range(SUBSCRIBERS):
        await subscribe(ws, ADDED, {"a": article["id"]}, str(n))
    subscribed = await until(
        http,
        lambda s: (
            s.since(before, "agora_subscriptions_active", field="commentAdded") == SUBSCRIBERS
        ),
    )
    assert subscribed.since(before, "agora_subscriptions_active", field="commentAdded") == 3
    assert subscribed.since(before, "agora_subscription_groups", field="commentAdded") == 1

    posted = await live.gql(POST, {"a": article["id"], "b": "counted once"}, token)
    assert posted["postComment"]["errors"] == []
    frames = await _frames(ws, SUBSCRIBERS)
    assert sorted(f["id"] for f in frames) == ["0", "1", "2"]
    delivered = await scrape(http)
    assert delivered.since(before, "agora_subscription_deliveries_total", field="commentAdded") == 3
    assert delivered.since(before, "agora_broker_published_total", kind="comments") == 1
    assert delivered.since(before, "agora_broker_delivered_total", kind="comments") == 1
    assert delivered.since(before, "agora_broker_lag_seconds_count", kind="comments") == 1
    lag = delivered.since(before, "agora_broker_lag_seconds_sum", kind="comments")
    assert 0 <= lag < 1

    # A replay from the start: every comment of the article, counted as replayed and delivered.
    await subscribe(ws, ADDED, {"a": article["id"], "after": 0}, "replay")
    replayed = await until(
        http, lambda s: s.since(before, "agora_subscription_replays_total", outcome="ok") == 1
    )
    count = replayed.since(before, "agora_subscription_replayed_events_total")
    frames = await _frames(ws, int(count))
    assert {f["id"] for f in frames} == {"replay"} and count >= 2
    assert frames[-1]["payload"]["data"]["commentAdded"]["body"] == "counted once"
    assert (
        replayed.since(before, "agora_subscription_deliveries_total", field="commentAdded")
        == 3 + count
    )
    assert replayed.since(before, "agora_subscriptions_active", field="commentAdded") == 4
    # Its own group: its variables differ.
    assert replayed.since(before, "agora_subscription_groups", field="commentAdded") == 2

    # The odds: the first message (the market's state) and one per trade are deliveries.
    market = article["markets"][0]
    await subscribe(ws, ODDS, {"m": market["id"]}, "odds")
    assert (await _frames(ws, 1))[0]["id"] == "odds"
    first = await scrape(http)
    assert first.since(before, "agora_subscription_deliveries_total", field="oddsUpdated") == 1
    assert first.since(before, "agora_subscription_groups", field="oddsUpdated") == 1
    bought = await live.gql(BUY, {"o": market["outcomes"][0]["id"], "a": "3.00"}, token)
    assert bought["buyShares"]["errors"] == []
    assert (await _frames(ws, 1))[0]["id"] == "odds"
    traded = await scrape(http)
    assert traded.since(before, "agora_subscription_deliveries_total", field="oddsUpdated") == 2
    assert traded.since(before, "agora_broker_published_total", kind="odds") == 1
    await ws.send(json.dumps({"id": "odds", "type": "complete"}))

    # One subscription completed, then the socket closed: everything back where it was.
    await ws.send(json.dumps({"id": "0", "type": "complete"}))
    completed = await until(
        http,
        lambda s: s.since(before, "agora_subscriptions_active", field="commentAdded") == 3,
    )
    assert completed.since(before, "agora_subscription_groups", field="commentAdded") == 2
    await ws.close()
    closed = await until(http, lambda s: s.since(before, "agora_websockets_open") == 0)
    assert closed.since(before, "agora_websockets_open") == 0
    assert closed.since(before, "agora_subscriptions_active", field="commentAdded") == 0
    assert closed.since(before, "agora_subscription_groups", field="commentAdded") == 0
    assert closed.since(before, "agora_subscriptions_active", field="oddsUpdated") == 0
    assert closed.since(before, "agora_subscription_groups", field="oddsUpdated") == 0
    assert closed.since(before, "agora_subscription_overflows_total", field="commentAdded") == 0


async def test_a_replay_ended_by_its_limit_is_counted_so(fresh_settings: Settings) -> None:
    settings = replace(fresh_settings, ws_replay_limit=2)
    await seed_demo(settings)
    async with serving(settings) as server:
        article = await server.article()
        before = await scrape(server.http)
        ws = await server.connect()
        await subscribe(ws, ADDED, {"a": article["id"], "after": 0})
        frames = await _frames(ws, 3)
        assert [f["type"] for f in frames] == ["next", "next", "error"]
        after = await until(
            server.http,
            lambda s: (
                s.since(before, "agora_subscription_replays_total", outcome="REPLAY_LIMIT") == 1
            ),
        )
        assert after.since(before, "agora_subscription_replays_total", outcome="REPLAY_LIMIT") == 1
        assert after.since(before, "agora_subscription_replays_total", outcome="ok") == 0
        assert after.since(before, "agora_subscription_replayed_events_total") == 2
        await ws.close()


async def test_an_http_stream_is_counted_while_it_is_open(live: Live) -> None:
    article = await live.article()
    before = await scrape(live.http)
    body = {"query": ADDED, "variables": {"a": article["id"]}}
    async with live.http.stream(
        "POST", "/graphql", json=body, headers={"Accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200
        chunks = response.aiter_text()
        await anext(chunks)
        during = await until(
            live.http,
            lambda s: s.since(before, "agora_subscriptions_active", field="commentAdded") == 1,
        )
        assert during.since(before, "agora_http_streams_open", protocol="sse") == 1
        assert during.since(before, "agora_http_streams_open", protocol="multipart") == 0
        assert during.since(before, "agora_websockets_open") == 0
    after = await until(
        live.http, lambda s: s.since(before, "agora_http_streams_open", protocol="sse") == 0
    )
    assert after.since(before, "agora_http_streams_open", protocol="sse") == 0
    assert after.since(before, "agora_subscriptions_active", field="commentAdded") == 0
