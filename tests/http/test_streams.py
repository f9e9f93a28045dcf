"""Subscriptions over HTTP, driven over real sockets (uvicorn on loopback): Server-Sent Events
(graphql-sse's distinct connections mode) and Apollo's multipart protocol, through the same hub
as the websocket: live comments and odds, afterSequence replays, heartbeats, errors in the
stream, the per-address and per-viewer stream limits, revocation, and the client going away.

The real npm clients (graphql-sse, Apollo Client) run in tests/http/test_http_clients.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from settings import Settings
from tests.conftest import seed_demo
from tests.realtime.test_realtime import ADDED, ODDS, POST, Live, serving

SHIPPED = Path(__file__).resolve().parents[2] / "demo" / "trusted-documents.json"
SHIPPED_TEXT = SHIPPED.read_text()
SSE_ACCEPT = {"Accept": "text/event-stream"}
MULTIPART_ACCEPT = {"Accept": 'multipart/mixed;subscriptionSpec="1.0",application/json'}


@pytest.fixture
async def live(fresh_settings: Settings) -> AsyncIterator[Live]:
    """A uvicorn server on its own demo database, with quick heartbeats and small stream caps."""
    settings = replace(
        fresh_settings,
        comment_rate="1000/1",
        http_stream_heartbeat_seconds=1,
        http_streams_per_address=3,
        http_streams_per_viewer=2,
    )
    await seed_demo(settings)
    async with serving(settings) as server:
        yield server


class Reader:
    """An open streaming response, read chunk by chunk into ``text``."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.text = ""
        self._chunks = response.aiter_text()

    async def until(self, needle: str, seconds: float = 5.0, count: int = 1) -> str:
        """Read until ``needle`` occurs ``count`` times; the text so far."""
        async with asyncio.timeout(seconds):
            while self.text.count(needle) < count:
                self.text += await anext(self._chunks)
        return self.text

    async def rest(self, seconds: float = 5.0) -> str:
        """Read to the end of the response."""
        async with asyncio.timeout(seconds):
            async for chunk in self._chunks:
                self.text += chunk
        return self.text


@contextlib.asynccontextmanager
async def stream(
    live: Live,
    query: str,
    variables: dict[str, Any],
    headers: dict[str, str],
    token: str | None = None,
    method: str = "POST",
) -> AsyncIterator[Reader]:
    all_headers = dict(headers)
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if method == "GET":
        request = live.http.build_request(
            "GET",
            "/graphql",
            params={"query": query, "variables": json.dumps(variables)},
            headers=all_headers,
        )
    else:
        request = live.http.build_request(
            "POST",
            "/graphql",
            json={"query": query, "variables": variables},
            headers=all_headers,
        )
    response = await live.http.send(request, stream=True)
    try:
        yield Reader(response)
    finally:
        await response.aclose()


