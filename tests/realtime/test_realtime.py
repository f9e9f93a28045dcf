"""Subscriptions over real websockets against uvicorn: live comments and odds, resume, close
codes, revocation, limits, slow consumers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from api.comments.subscriptions import COMMENT_ADDED
from api.core.node import to_global_id
from app import create_app
from db import models
from settings import Settings
from tests.conftest import forget_compiled_statements, seed_demo
from tests.services import free_port

CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"
TRANSPORT = "graphql-transport-ws"


@dataclass
class Live:
    """A running server and what tests need to talk to it."""

    url: str
    ws_url: str
    app: Any
    http: httpx.AsyncClient

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def token(self, username: str, password: str = "demo-password") -> str:
        data = await self.gql(
            "mutation($u: String!, $p: String!) { logIn(input: {username: $u, password: $p}) "
            "{ token } }",
            {"u": username, "p": password},
        )
        token: str = data["logIn"]["token"]
        return token

    async def article(self) -> dict[str, Any]:
        data = await self.gql(
            "query($s: String!) { article(slug: $s) { id commentCount markets { id outcomes { id } } } }",
            {"s": CENTRAL_ASIA},
        )
        article: dict[str, Any] = data["article"]
        return article

    async def connect(
        self, token: str | None = None, protocol: str = TRANSPORT, **headers: str
    ) -> ClientConnection:
        ws = await websockets.connect(
            self.ws_url,
            subprotocols=[Subprotocol(protocol)],
            additional_headers=headers or None,
        )
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await recv(ws))["type"] == "connection_ack"
        return ws


async def recv(ws: ClientConnection, seconds: float = 5) -> str:
    message = await asyncio.wait_for(ws.recv(), seconds)
    return message if isinstance(message, str) else message.decode()


async def next_payload(ws: ClientConnection, sub_id: str = "1") -> dict[str, Any]:
    while True:
        message = json.loads(await recv(ws))
        if message["type"] == "ping":
            continue
        assert message.get("id") == sub_id, message
        assert message["type"] in ("next", "data"), message
        payload: dict[str, Any] = message["payload"]
        return payload


async def subscribe(
    ws: ClientConnection, query: str, variables: dict[str, Any], sub_id: str = "1"
) -> None:
    await ws.send(
        json.dumps(
            {"id": sub_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
    )


async def closed_with(ws: ClientConnection) -> int | None:
    with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code


@contextlib.asynccontextmanager
async def serving(settings: Settings, ws_max_size: int | None = None) -> AsyncIterator[Live]:
    """A uvicorn server for ``settings`` started as every start path starts it;
    ``ws_max_size`` replaces uvicorn's message limit (to test the app's own)."""
    forget_compiled_statements()
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            # As every start path does (app.uvicorn_options): the app derives client addresses.
            proxy_headers=False,
            ws_max_size=ws_max_size or settings.ws_max_message_bytes,
            # As every start path does: a test that leaves a stream open can't hang the run.
            timeout_graceful_shutdown=10,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            yield Live(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/graphql", app, http)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live(fresh_settings: Settings) -> AsyncIterator[Live]:
    """A uvicorn server on its own database with the demo data."""

    settings = replace(
        fresh_settings,
        comment_rate="1000/1",
        ws_init_timeout_seconds=1,
        ws_max_subscriptions=3,
        ws_max_message_bytes=4096,
    )
    await seed_demo(settings)
    async with serving(settings) as server:
        yield server


ADDED = "subscription($a: ID!, $after: Int) { commentAdded(articleId: $a, afterSequence: $after) { sequence body deleted author { username } } }"
UPDATED = (
    "subscription($a: ID!) { commentUpdated(articleId: $a) { sequence body deleted editedAt } }"
)
ODDS = "subscription($m: ID!) { oddsUpdated(marketId: $m) { seq outcomes { probability } lastTrade { amount shares } market { volume } } }"
POST = "mutation($a: ID!, $b: String!, $p: ID) { postComment(input: {articleId: $a, body: $b, parentId: $p}) { comment { id sequence } errors { code } } }"


async def _post(live: Live, token: str, article_id: str, body: str) -> dict[str, Any]:
    data = await live.gql(POST, {"a": article_id, "b": body}, token)
    assert data["postComment"]["errors"] == []
    comment: dict[str, Any] = data["postComment"]["comment"]
    return comment


async def test_live_comments_edits_and_deletions(live: Live) -> None:
    token = await live.token("alice")
    article = await live.article()
    ws = await live.connect()
    await subscribe(ws, ADDED, {"a": article["id"]})
    await subscribe(ws, UPDATED, {"a": article["id"]}, "2")
    await asyncio.sleep(0.1)
    comment = await _post(live, token, article["id"], "Hello **live** readers")
    payload = await next_payload(ws)
    assert payload == {
        "data": {
            "commentAdded": {
                "sequence": comment["sequence"],
                "body": "Hello **live** readers",
                "deleted": False,
                "author": {"username": "alice"},
            }
        }
    }
    await live.gql(
        'mutation($c: ID!) { editComment(input: {commentId: $c, body: "edited"}) { errors { code } } }',
        {"c": comment["id"]},
        token,
    )
    edited = (await next_payload(ws, "2"))["data"]["commentUpdated"]
    assert (edited["body"], edited["deleted"]) == ("edited", False) and edited["editedAt"]
    await live.gql(
        "mutation($c: ID!) { deleteComment(input: {commentId: $c}) { errors { code } } }",
        {"c": comment["id"]},
        token,
    )
    deleted = (await next_payload(ws, "2"))["data"]["commentUpdated"]
    assert (deleted["body"], deleted["deleted"]) == ("", True)
    # Stop one subscription; the other goes on.
    await ws.send(json.dumps({"id": "2", "type": "complete"}))
    second = await _post(live, token, article["id"], "second")
    assert (await next_payload(ws))["data"]["commentAdded"]["sequence"] == second["sequence"]
    await ws.close()


async def test_odds_first_message_then_one_per_change(live: Live) -> None:
    token = await live.token("bob")
    article = await live.article()
    market = article["markets"][0]
    ws = await live.connect()
    await subscribe(ws, ODDS, {"m": market["id"]})
    first = (await next_payload(ws))["data"]["oddsUpdated"]
    assert first["lastTrade"] is None
    row = await models.Market.get(id=int(first["seq"]) * 0 + _pk(market["id"]))
    assert first["seq"] == row.odds_seq
    assert abs(sum(o["probability"] for o in first["outcomes"]) - 1) < 1e-9
    for n in range(3):
        data = await live.gql(
            'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "3.00"}) { trade { shares } errors { code } } }',
            {"o": market["outcomes"][0]["id"]},
            token,
        )
        update = (await next_payload(ws))["data"]["oddsUpdated"]
        assert update["seq"] == first["seq"] + n + 1
        assert update["lastTrade"] == {
            "amount": "3.00",
            "shares": data["buyShares"]["trade"]["shares"],
        }
    await ws.close()


ODDS_FULL = (
    "subscription($m: ID!) { oddsUpdated(marketId: $m) { seq at market { id status volume "
    "traderCount } outcomes { id label probability } lastTrade { id shares amount "
    "probabilityBefore probabilityAfter createdAt } } }"
)


class NoLoaders:
    """Loaders that must not be used: any read fails the test (asking to prime them once
    made, as the hub's lazy loaders allow, is no read: they are never made here)."""

    def on_made(self, call: Any) -> None:
        """Never made: ``call`` is never called."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an odds update read the loader {name}")


async def test_a_trades_odds_update_is_built_from_its_own_rows_and_reads_nothing(
    live: Live,
) -> None:
    """In the publishing process the update comes from the rows the trade left: no statement,
    no loader; the message that crosses processes is still ids + seq only, and the update a
    process builds from that (reading the committed rows) is the same."""
    from db import sqlite_unit
    from db.instrument import counting
    from markets.events import OddsState
    from realtime.events import LocalMessage

    token = await live.token("bob")
    market = (await live.article())["markets"][0]
    received: list[tuple[str, Any]] = []
    live.app.state.broker.listen(lambda channel, message: received.append((channel, message)))
    ws = await live.connect()
    await subscribe(ws, ODDS_FULL, {"m": market["id"]})
    await next_payload(ws)
    data = await live.gql(
        'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "2.00"}) '
        "{ trade { id } errors { code } } }",
        {"o": market["outcomes"][0]["id"]},
        token,
    )
    sent = (await next_payload(ws))["data"]["oddsUpdated"]
    await ws.close()
    assert sent["lastTrade"]["id"] == data["buyShares"]["trade"]["id"]
    ((channel, message),) = [(c, m) for c, m in received if c.startswith("odds:")]
    target = _pk(market["id"])
    assert channel == f"odds:{target}"
    wire = json.loads(json.dumps(message))
    assert wire == {"seq": sent["seq"], "trade_id": _pk(sent["lastTrade"]["id"])}
    source = live.app.state.hub.sources["oddsUpdated"]
    graphql = live.app.state.hub.graphql
    if not sqlite_unit.available():
        # PostgreSQL's trade path leaves no outcome rows at hand: its event carries none, and
        # the update is read as from another process.
        assert not isinstance(message, LocalMessage)
        return
    assert isinstance(message, LocalMessage) and isinstance(message.local, OddsState)
    with counting() as statements:
        local = await source.root(target, message, NoLoaders())
    assert statements.count == 0
    with counting() as statements:
        remote = await source.root(target, wire, graphql.loaders())
    assert statements.count >= 2, "the remote path reads the committed rows"
    assert local.seq == remote.seq == sent["seq"]
    assert local.market.pk == remote.market.pk == target
    assert (local.market.volume, local.market.trader_count) == (
        remote.market.volume,
        remote.market.trader_count,
    )
    assert local.market.status() == remote.market.status()
    assert [(o.pk, o.label, o.probability) for o in local.outcomes] == [
        (o.pk, o.label, o.probability) for o in remote.outcomes
    ]
    trade_fields = ("pk", "shares", "amount", "probability_before", "probability_after")
    assert [getattr(local.last_trade, f) for f in trade_fields] == [
        getattr(remote.last_trade, f) for f in trade_fields
    ]
    assert local.last_trade.created_at == remote.last_trade.created_at
    assert [(o["id"], o["probability"]) for o in sent["outcomes"]] == [
        (to_global_id("Outcome", o.pk), o.probability) for o in remote.outcomes
    ]


async def test_odds_first_message_on_a_market_never_traded(live: Live) -> None:
    # Its odds sequence is still 0: the first message must not wait for a first trade.
    market = await models.Market.filter(odds_seq=0).order_by("id").first()
    assert market is not None, "the demo data leaves some markets untraded"
    outcomes = await models.Outcome.filter(market_id=market.id).count()
    ws = await live.connect()
    await subscribe(ws, ODDS, {"m": to_global_id("Market", market.id)})
    first = (await next_payload(ws))["data"]["oddsUpdated"]
    assert first["seq"] == 0
    assert first["lastTrade"] is None
    assert [o["probability"] for o in first["outcomes"]] == pytest.approx([1 / outcomes] * outcomes)
    await ws.close()


def _pk(global_id: str) -> int:
    from api.core.node import from_global_id

    return from_global_id(global_id)[1]


async def test_resume_across_a_reconnect_while_comments_arrive(live: Live) -> None:
    token = await live.token("alice")
    article = await live.article()
    start = (await models.Article.get(id=_pk(article["id"]))).comment_seq
    posted: list[int] = []

    async def writer() -> None:
        for i in range(40):
            posted.append((await _post(live, token, article["id"], f"stream {i}"))["sequence"])
            await asyncio.sleep(0.005)

    seen: list[int] = []
    task = asyncio.create_task(writer())
    ws = await live.connect()
    await subscribe(ws, ADDED, {"a": article["id"], "after": start})
    while len(seen) < 12:
        seen.append((await next_payload(ws))["data"]["commentAdded"]["sequence"])
    await ws.close()  # drop mid-stream; comments keep coming
    await asyncio.sleep(0.05)
    ws = await live.connect()
    await subscribe(ws, ADDED, {"a": article["id"], "after": seen[-1]})
    await task
    while len(seen) < 40:
        seen.append((await next_payload(ws))["data"]["commentAdded"]["sequence"])
    assert seen == posted == list(range(start + 1, start + 41))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), 0.3)  # nothing doubled
    await ws.close()


async def test_replay_skips_deleted_comments(live: Live) -> None:
    token = await live.token("alice")
    article = await live.article()
    start = (await models.Article.get(id=_pk(article["id"]))).comment_seq
    a = await _post(live, token, article["id"], "kept 1")
    b = await _post(live, token, article["id"], "gone")
    c = await _post(live, token, article["id"], "kept 2")
    await live.gql(
        "mutation($c: ID!) { deleteComment(input: {commentId: $c}) { errors { code } } }",
        {"c": b["id"]},
        token,
    )
    ws = await live.connect()
    await subscribe(ws, ADDED, {"a": article["id"], "after": start})
    got = [(await next_payload(ws))["data"]["commentAdded"]["sequence"] for _ in range(2)]
    assert got == [a["sequence"], c["sequence"]]
    d = await _post(live, token, article["id"], "live after gap")
    assert (await next_payload(ws))["data"]["commentAdded"]["sequence"] == d["sequence"]
    await ws.close()


async def test_protocol_violations_get_the_spec_close_codes(live: Live) -> None:
    # 4401: subscribe before connection_init.
    async with websockets.connect(live.ws_url, subprotocols=[TRANSPORT]) as ws:  # type: ignore[list-item]
        await subscribe(ws, ADDED, {"a": "x"})
        assert await closed_with(ws) == 4401
    # 4408: no connection_init in time (1 s in this test's settings).
    async with websockets.connect(live.ws_url, subprotocols=[TRANSPORT]) as ws:  # type: ignore[list-item]
        assert await closed_with(ws) == 4408
    # 4429: a second connection_init.
    ws = await live.connect()
    await ws.send(json.dumps({"type": "connection_init"}))
    assert await closed_with(ws) == 4429
    # 4400: not JSON, or not a message.
    for bad in [
        "not json",
        json.dumps({"no": "type"}),
        json.dumps({"type": "subscribe", "id": 5}),
        json.dumps({"type": "subscribe", "id": "q", "payload": {"query": 42}}),
        json.dumps(
            {
                "type": "subscribe",
                "id": "v",
                "payload": {"query": "{ stats { articleCount } }", "variables": []},
            }
        ),
    ]:
        ws = await live.connect()
        await ws.send(bad)
        assert await closed_with(ws) == 4400, bad
    # 4409: a subscription id in use.
    article = await live.article()
    ws = await live.connect()
    await subscribe(ws, ADDED, {"a": article["id"]})
    await subscribe(ws, ADDED, {"a": article["id"]})
    assert await closed_with(ws) == 4409
    # 1009: a message over the size limit.
    ws = await live.connect()
    await ws.send(json.dumps({"type": "ping", "payload": {"x": "y" * 5000}}))
    assert await closed_with(ws) == 1009
    # 4406: no supported subprotocol.
    async with websockets.connect(live.ws_url) as ws:
        assert await closed_with(ws) == 4406
    # 4403: a bad token.
    async with websockets.connect(live.ws_url, subprotocols=[TRANSPORT]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
        )
        assert await closed_with(ws) == 4403
    # Ping gets pong.
    ws = await live.connect()
    await ws.send(json.dumps({"type": "ping", "payload": {"n": 1}}))
    assert json.loads(await recv(ws)) == {"type": "pong", "payload": {"n": 1}}
    await ws.close()


async def test_cross_site_handshakes_are_refused(live: Live) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            live.ws_url,
            subprotocols=[TRANSPORT],  # type: ignore[list-item]
            additional_headers={"Origin": "https://evil.example"},
        )
    assert refused.value.response.status_code == 403
    ws = await live.connect(Origin="http://localhost:3000")
    await ws.close()


async def test_errors_as_messages_not_silent_streams(live: Live) -> None:
    ws = await live.connect()
    missing = to_global_id("Article", 999999)
    await subscribe(ws, ADDED, {"a": missing})
    message = json.loads(await recv(ws))
    assert message["type"] == "error" and message["id"] == "1"
    assert message["payload"][0]["extensions"]["code"] == "NOT_FOUND"
    await subscribe(ws, "subscription { nope }", {}, "2")
    message = json.loads(await recv(ws))
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    await subscribe(ws, ADDED, {"a": "garbage"}, "3")
    message = json.loads(await recv(ws))
    assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # Queries over the socket: next, then complete.
    await subscribe(ws, "{ stats { articleCount } }", {}, "4")
    assert json.loads(await recv(ws)) == {
        "id": "4",
        "type": "next",
        "payload": {"data": {"stats": {"articleCount": 50}}},
    }
    assert json.loads(await recv(ws)) == {"id": "4", "type": "complete"}
    await ws.close()


async def test_subscriptions_per_connection_are_limited(live: Live) -> None:
    article = await live.article()
    ws = await live.connect()
    for n in range(3):
        await subscribe(ws, ADDED, {"a": article["id"]}, str(n))
    await subscribe(ws, ADDED, {"a": article["id"]}, "over")
    message = json.loads(await recv(ws))
    assert message["id"] == "over" and message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    await ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await recv(ws))["type"] == "pong"  # the socket stays open
    await ws.close()


async def test_revocation_closes_sockets_with_4403(live: Live) -> None:
    token = await live.token("alice", "demo-password")
    other = await live.token("alice", "demo-password")
    article = await live.article()
    ws1 = await live.connect(token)
    ws2 = await live.connect(other)
    await subscribe(ws1, ADDED, {"a": article["id"]})
    await subscribe(ws2, ADDED, {"a": article["id"]})
    await asyncio.sleep(0.1)
    assert await live.gql("mutation { logOut }", token=token) == {"logOut": True}
    assert await closed_with(ws1) == 4403
    # The other session is untouched until the password changes.
    third = await live.token("alice")
    await live.gql(
        'mutation { changePassword(input: {currentPassword: "demo-password", newPassword: "brand-new-pass"}) { errors { code } } }',
        token=third,
    )
    assert await closed_with(ws2) == 4403


async def test_legacy_graphql_ws_protocol(live: Live) -> None:
    token = await live.token("bob")
    article = await live.article()
    ws = await live.connect(protocol="graphql-ws")
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "start",
                "payload": {"query": ADDED, "variables": {"a": article["id"]}},
            }
        )
    )
    await asyncio.sleep(0.1)
    comment = await _post(live, token, article["id"], "old clients too")
    payload = await next_payload(ws)
    assert payload["data"]["commentAdded"]["sequence"] == comment["sequence"]
    await ws.send(json.dumps({"id": "1", "type": "stop"}))
    await ws.send(json.dumps({"type": "connection_terminate"}))
    assert await closed_with(ws) == 1000


async def test_a_slow_consumer_is_cut_off_without_delaying_others(fresh_settings: Settings) -> None:
    """A client that stops reading: its queue stays bounded, it gets an error, others go on."""
    from realtime.fanout import Connection, Group, Hub, Sub

    class StuckSocket:
        sent: list[str] = []

        async def send_text(self, frame: str) -> None:
            await asyncio.Event().wait()  # never drains

    class FastSocket:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send_text(self, frame: str) -> None:
            self.sent.append(frame)

    settings = replace(fresh_settings, ws_queue_length=4)
    slow = Connection(StuckSocket(), "graphql-transport-ws", settings)
    fast_socket = FastSocket()
    fast = Connection(fast_socket, "graphql-transport-ws", settings)
    writers = [asyncio.create_task(slow.writer()), asyncio.create_task(fast.writer())]
    hub = Hub.__new__(Hub)
    hub.groups, hub.by_channel, hub.connections = {}, {}, set()
    # The real source: ordered, sequenced delivery (the overflow path under test).
    group = Group(
        hub,
        ("k",),
        "commentAdded",
        1,
        "comments:1",
        None,  # type: ignore[arg-type]
        None,
        source=COMMENT_ADDED,
    )
    subs = [Sub(slow, "s", group, replaying=False), Sub(fast, "f", group, replaying=False)]
    for sub in subs:
        group.subs.add(sub)
        sub.conn.subs[sub.id] = sub
    hub.groups[group.key] = group
    hub.by_channel["comments:1"] = {group}
    for seq in range(1, 101):
        for sub in list(group.subs):
            sub.offer(seq, '{"data":{"n":' + str(seq) + "}}")
        await asyncio.sleep(0)
    assert len(slow.queue) <= 5  # the bound, plus the error frame
    assert "s" not in slow.subs and subs[0].done
    assert any('"SUBSCRIPTION_OVERFLOW"' in frame for frame in slow.queue)
    await asyncio.sleep(0.01)
    assert len(fast_socket.sent) == 100
    for writer in writers:
        writer.cancel()


async def test_root_fields_inside_fragments_and_bad_messages_keep_the_socket(live: Live) -> None:
    token = await live.token("alice")
    article = await live.article()
    ws = await live.connect()
    await subscribe(
        ws,
        "subscription($a: ID!) { ...F } fragment F on Subscription { commentAdded(articleId: $a) { sequence } }",
        {"a": article["id"]},
    )
    await subscribe(
        ws,
        "subscription($a: ID!) { ... on Subscription { commentUpdated(articleId: $a) { sequence } } }",
        {"a": article["id"]},
        "2",
    )
    await asyncio.sleep(0.1)
    comment = await _post(live, token, article["id"], "through a fragment")
    assert (await next_payload(ws))["data"]["commentAdded"]["sequence"] == comment["sequence"]
    await ws.close()


async def test_replaying_past_the_limit_is_a_coded_error(fresh_settings: Settings) -> None:

    settings = replace(fresh_settings, ws_replay_limit=2)
    await seed_demo(settings)
    async with serving(settings) as server:
        article = await server.article()
        ws = await server.connect()
        await subscribe(ws, ADDED, {"a": article["id"], "after": 0})
        first = [json.loads(await recv(ws)) for _ in range(3)]
        assert [m["type"] for m in first] == ["next", "next", "error"]
        error = first[2]["payload"][0]
        assert error["extensions"]["code"] == "REPLAY_LIMIT"
        assert (
            error["extensions"]["lastSequence"]
            == first[1]["payload"]["data"]["commentAdded"]["sequence"]
        )
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await recv(ws))["type"] == "pong"
        await ws.close()


@pytest.mark.parametrize(
    "shape",
    ["authorization", "Authorization", "headers.Authorization", "headers.authorization"],
)
async def test_connection_init_takes_the_token_in_either_shape(live: Live, shape: str) -> None:
    token = await live.token("alice")
    value = f"Bearer {token}"
    payload: dict[str, Any] = (
        {"headers": {shape.split(".")[1]: value}}
        if shape.startswith("headers.")
        else {shape: value}
    )
    ws = await websockets.connect(live.ws_url, subprotocols=[Subprotocol(TRANSPORT)])
    try:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await recv(ws))["type"] == "connection_ack"
        await subscribe(ws, "{ me { username } }", {})
        assert await next_payload(ws) == {"data": {"me": {"username": "alice"}}}
    finally:
        await ws.close()


async def test_connection_init_with_a_bad_token_in_the_headers_shape_is_4403(live: Live) -> None:
    for payload in (
        {"headers": {"Authorization": "Bearer nope"}},
        {"headers": {"Authorization": 5}},
    ):
        ws = await websockets.connect(live.ws_url, subprotocols=[Subprotocol(TRANSPORT)])
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert await closed_with(ws) == 4403, payload


async def test_local_dev_origins_may_open_a_socket(live: Live) -> None:
    for origin in ("http://localhost:5173", "http://127.0.0.1:8080"):
        ws = await live.connect(Origin=origin)
        await ws.close()
