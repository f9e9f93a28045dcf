"""Request ids, the request and operation lines, and the metrics they go with, driven the way
clients drive the app: HTTP through httpx (ASGI and a real uvicorn), websockets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.typing import Subprotocol

import logs
import metrics
from api.loaders import Loaders
from settings import Settings
from tests.conftest import GraphQLClient, _client_for
from tests.news.test_article_page import ARTICLE_PAGE, ARTICLE_PAGE_STATEMENTS, CENTRAL_ASIA
from tests.realtime.test_realtime import serving

GENERATED = re.compile(r"[0-9a-f]{32}")
REQUEST_FIELDS = {
    "timestamp",
    "level",
    "logger",
    "event",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "client",
    "sql",
    "error_code",
}
GRAPHQL_FIELDS = REQUEST_FIELDS | {"operation", "operation_type", "viewer_id", "batch"}
PAGE = {"query": ARTICLE_PAGE, "variables": {"slug": CENTRAL_ASIA}}
LOG_IN = (
    "mutation LogIn($u: String!, $p: String!) { logIn(input: {username: $u, password: $p}) "
    "{ token failed: errors { why: code } } }"
)


class Lines(logging.Handler):
    """The lines the app writes (JSON, as production writes them), kept in memory."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logs.formatter(json_lines=True))
        self.addFilter(logs.TruncatingFilter())
        self.written: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.written.append(self.format(record))

    def all(self) -> list[dict[str, Any]]:
        """Every line, parsed (each must be one JSON object)."""
        return [json.loads(text) for text in self.written]

    def of(self, event: str) -> list[dict[str, Any]]:
        """The ``agora.access`` lines of ``event``."""
        return [
            line
            for line in self.all()
            if line["logger"] == "agora.access" and line["event"] == event
        ]

    async def wait(self, event: str, count: int, seconds: float = 5.0) -> list[dict[str, Any]]:
        """The lines of ``event`` once there are ``count`` (a server writes them after its
        answer)."""
        async with asyncio.timeout(seconds):
            while len(self.of(event)) < count:  # noqa: ASYNC110 (written by the server's tasks)
                await asyncio.sleep(0.01)
        return self.of(event)


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root, access = logging.getLogger(), logging.getLogger("agora.access")
    level = access.level
    access.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        access.setLevel(level)