def sse_events(text: str) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a text/event-stream body; comments skipped."""
    events = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(":", 1) for line in lines)
        data = fields.get("data", "").strip()
        events.append((fields["event"].strip(), json.loads(data) if data else None))
    return events


def multipart_parts(text: str) -> list[Any]:
    """The JSON bodies of a multipart/mixed body with boundary "graphql"."""
    parts = []
    for chunk in text.split("\r\n--graphql")[1:]:
        if chunk.startswith("--"):
            break
        if not chunk:
            continue  # the delimiter written after the last part, the next not there yet
        headers, _, body = chunk.partition("\r\n\r\n")
        assert "content-type: application/json" in headers.lower(), headers
        parts.append(json.loads(body))
    return parts


async def _settle(live: Live) -> None:
    """Wait until the server has let go of every stream (their cleanup runs after the client
    closes)."""
    for _ in range(250):
        if not _streams(live).limits.total and not live.app.state.hub.connections:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the server kept a stream after its client closed it")


def _streams(live: Live) -> Any:
    return live.app.state.streams


async def test_sse_odds_first_message_then_each_trade(live: Live) -> None:
    article = await live.article()
    market = article["markets"][0]
    token = await live.token("alice")
    async with stream(live, ODDS, {"m": market["id"]}, SSE_ACCEPT) as reader:
        assert reader.response.status_code == 200
        assert reader.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert reader.response.headers["cache-control"] == "no-store"
        await reader.until("event: next")
        first = sse_events(reader.text)[0]
        assert first[0] == "next"
        seq = first[1]["data"]["oddsUpdated"]["seq"]
        buy = await live.gql(
            'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "10.00"}) '
            "{ trade { amount } errors { code } } }",
            {"o": market["outcomes"][0]["id"]},
            token,
        )
        assert buy["buyShares"]["errors"] == []
        await reader.until("event: next", count=2)
        events = [e for e in sse_events(reader.text) if e[0] == "next"]
        update = events[1][1]["data"]["oddsUpdated"]
        assert update["seq"] == seq + 1
        assert update["lastTrade"]["amount"] == "10.00"
        assert abs(sum(o["probability"] for o in update["outcomes"]) - 1) < 1e-9
        # Each event is exactly "event: next", one data line, a blank line.
        assert "event: next\ndata: {" in reader.text
    await _settle(live)


async def test_sse_comment_replay_then_live_and_heartbeats(live: Live) -> None:
    article = await live.article()
    token = await live.token("alice")
    async with stream(
        live, ADDED, {"a": article["id"], "after": 0}, SSE_ACCEPT, method="GET"
    ) as reader:
        await reader.until("event: next", count=article["commentCount"])
        replayed = [e[1]["data"]["commentAdded"]["sequence"] for e in sse_events(reader.text)]
        # Every visible comment once, in sequence order (deleted ones are skipped).
        assert replayed == sorted(set(replayed)) and len(replayed) == article["commentCount"]
        await _post_comment(live, token, article["id"], "Over SSE: *live*")
        await reader.until("event: next", count=article["commentCount"] + 1)
        last = sse_events(reader.text)[-1][1]["data"]["commentAdded"]
        assert last["sequence"] > replayed[-1]
        assert last["body"] == "Over SSE: *live*"
        # Nothing more to send for a second: a heartbeat comment.
        await reader.until("\n:\n\n", seconds=4)


async def _post_comment(live: Live, token: str, article_id: str, body: str) -> None:
    data = await live.gql(POST, {"a": article_id, "b": body}, token)
    assert data["postComment"]["errors"] == []


async def test_multipart_live_comments_heartbeats_and_framing(live: Live) -> None:
    article = await live.article()
    token = await live.token("bob")
    async with stream(live, ADDED, {"a": article["id"]}, MULTIPART_ACCEPT) as reader:
        assert reader.response.status_code == 200
        assert (
            reader.response.headers["content-type"]
            == 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'
        )
        # Idle: heartbeats, `{}` parts.
        await reader.until("{}", seconds=4)
        await _post_comment(live, token, article["id"], "Over multipart")
        await reader.until('"payload"')
        parts = multipart_parts(reader.text)
        assert {} in parts
        payloads = [p["payload"] for p in parts if "payload" in p]
        comment = payloads[0]["data"]["commentAdded"]
        assert (comment["body"], comment["author"]["username"]) == ("Over multipart", "bob")
        assert reader.text.startswith("\r\n--graphql\r\nContent-Type: application/json")


@pytest.mark.parametrize(
    "accept",
    [
        'multipart/mixed;subscriptionSpec="1.0"',
        "multipart/mixed;subscriptionSpec=1.0",
        'multipart/mixed; boundary="graphql"; subscriptionSpec="1.0", application/json;q=0.9',
        "multipart/mixed;boundary=graphql;subscriptionSpec=1.0,application/graphql-response+json,"
        "application/json;q=0.9",
    ],
)
async def test_multipart_media_type_parameters_quoted_or_not(live: Live, accept: str) -> None:
    article = await live.article()
    market = article["markets"][0]
    async with stream(live, ODDS, {"m": market["id"]}, {"Accept": accept}) as reader:
        await reader.until('"payload"')
        assert reader.response.headers["content-type"].startswith("multipart/mixed")
        first = next(p for p in multipart_parts(reader.text) if "payload" in p)
        assert first["payload"]["data"]["oddsUpdated"]["seq"] >= 0


async def test_stream_errors_are_reported_in_the_stream_or_as_json(live: Live) -> None:
    # A document that parses but doesn't validate: in the SSE stream, then `complete`.
    async with stream(live, "subscription { nope }", {}, SSE_ACCEPT) as reader:
        text = await reader.rest()
        assert reader.response.status_code == 200
        events = sse_events(text)
        assert [e[0] for e in events] == ["next", "complete"]
        assert events[0][1]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "data" not in events[0][1] or events[0][1]["data"] is None
    # A document that doesn't parse: HTTP 400 JSON (graphql-sse's rule).
    async with stream(live, "subscription {", {}, SSE_ACCEPT) as reader:
        await reader.rest()
        assert reader.response.status_code == 400
        assert json.loads(reader.text)["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    # The source refuses (a market that doesn't exist): an error, then the end.
    async with stream(live, ODDS, {"m": "TWFya2V0Ojk5OTk5"}, SSE_ACCEPT) as reader:
        events = sse_events(await reader.rest())
        assert [e[0] for e in events] == ["next", "complete"]
        assert events[0][1]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Multipart: a transport-level error, then the closing delimiter.
    async with stream(live, ODDS, {"m": "TWFya2V0Ojk5OTk5"}, MULTIPART_ACCEPT) as reader:
        text = await reader.rest()
        parts = multipart_parts(text)
        assert parts[-1]["payload"] is None
        assert parts[-1]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert text.endswith("\r\n--graphql--\r\n")
    # A validation error asked for as multipart: answered as the JSON the client accepts.
    async with stream(
        live,
        "subscription { nope }",
        {},
        {"Accept": "multipart/mixed;subscriptionSpec=1.0,application/graphql-response+json"},
    ) as reader:
        await reader.rest()
        assert reader.response.status_code == 400
        assert reader.response.headers["content-type"].startswith(
            "application/graphql-response+json"
        )
        assert "data" not in json.loads(reader.text)
    await _settle(live)


async def test_queries_and_mutations_over_a_stream_answer_once(live: Live) -> None:
    async with stream(live, "{ stats { articleCount } }", {}, SSE_ACCEPT) as reader:
        events = sse_events(await reader.rest())
    assert events == [("next", {"data": {"stats": {"articleCount": 50}}}), ("complete", None)]
    async with stream(live, "{ stats { articleCount } }", {}, MULTIPART_ACCEPT) as reader:
        text = await reader.rest()
    assert multipart_parts(text) == [{"payload": {"data": {"stats": {"articleCount": 50}}}}]
    assert text.endswith("\r\n--graphql--\r\n")


async def test_open_streams_are_capped_per_address_and_viewer(live: Live) -> None:
    article = await live.article()
    variables = {"a": article["id"]}
    token = await live.token("alice")
    async with contextlib.AsyncExitStack() as stack:
        # Two streams as alice: her limit.
        for _ in range(2):
            reader = await stack.enter_async_context(
                stream(live, ADDED, variables, SSE_ACCEPT, token=token)
            )
            assert reader.response.status_code == 200
        async with stream(live, ADDED, variables, SSE_ACCEPT, token=token) as refused:
            await refused.rest()
            assert refused.response.status_code == 429
            assert refused.response.headers["retry-after"] == str(
                live.app.state.settings.retry_after_seconds
            )
            error = json.loads(refused.text)["errors"][0]
            assert error["extensions"]["code"] == "TOO_MANY_STREAMS"
            assert "per viewer" in error["message"]
        # One more anonymous one fills the address's three.
        reader = await stack.enter_async_context(stream(live, ADDED, variables, SSE_ACCEPT))
        assert reader.response.status_code == 200
        async with stream(live, ADDED, variables, MULTIPART_ACCEPT) as refused:
            await refused.rest()
            assert refused.response.status_code == 429
            assert "per client address" in json.loads(refused.text)["errors"][0]["message"]
        assert _streams(live).limits.total == 3
    # Closed by the client: every place given back, every connection gone from the hub.
    await _settle(live)
    assert _streams(live).limits.keys == {}
    async with stream(live, ADDED, variables, SSE_ACCEPT, token=token) as reader:
        assert reader.response.status_code == 200


async def test_revoking_the_session_ends_its_stream(live: Live) -> None:
    article = await live.article()
    token = await live.token("alice")
    async with stream(live, ADDED, {"a": article["id"]}, SSE_ACCEPT, token=token) as reader:
        await reader.until("\n:\n\n", seconds=4)  # the stream is up (a heartbeat came)
        assert (await live.gql("mutation { logOut }", token=token)) == {"logOut": True}
        events = sse_events(await reader.rest())
        assert [e[0] for e in events] == ["next", "complete"]
        assert events[0][1]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await _settle(live)


async def test_a_subscription_over_plain_http_is_400_whatever_the_accept(live: Live) -> None:
    for accept in ("application/json", "application/graphql-response+json", "*/*"):
        response = await live.http.post(
            "/graphql",
            json={"query": ODDS, "variables": {"m": "TWFya2V0OjE="}},
            headers={"Accept": accept},
        )
        assert response.status_code == 400, accept
        assert response.json()["errors"][0]["extensions"]["code"] == "STREAMING_TRANSPORT_REQUIRED"
        assert "text/event-stream" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("wire_name", ["sse", "multipart"])
async def test_a_slow_http_client_overflows_like_a_slow_socket(
    fresh_settings: Settings, wire_name: str
) -> None:
    """A stream whose client stops reading: its queue stays bounded, the subscription ends with
    SUBSCRIPTION_OVERFLOW, and the stream is closed (an HTTP stream carries one operation)."""
    from api.comments.subscriptions import COMMENT_ADDED
    from realtime.fanout import Connection, Group, Hub, Sub
    from realtime.protocol.multipart import MULTIPART
    from realtime.protocol.sse import SSE

    class StuckBody:
        async def send_text(self, data: str) -> None:
            await asyncio.Event().wait()  # never drains

    wire = SSE if wire_name == "sse" else MULTIPART
    settings = replace(fresh_settings, ws_queue_length=4)
    conn = Connection(StuckBody(), wire, settings)
    writer = asyncio.create_task(conn.writer())
    hub = Hub.__new__(Hub)
    hub.groups, hub.by_channel, hub.connections = {}, {}, set()
    group = Group(hub, ("k",), "commentAdded", 1, "comments:1", None, None, source=COMMENT_ADDED)  # type: ignore[arg-type]
    sub = Sub(conn, "1", group, replaying=False)
    group.subs.add(sub)
    conn.subs["1"] = sub
    hub.groups[group.key] = group
    for seq in range(1, 50):
        sub.offer(seq, '{"data":{"n":' + str(seq) + "}}")
    assert len(conn.queue) <= 5  # the bound, plus the error frame
    assert sub.done and conn.closing is not None and conn.closing.code == 1000
    last = conn.queue[-1]
    assert '"SUBSCRIPTION_OVERFLOW"' in last and '"lastSequence":' in last
    if wire_name == "sse":
        assert last.startswith("event: next\ndata: {") and last.endswith("}\n\n")
    else:
        assert '{"payload":null,"errors":[' in last
    writer.cancel()


async def test_a_stream_ends_when_its_session_expires(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    import clock

    article = await live.article()
    token = await live.token("alice")
    async with stream(live, ADDED, {"a": article["id"]}, MULTIPART_ACCEPT, token=token) as reader:
        await reader.until("{}", seconds=4)  # up: a heartbeat came
        later = clock.now() + dt.timedelta(days=365)
        monkeypatch.setattr(clock, "now", lambda: later)
        text = await reader.rest()
    parts = multipart_parts(text)
    assert parts[-1]["payload"] is None
    assert parts[-1]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in parts[-1]["errors"][0]["message"]
    assert text.endswith("\r\n--graphql--\r\n")


async def test_trusted_documents_apply_on_the_websocket_and_streams(
    fresh_settings: Settings,
) -> None:
    import hashlib

    import websockets
    from websockets.typing import Subprotocol

    from tests.realtime.test_realtime import TRANSPORT, recv

    shipped = SHIPPED
    documents = json.loads(SHIPPED_TEXT)
    me = next(text for text in documents.values() if text.startswith("query Me"))
    settings = replace(fresh_settings, trusted_documents=str(shipped))
    await seed_demo(settings)
    async with serving(settings) as live:
        ws = await websockets.connect(live.ws_url, subprotocols=[Subprotocol(TRANSPORT)])
        try:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await recv(ws))["type"] == "connection_ack"
            for sub_id, payload in (
                ("1", {"query": "{ stats { articleCount } }"}),
                (
                    "2",
                    {
                        "query": 'mutation { logIn(input: {username: "alice", password: "x"}) '
                        "{ token } }"
                    },
                ),
            ):
                await ws.send(json.dumps({"id": sub_id, "type": "subscribe", "payload": payload}))
                message = json.loads(await recv(ws))
                assert (message["id"], message["type"]) == (sub_id, "error"), message
                assert message["payload"][0]["extensions"]["code"] == "OPERATION_NOT_TRUSTED"
            # A registered one runs, by its text or by its hash alone.
            digest = hashlib.sha256(me.encode()).hexdigest()
            registered: tuple[tuple[str, dict[str, Any]], ...] = (
                ("3", {"query": me}),
                ("4", {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}),
            )
            for sub_id, payload in registered:
                await ws.send(json.dumps({"id": sub_id, "type": "subscribe", "payload": payload}))
                message = json.loads(await recv(ws))
                assert message == {"id": sub_id, "type": "next", "payload": {"data": {"me": None}}}
                assert json.loads(await recv(ws)) == {"id": sub_id, "type": "complete"}
        finally:
            await ws.close()
        # Over an HTTP stream: refused before it starts.
        async with stream(
            live, 'subscription { oddsUpdated(marketId: "TWFya2V0OjE=") { seq } }', {}, SSE_ACCEPT
        ) as reader:
            events = sse_events(await reader.rest())
            assert events[0][1]["errors"][0]["extensions"]["code"] == "OPERATION_NOT_TRUSTED"


async def test_a_client_that_stops_reading_gets_its_overflow_error_and_the_end(
    fresh_settings: Settings,
) -> None:
    """Over a real socket: a stream whose client stops reading while comments pour in ends
    with SUBSCRIPTION_OVERFLOW and ``complete`` once it reads again, and lets go of its place."""
    import socket

    settings = replace(fresh_settings, comment_rate="100000/60", ws_queue_length=4)
    await seed_demo(settings)
    async with serving(settings) as live:
        article = await live.article()
        token = await live.token("alice")
        sock = socket.socket()
        try:
            received = await _stop_reading_then_read(live, sock, article, token)
        finally:
            sock.close()
        text = received.decode(errors="replace")
        assert "SUBSCRIPTION_OVERFLOW" in text, text[-500:]
        assert "event: complete" in text, text[-500:]
        assert text.index("SUBSCRIPTION_OVERFLOW") < text.index("event: complete")
        await _settle(live)


async def _stop_reading_then_read(
    live: Live, sock: Any, article: dict[str, Any], token: str
) -> bytes:
    import socket

    host, port = live.url.removeprefix("http://").split(":")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    body = json.dumps({"query": ADDED, "variables": {"a": article["id"]}})
    await loop.sock_sendall(
        sock,
        (
            "POST /graphql HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode(),
    )
    assert b"200 OK" in await loop.sock_recv(sock, 400)
    # ~3.6 MB of events nobody reads: more than the kernel's buffers on both sides hold.
    for i in range(400):
        await _post_comment(live, token, article["id"], f"c{i} " + "x" * 9000)
    received = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(40):
            while not received.endswith(b"0\r\n\r\n"):  # the chunked body's end
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    break
                received += chunk
    return received