@pytest.fixture
def fresh_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operation-name bound of a fresh process (other tests have seen names of their own)."""
    monkeypatch.setattr(metrics, "_operation_names", set())
    monkeypatch.setattr(metrics, "_operations", {})
    monkeypatch.setattr(metrics, "max_operation_names", metrics.max_operation_names)


def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``' text, parsed by prometheus_client's own parser."""
    parsed: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            parsed[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return parsed


def delta(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    name: str,
    **labels: str,
) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


# -- the request line ------------------------------------------------------------------------------


async def test_an_article_page_is_one_line_with_every_field(
    client: GraphQLClient, lines: Lines
) -> None:
    response = await client.http.post("/graphql", json=PAGE, headers={"X-Request-ID": "page-1"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "page-1"
    [line] = lines.of("request")
    assert set(line) == GRAPHQL_FIELDS
    duration = line.pop("duration_ms")
    assert isinstance(duration, float) and duration > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("timestamp"))
    assert line == {
        "level": "info",
        "logger": "agora.access",
        "event": "request",
        "request_id": "page-1",
        "method": "POST",
        "route": "/graphql",
        "status": 200,
        "client": "127.0.0.1",
        "sql": ARTICLE_PAGE_STATEMENTS,
        "error_code": None,
        "operation": "ArticlePage",
        "operation_type": "query",
        "viewer_id": None,
        "batch": None,
    }


async def test_concurrent_requests_count_their_own_statements(
    client: GraphQLClient, lines: Lines
) -> None:
    responses = await asyncio.gather(*(client.http.post("/graphql", json=PAGE) for _ in range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    logged = lines.of("request")
    assert [line["sql"] for line in logged] == [ARTICLE_PAGE_STATEMENTS] * 6
    ids = [r.headers["x-request-id"] for r in responses]
    assert sorted(line["request_id"] for line in logged) == sorted(ids)
    assert len(set(ids)) == 6 and all(GENERATED.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    "sent",
    [
        [("X-Request-ID", "a")],
        [("X-Request-ID", "Abc.DEF_123-xyz")],
        [("X-Request-ID", "x" * 64)],
        [("x-request-id", "lower-case-name")],
    ],
)
async def test_a_valid_request_id_is_echoed(
    client: GraphQLClient, lines: Lines, sent: list[tuple[str, str]]
) -> None:
    response = await client.http.post("/graphql", json=PAGE, headers=sent)
    assert response.headers["x-request-id"] == sent[0][1]
    assert [line["request_id"] for line in lines.of("request")] == [sent[0][1]]


@pytest.mark.parametrize(
    "sent",
    [
        [("X-Request-ID", "x" * 65)],
        [("X-Request-ID", "has space")],
        [("X-Request-ID", "semi;colon")],
        [("X-Request-ID", "slash/")],
        [("X-Request-ID", "é".encode())],
        [("X-Request-ID", "\u00e9".encode("latin-1"))],
        [("X-Request-ID", "")],
        [("X-Request-ID", "one"), ("X-Request-ID", "two")],
    ],
    ids=["65", "space", "semicolon", "slash", "utf8", "latin1", "empty", "two"],
)
async def test_an_invalid_request_id_is_replaced(
    client: GraphQLClient, lines: Lines, sent: list[tuple[str, Any]]
) -> None:
    response = await client.http.post("/graphql", json=PAGE, headers=sent)
    returned = response.headers["x-request-id"]
    assert GENERATED.fullmatch(returned), returned
    assert [line["request_id"] for line in lines.of("request")] == [returned]


async def test_every_kind_of_response_has_the_request_id_and_its_line(
    client: GraphQLClient, lines: Lines
) -> None:
    http = client.http
    strict = {"Accept": "application/graphql-response+json"}
    answers = [
        ("query", await http.post("/graphql", json=PAGE, headers={"X-Request-ID": "r200"})),
        (
            "invalid",
            await http.post(
                "/graphql", json={"query": "{ nope }"}, headers={**strict, "X-Request-ID": "r400"}
            ),
        ),
        ("unknown", await http.get("/no/such/page", headers={"X-Request-ID": "r404"})),
        (
            "too big",
            await http.post(
                "/graphql",
                content=b"[" + b" " * (2 * 1024 * 1024) + b"]",
                headers={"Content-Type": "application/json", "X-Request-ID": "r413"},
            ),
        ),
        (
            "preflight",
            await http.options(
                "/graphql",
                headers={
                    "Origin": "http://localhost:3000",
                    "Access-Control-Request-Method": "POST",
                    "X-Request-ID": "r-pre",
                },
            ),
        ),
        (
            "sse",
            await http.post(
                "/graphql",
                json={"query": "{ stats { articleCount } }"},
                headers={"Accept": "text/event-stream", "X-Request-ID": "r-sse"},
            ),
        ),
        ("healthz", await http.get("/healthz", headers={"X-Request-ID": "r-health"})),
    ]
    assert [(what, r.status_code, r.headers["x-request-id"]) for what, r in answers] == [
        ("query", 200, "r200"),
        ("invalid", 400, "r400"),
        ("unknown", 404, "r404"),
        ("too big", 413, "r413"),
        ("preflight", 200, "r-pre"),
        ("sse", 200, "r-sse"),
        ("healthz", 200, "r-health"),
    ]
    logged = [
        (line["request_id"], line["method"], line["route"], line["status"], line["error_code"])
        for line in lines.of("request")
    ]
    assert logged == [
        ("r200", "POST", "/graphql", 200, None),
        ("r400", "POST", "/graphql", 400, "GRAPHQL_VALIDATION_FAILED"),
        ("r404", "GET", "other", 404, "NOT_FOUND"),
        ("r413", "POST", "/graphql", 413, None),
        ("r-pre", "OPTIONS", "/graphql", 200, None),
        ("r-sse", "POST", "/graphql", 200, None),
        ("r-health", "GET", "/healthz", 200, None),
    ]
    # Only the GraphQL view's requests say what it ran.
    assert [set(line) for line in lines.of("request")] == [
        GRAPHQL_FIELDS,
        GRAPHQL_FIELDS,
        REQUEST_FIELDS,
        GRAPHQL_FIELDS,
        GRAPHQL_FIELDS,
        GRAPHQL_FIELDS,
        REQUEST_FIELDS,
    ]


async def _post(client: GraphQLClient, body: Any, **headers: str) -> httpx.Response:
    return await client.http.post("/graphql", json=body, headers=headers)


async def test_operation_names_types_viewers_and_error_codes(
    client: GraphQLClient, lines: Lines
) -> None:
    alice = await client.log_in("alice")
    me = await client.as_user(alice.token).data("{ me { id } }")
    lines.written.clear()
    named = {"query": "query Stats { stats { articleCount } }"}
    await _post(client, named)
    await _post(client, {"query": "{ stats { articleCount } }"})
    await _post(client, {"query": LOG_IN, "variables": {"u": "alice", "p": "not-her-password"}})
    await _post(client, {"query": "query Broken { nope }", "operationName": "Broken"})
    await _post(
        client,
        {"query": "query Stats { stats { articleCount } }"},
        Authorization=f"Bearer {alice.token}",
    )
    await _post(
        client,
        [
            named,
            {"query": LOG_IN, "variables": {"u": "alice", "p": "still-not-it"}},
            {"query": "{"},
        ],
    )
    await _post(client, {"query": "{ stats { articleCount } }", "operationName": "x" * 5000})
    from api.core.node import from_global_id

    alice_id = int(from_global_id(me["me"]["id"])[1])
    seen = [
        (x["operation"], x["operation_type"], x["viewer_id"], x["error_code"], x["batch"])
        for x in lines.of("request")
    ]
    assert seen == [
        ("Stats", "query", None, None, None),
        (None, "query", None, None, None),
        # A refusal in the payload, found under the client's aliases.
        ("LogIn", "mutation", None, "INVALID_CREDENTIALS", None),
        ("Broken", None, None, "GRAPHQL_VALIDATION_FAILED", None),
        ("Stats", "query", alice_id, None, None),
        ("Stats,LogIn,", "query,mutation,", None, "INVALID_CREDENTIALS", 3),
        ("x" * 100 + "…[4900 more characters]", None, None, "BAD_USER_INPUT", None),
    ]
    text = "\n".join(lines.written)
    assert "not-her-password" not in text and "still-not-it" not in text
    assert alice.token not in text  # type: ignore[operator]


async def test_a_traceback_only_for_the_unexpected_error_and_with_its_request_id(
    client: GraphQLClient, lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _post(client, PAGE)
    await _post(client, {"query": LOG_IN, "variables": {"u": "alice", "p": "wrong-wrong"}})
    await _post(client, {"query": "{ nope }"})
    assert [line for line in lines.all() if "exception" in line] == []

    async def broken(self: Loaders) -> Any:
        raise RuntimeError("the category tree is gone")

    monkeypatch.setattr(Loaders, "_load_tree", broken)
    response = await client.http.post(
        "/graphql", json={"query": "{ categories { slug } }"}, headers={"X-Request-ID": "boom-1"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    failures = [line for line in lines.all() if "exception" in line]
    assert len(failures) == 1
    [failure] = failures
    assert failure["level"] == "error" and failure["request_id"] == "boom-1"
    assert "RuntimeError: the category tree is gone" in failure["exception"]
    assert lines.of("request")[-1]["error_code"] == "INTERNAL_SERVER_ERROR"


# -- metrics ---------------------------------------------------------------------------------------


async def test_the_metrics_move_by_what_a_scripted_session_implies(
    client: GraphQLClient, lines: Lines, fresh_names: None
) -> None:
    before = samples()
    for _ in range(2):
        await _post(client, PAGE)
    await _post(client, {"query": "query Broken { nope }", "operationName": "Broken"})
    await _post(client, {"query": LOG_IN, "variables": {"u": "alice", "p": "wrong-wrong"}})
    await _post(client, [{"query": "query Stats { stats { articleCount } }"}] * 3)
    await client.http.get("/no/such/page")
    await client.http.request("BREW", "/graphql")
    after = samples()

    def moved(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    requests = "agora_http_requests_total"
    assert moved(requests, route="/graphql", method="POST", status="200") == 5
    assert moved(requests, route="other", method="GET", status="404") == 1
    # A method a client invents is counted, but not as a label of its own.
    assert moved(requests, route="/graphql", method="other", status="405") == 1
    assert moved("agora_http_request_duration_seconds_count", route="/graphql") == 6
    operations = "agora_graphql_operations_total"
    assert moved(operations, operation="ArticlePage", type="query", outcome="ok") == 2
    assert (
        moved(operations, operation="Broken", type="unknown", outcome="GRAPHQL_VALIDATION_FAILED")
        == 1
    )
    assert moved(operations, operation="LogIn", type="mutation", outcome="INVALID_CREDENTIALS") == 1
    assert moved(operations, operation="Stats", type="query", outcome="ok") == 3
    sql = "agora_graphql_sql_statements"
    assert moved(f"{sql}_count", operation="ArticlePage", type="query") == 2
    assert moved(f"{sql}_sum", operation="ArticlePage", type="query") == 2 * ARTICLE_PAGE_STATEMENTS
    assert moved(f"{sql}_bucket", operation="ArticlePage", type="query", le="8.0") == 0
    assert moved(f"{sql}_bucket", operation="ArticlePage", type="query", le="13.0") == 2
    duration = "agora_graphql_operation_duration_seconds_count"
    assert moved(duration, operation="ArticlePage", type="query") == 2
    assert moved(duration, operation="Stats", type="query") == 3
    # Every statement of the session is counted once, and the lines say where.
    assert moved("agora_sql_statements_total") == sum(line["sql"] for line in lines.of("request"))


async def test_operation_names_are_bounded_per_process(
    demo_settings: Settings, lines: Lines, fresh_names: None
) -> None:
    settings = replace(demo_settings, metrics_max_operation_names=3)
    async for client in _client_for(settings):
        before = samples()
        for n in range(10):
            await _post(client, {"query": f"query Name{n} {{ stats {{ articleCount }} }}"})
        await _post(client, {"query": "query Name0 { stats { articleCount } }"})
        after = samples()
    changed = {
        dict(labels)["operation"]: value - before.get((name, labels), 0.0)
        for (name, labels), value in after.items()
        if name == "agora_graphql_operations_total" and value != before.get((name, labels), 0.0)
    }
    assert changed == {"Name0": 2, "Name1": 1, "Name2": 1, "other": 7}
    # Nor does the cache of label children grow with the names past the bound.
    assert {name for name, _, _ in metrics._operations} == {"Name0", "Name1", "Name2"}
    # The lines keep every name: they are not series.
    assert [line["operation"] for line in lines.of("request")][:10] == [
        f"Name{n}" for n in range(10)
    ]


async def test_a_name_that_is_no_graphql_name_never_becomes_a_label(
    demo_settings: Settings, lines: Lines, fresh_names: None
) -> None:
    """A refused request's operationName is whatever the client sent: a lone surrogate in a
    label made every later scrape fail (UnicodeEncodeError), and junk wasted the bounded slots."""
    async for client in _client_for(demo_settings):
        for name in ("\ud800x", "has space", "x" * 101, "1abc"):
            # json.dumps escapes the lone surrogate (\\ud800), as a hostile client sends it.
            response = await client.http.post(
                "/graphql",
                content=json.dumps(
                    {"query": "query A { stats { articleCount } }", "operationName": name}
                ),
                headers={"Content-Type": "application/json"},
            )
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", name
        scrape = await client.http.get("/metrics")
    assert scrape.status_code == 200
    names = {
        dict(labels)["operation"]
        for (metric, labels) in samples()
        if metric == "agora_graphql_operations_total"
    }
    assert names <= {"other", "anonymous"} | {n for n in names if n.isidentifier() and n.isascii()}
    assert not any("\ud800" in n or " " in n or len(n) > 100 for n in names)
    assert metrics.operation_label("Fine_1") == "Fine_1"


# -- a real server: websockets and streams ---------------------------------------------------------


@pytest.fixture
async def live(demo_settings: Settings) -> AsyncIterator[Any]:
    async with serving(demo_settings) as server:
        yield server


async def _recv(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return message


async def _until(ws: Any, kind: str, sub_id: str) -> dict[str, Any]:
    while True:
        message = await _recv(ws)
        if message.get("type") == kind and message.get("id") == sub_id:
            return message


async def test_a_websocket_logs_each_operation_and_its_close(live: Any, lines: Lines) -> None:
    article = await live.gql("query($s: String!) { article(slug: $s) { id } }", {"s": CENTRAL_ASIA})
    ws = await websockets.connect(
        live.ws_url,
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers={"X-Request-ID": "socket-1"},
    )
    assert ws.response is not None and ws.response.headers["x-request-id"] == "socket-1"
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert (await _recv(ws))["type"] == "connection_ack"

    def subscribe(sub_id: str, query: str, variables: dict[str, Any] | None = None) -> str:
        payload = {"query": query, "variables": variables or {}}
        return json.dumps({"id": sub_id, "type": "subscribe", "payload": payload})

    await ws.send(subscribe("page", ARTICLE_PAGE, {"slug": CENTRAL_ASIA}))
    await _until(ws, "complete", "page")
    await ws.send(subscribe("bad", "{ nope }"))
    await _until(ws, "error", "bad")
    added = "subscription Added($a: ID!) { commentAdded(articleId: $a) { sequence } }"
    await ws.send(subscribe("live", added, {"a": article["article"]["id"]}))
    await asyncio.sleep(0.2)
    assert len(lines.of("operation")) == 2  # the subscription's line waits for its end
    await ws.send(json.dumps({"id": "live", "type": "complete"}))
    await lines.wait("operation", 3)
    await ws.close()
    [closed] = await lines.wait("websocket closed", 1)
    operations = lines.of("operation")
    for line in operations:
        assert line.pop("duration_ms") >= 0
        assert line.pop("timestamp")
    assert operations == [
        {
            "level": "info",
            "logger": "agora.access",
            "event": "operation",
            "request_id": "socket-1",
            "transport": "websocket",
            "operation_id": "page",
            "operation": "ArticlePage",
            "operation_type": "query",
            "viewer_id": None,
            "sql": ARTICLE_PAGE_STATEMENTS,
            "error_code": None,
        },
        {
            "level": "info",
            "logger": "agora.access",
            "event": "operation",
            "request_id": "socket-1",
            "transport": "websocket",
            "operation_id": "bad",
            "operation": None,
            "operation_type": None,
            "viewer_id": None,
            "sql": 0,
            "error_code": "GRAPHQL_VALIDATION_FAILED",
        },
        {
            "level": "info",
            "logger": "agora.access",
            "event": "operation",
            "request_id": "socket-1",
            "transport": "websocket",
            "operation_id": "live",
            "operation": "Added",
            "operation_type": "subscription",
            "viewer_id": None,
            "sql": None,
            "error_code": None,
        },
    ]
    assert closed["request_id"] == "socket-1" and closed["close_code"] == 1000
    assert (closed["operations"], closed["subscriptions"], closed["viewer_id"]) == (3, 1, None)
    assert closed["client"] == "127.0.0.1" and closed["duration_ms"] > 200


async def test_a_websocket_mutation_refused_and_a_socket_without_a_request_id(
    live: Any, lines: Lines
) -> None:
    async with websockets.connect(
        live.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        assert ws.response is not None
        generated = ws.response.headers["x-request-id"]
        assert GENERATED.fullmatch(generated)
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await _recv(ws)
        payload = {"query": LOG_IN, "variables": {"u": "alice", "p": "wrong-wrong"}}
        await ws.send(json.dumps({"id": "m", "type": "subscribe", "payload": payload}))
        await _until(ws, "complete", "m")
    [line] = await lines.wait("operation", 1)
    assert (line["operation"], line["operation_type"], line["error_code"]) == (
        "LogIn",
        "mutation",
        "INVALID_CREDENTIALS",
    )
    assert line["request_id"] == generated
    assert "wrong-wrong" not in "\n".join(lines.written)


async def test_a_stream_is_logged_when_it_ends(live: Any, lines: Lines) -> None:
    article = await live.gql("query($s: String!) { article(slug: $s) { id } }", {"s": CENTRAL_ASIA})
    lines.written.clear()
    query = "subscription Added($a: ID!) { commentAdded(articleId: $a) { sequence } }"
    async with live.http.stream(
        "POST",
        "/graphql",
        json={"query": query, "variables": {"a": article["article"]["id"]}},
        headers={"Accept": "text/event-stream", "X-Request-ID": "stream-1"},
    ) as response:
        assert response.headers["x-request-id"] == "stream-1"
        chunks = response.aiter_bytes()
        await asyncio.wait_for(anext(chunks), 5)
        await asyncio.sleep(0.3)
        assert lines.of("request") == []  # still open: no line yet
    [line] = await lines.wait("request", 1)
    assert (line["request_id"], line["status"], line["operation"], line["operation_type"]) == (
        "stream-1",
        200,
        "Added",
        "subscription",
    )
    assert line["duration_ms"] >= 300


async def test_refused_handshakes_have_a_line_too(live: Any, lines: Lines) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            live.ws_url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            origin=websockets.Origin("http://evil.example"),
            additional_headers={"X-Request-ID": "evil-1"},
        )
    assert refused.value.response.status_code == 403
    ws = await websockets.connect(
        live.ws_url,
        subprotocols=[Subprotocol("no-such-protocol")],
        additional_headers={"X-Request-ID": "odd-1"},
    )
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    logged = await lines.wait("websocket closed", 2)
    assert [(x["request_id"], x["close_code"], x["operations"]) for x in logged] == [
        ("evil-1", 1008, 0),
        ("odd-1", 4406, 0),
    ]


async def test_an_unexpected_error_outside_the_view_is_json_with_one_traceback(
    client: GraphQLClient, lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.health

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("health is gone")

    monkeypatch.setattr(app.health, "PlainTextResponse", broken)
    response = await client.http.get("/healthz", headers={"X-Request-ID": "sick-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "sick-1"
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    failures = [line for line in lines.all() if "exception" in line]
    assert len(failures) == 1 and failures[0]["request_id"] == "sick-1"
    assert "RuntimeError: health is gone" in failures[0]["exception"]
    [line] = lines.of("request")
    assert (line["route"], line["status"], line["error_code"]) == (
        "/healthz",
        500,
        "INTERNAL_SERVER_ERROR",
    )
