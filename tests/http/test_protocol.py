"""GraphQL over HTTP as its spec says, and what clients expect around it: media types and
status codes, one rule for variables, automatic persisted queries and trusted documents,
batching, caching headers, GET /schema.graphql, browser-ready CORS, production mode.

(The graphql-http audit and the real npm clients run in test_graphql_http_audit.py and
test_http_clients.py; subscriptions over HTTP in test_streams.py.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app import create_app
from app.negotiation import Media, negotiate
from settings import Settings, SettingsError, load_settings
from tests.conftest import GraphQLClient, forget_compiled_statements, with_settings

ROOT = Path(__file__).resolve().parents[2]
GRJ = "application/graphql-response+json"
STATS = "{ stats { articleCount } }"
COUNT = "query Count { stats { commentCount } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(digest: str, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


def codes(body: Any) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


@pytest.fixture
async def http(demo_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with _http(demo_settings) as client:
        yield client


class _http:
    """An httpx client of an app for ``settings`` (its lifespan run)."""

    def __init__(self, settings: Settings) -> None:
        forget_compiled_statements()
        self.app = create_app(settings)

    async def __aenter__(self) -> httpx.AsyncClient:
        self.lifespan = LifespanManager(self.app)
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


# -- media types and status codes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, Media.JSON),
        ("*/*", Media.JSON),
        ("application/*", Media.JSON),
        (GRJ, Media.GRAPHQL_RESPONSE_JSON),
        (f"{GRJ},application/json;q=0.9", Media.GRAPHQL_RESPONSE_JSON),
        (f"application/json;q=0.9, {GRJ}", Media.GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRJ}", Media.JSON),  # a tie: the first written
        ("text/event-stream", Media.EVENT_STREAM),
        ('multipart/mixed;subscriptionSpec="1.0", application/json', Media.MULTIPART),
        ("multipart/mixed;deferSpec=20220824, application/json", Media.JSON),
        ("application/xml", None),
        (f"{GRJ};q=0, application/xml", None),
        ('application/xml;x="a,b", application/json', Media.JSON),
    ],
)
def test_accept_negotiation(accept: str | None, expected: Media | None) -> None:
    offered = (Media.GRAPHQL_RESPONSE_JSON, Media.JSON, Media.EVENT_STREAM, Media.MULTIPART)
    assert negotiate(accept, offered) == expected


async def test_graphql_response_json_request_errors_are_400_without_data(
    http: httpx.AsyncClient,
) -> None:
    cases = {
        "{ article(": "GRAPHQL_PARSE_FAILED",
        "{ nope }": "GRAPHQL_VALIDATION_FAILED",
        "query($s: String!) { article(slug: $s) { id } }": "BAD_USER_INPUT",
        "{" + "a: __typename " * 31 + "}": "QUERY_TOO_COMPLEX",
    }
    for query, code in cases.items():
        response = await http.post("/graphql", json={"query": query}, headers={"Accept": GRJ})
        assert response.status_code == 400, (query, response.text)
        assert response.headers["content-type"] == f"{GRJ}; charset=utf-8"
        body = response.json()
        assert "data" not in body and codes(body) == [code], query
        # application/json: the 200 and data: null its clients always had.
        response = await http.post("/graphql", json={"query": query})
        assert (
            response.status_code == 200 and response.headers["content-type"] == "application/json"
        )
        assert response.json()["data"] is None and codes(response.json()) == [code]


async def test_execution_errors_are_200_with_data(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        json={"query": '{ stats { articleCount } node(id: "nope") { id } }'},
        headers={"Accept": GRJ},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"stats": {"articleCount": 50}, "node": None}
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_unacceptable_accept_and_content_types(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", json={"query": STATS}, headers={"Accept": "application/xml"}
    )
    assert response.status_code == 406
    assert codes(response.json()) == ["NOT_ACCEPTABLE"]
    response = await http.post(
        "/graphql", content=STATS, headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert response.status_code == 415
    assert codes(response.json()) == ["UNSUPPORTED_MEDIA_TYPE"]
    response = await http.post(
        "/graphql",
        content=json.dumps({"query": STATS}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.json() == {"data": {"stats": {"articleCount": 50}}}


@pytest.mark.parametrize(
    "variables",
    [{}, {"s": None}, {"s": 3}, {"s": ["a"]}],
    ids=["missing", "null-for-non-null", "wrong-type", "list"],
)
async def test_one_rule_for_variables(client: GraphQLClient, variables: dict[str, Any]) -> None:
    body = await client.post("query($s: String!) { article(slug: $s) { id } }", variables)
    assert body["data"] is None
    assert codes(body) == ["BAD_USER_INPUT"], body


# -- automatic persisted queries --------------------------------------------------------------


async def test_apq_not_found_then_registered_then_by_hash_over_get(
    http: httpx.AsyncClient,
) -> None:
    digest = sha(COUNT)
    # The hash alone, unknown: 200 and PERSISTED_QUERY_NOT_FOUND, so Apollo's link resends.
    response = await http.post(
        "/graphql", json={"extensions": apq(digest)}, headers={"Accept": GRJ}
    )
    assert response.status_code == 200
    assert response.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    # With its text: checked against the hash, run and kept.
    response = await http.post("/graphql", json={"query": COUNT, "extensions": apq(digest)})
    count = response.json()["data"]["stats"]["commentCount"]
    assert count > 0
    # By hash alone now, over GET (a CDN can cache it).
    response = await http.get(
        "/graphql", params={"extensions": json.dumps(apq(digest)), "operationName": "Count"}
    )
    assert response.json() == {"data": {"stats": {"commentCount": count}}}
    assert "etag" in response.headers
    # And as a documentId.
    response = await http.get("/graphql", params={"documentId": f"sha256:{digest}"})
    assert response.json() == {"data": {"stats": {"commentCount": count}}}


async def test_apq_refuses_a_hash_that_is_not_the_text_s(http: httpx.AsyncClient) -> None:
    other = "{ stats { marketCount } }"
    response = await http.post("/graphql", json={"query": other, "extensions": apq(sha(STATS))})
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    # Nothing was kept under either hash.
    for digest in (sha(STATS), sha(other)):
        response = await http.post("/graphql", json={"extensions": apq(digest)})
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    for extensions in (apq(sha(STATS), version=2), apq("xyz"), {"persistedQuery": "x"}):
        response = await http.post("/graphql", json={"query": STATS, "extensions": extensions})
        assert response.status_code == 400, extensions
        assert codes(response.json()) == ["BAD_USER_INPUT"]


async def test_apq_keeps_only_documents_that_pass_the_checks(http: httpx.AsyncClient) -> None:
    bad = "{ nope }"
    response = await http.post("/graphql", json={"query": bad, "extensions": apq(sha(bad))})
    assert codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    response = await http.post("/graphql", json={"extensions": apq(sha(bad))})
    assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_apq_store_is_bounded(demo_settings: Settings) -> None:
    settings = with_settings(demo_settings, persisted_query_cache_size=2)
    queries = [f"{{ a{i}: stats {{ articleCount }} }}" for i in range(3)]
    async with _http(settings) as http:
        for query in queries:
            await http.post("/graphql", json={"query": query, "extensions": apq(sha(query))})
        found = [
            "errors" not in (await http.post("/graphql", json={"extensions": apq(sha(q))})).json()
            for q in queries
        ]
    assert found == [False, True, True]  # the least recently used went first


async def test_apq_off_is_not_supported(demo_settings: Settings) -> None:
    async with _http(with_settings(demo_settings, persisted_queries=False)) as http:
        response = await http.post("/graphql", json={"query": STATS, "extensions": apq(sha(STATS))})
        assert response.status_code == 200
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
        # Without the extension the query runs.
        response = await http.post("/graphql", json={"query": STATS})
        assert response.json() == {"data": {"stats": {"articleCount": 50}}}


# -- trusted documents ------------------------------------------------------------------------


async def test_trusted_documents_run_only_registered_operations(
    demo_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps({sha(COUNT): COUNT}))
    async with _http(with_settings(demo_settings, trusted_documents=str(path))) as http:
        by_hash = await http.post("/graphql", json={"extensions": apq(sha(COUNT))})
        by_text = await http.post("/graphql", json={"query": COUNT})
        assert by_hash.json() == by_text.json()
        assert by_hash.json()["data"]["stats"]["commentCount"] > 0
        for body in (
            {"query": STATS},
            {"query": STATS, "extensions": apq(sha(STATS))},  # APQ registration
            {"extensions": apq(sha(STATS))},
        ):
            response = await http.post("/graphql", json=body)
            assert codes(response.json()) == ["OPERATION_NOT_TRUSTED"], body
            assert response.json()["data"] is None


def test_the_shipped_trusted_documents_are_the_demo_operations() -> None:
    from app.manifest import manifest
    from app.persisted import load_trusted_documents

    shipped = ROOT / "demo" / "trusted-documents.json"
    assert json.loads(shipped.read_text()) == manifest(ROOT / "demo" / "operations")
    documents = load_trusted_documents(str(shipped))
    names = {text.split("(")[0].split("{")[0].strip() for text in documents.values()}
    assert {"query ArticlePage", "subscription CommentAdded", "mutation BuyShares"} <= names


async def test_shipped_trusted_documents_pass_the_checks(client: GraphQLClient) -> None:
    for text in json.loads((ROOT / "demo" / "trusted-documents.json").read_text()).values():
        body = (await client.http.post("/graphql", json={"query": text})).json()
        # Every document validates; missing variables are the one error allowed, and a login
        # for those without variables that need one (LogOut).
        allowed = ("BAD_USER_INPUT", "STREAMING_TRANSPORT_REQUIRED", "UNAUTHENTICATED")
        assert all(e["extensions"]["code"] in allowed for e in body.get("errors", [])), body


def test_a_bad_trusted_documents_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps({"0" * 64: STATS}))
    with pytest.raises(SettingsError, match="not the sha256"):
        create_app(Settings(trusted_documents=str(path)))
    with pytest.raises(SettingsError, match="cannot read"):
        create_app(Settings(trusted_documents=str(tmp_path / "missing.json")))


# -- batching -------------------------------------------------------------------------------


async def test_a_batch_answers_in_order_and_checks_each(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        json=[
            {"query": STATS},
            {"query": "{ nope }"},
            {"query": COUNT, "operationName": "Count"},
            {"query": "query($s: String!) { article(slug: $s) { id } }"},
        ],
    )
    assert response.status_code == 200
    first, second, third, fourth = response.json()
    assert first == {"data": {"stats": {"articleCount": 50}}}
    assert codes(second) == ["GRAPHQL_VALIDATION_FAILED"]
    assert third["data"]["stats"]["commentCount"] > 0
    assert codes(fourth) == ["BAD_USER_INPUT"]


async def test_a_batch_over_the_limit_runs_nothing(demo_client: GraphQLClient) -> None:
    token = (await demo_client.log_in("alice", "demo-password")).token
    article = (await demo_client.data("{ articles(first: 1) { nodes { id commentCount } } }"))[
        "articles"
    ]["nodes"][0]
    post = {
        "query": 'mutation($a: ID!) { postComment(input: {articleId: $a, body: "hi"}) '
        "{ errors { code } } }",
        "variables": {"a": article["id"]},
    }
    response = await demo_client.http.post(
        "/graphql", json=[post] * 11, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["BATCH_TOO_LARGE"]
    after = await demo_client.data(
        "query($a: ID!) { node(id: $a) { ... on Article { commentCount } } }", {"a": article["id"]}
    )
    assert after["node"]["commentCount"] == article["commentCount"]
    response = await demo_client.http.post("/graphql", json=[])
    assert response.status_code == 400


async def test_a_batch_shares_the_expensive_field_budget(http: httpx.AsyncClient) -> None:
    log_in = (
        'mutation { logIn(input: {username: "alice", password: "wrong-password"}) '
        "{ errors { code } } }"
    )
    response = await http.post("/graphql", json=[{"query": log_in}] * 6)
    results = response.json()
    assert [("errors" in r and codes(r)) or "ran" for r in results] == ["ran"] * 5 + [
        ["QUERY_TOO_COMPLEX"]
    ]


# -- caching --------------------------------------------------------------------------------


async def test_anonymous_get_queries_revalidate_by_etag(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", params={"query": STATS})
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["vary"] == "Accept, Authorization, Origin"
    etag = response.headers["etag"]
    again = await http.get("/graphql", params={"query": STATS}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    changed = await http.get(
        "/graphql", params={"query": STATS}, headers={"If-None-Match": '"other"'}
    )
    assert changed.status_code == 200
    for response in (
        await http.post("/graphql", json={"query": STATS}),
        await http.get("/graphql", params={"query": STATS}, headers={"Authorization": "Bearer x"}),
        await http.get("/graphql", params={"query": "{ nope }"}),
    ):
        assert response.headers["cache-control"] == "no-store"
        assert "etag" not in response.headers


async def test_max_age_is_opt_in(demo_settings: Settings) -> None:
    async with _http(with_settings(demo_settings, http_cache_max_age_seconds=30)) as http:
        response = await http.get("/graphql", params={"query": STATS})
        assert response.headers["cache-control"] == "public, max-age=30"


async def test_authenticated_gets_are_never_cached(client: GraphQLClient) -> None:
    logged_in = await client.log_in("alice", "demo-password")
    response = await client.http.get(
        "/graphql",
        params={"query": "{ me { username } }"},
        headers={"Authorization": f"Bearer {logged_in.token}"},
    )
    assert response.json() == {"data": {"me": {"username": "alice"}}}
    assert response.headers["cache-control"] == "no-store" and "etag" not in response.headers


# -- the SDL, CORS, production mode -----------------------------------------------------------


async def test_schema_graphql_serves_the_committed_sdl(http: httpx.AsyncClient) -> None:
    response = await http.get("/schema.graphql")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/graphql")
    assert response.text == (ROOT / "schema.graphql").read_text()
    again = await http.get("/schema.graphql", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("port", [3000, 5173, 8080])
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_local_dev_origins_are_allowed(http: httpx.AsyncClient, host: str, port: int) -> None:
    origin = f"http://{host}:{port}"
    preflight = await http.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    response = await http.post(
        "/graphql",
        json={"query": STATS},
        headers={"Origin": origin, "Authorization": "Bearer expired"},
    )
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"www-authenticate", "retry-after", "etag"} <= exposed


def test_production_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGORA_ENV", "production")
    settings = load_settings()
    assert (
        settings.graphiql,
        settings.introspection,
        settings.field_suggestions,
        settings.demo_page,
        settings.cors_origins,
        settings.trusted_documents,
    ) == (False, False, False, False, (), "")
    monkeypatch.setenv("INTROSPECTION", "true")
    monkeypatch.setenv("CORS_ORIGINS", "https://outpoll.example")
    settings = load_settings()
    assert settings.introspection and settings.cors_origins == ("https://outpoll.example",)
    monkeypatch.setenv("GRAPHIQL", "maybe")
    with pytest.raises(SettingsError, match="GRAPHIQL"):
        load_settings()
    monkeypatch.delenv("AGORA_ENV")
    monkeypatch.delenv("GRAPHIQL")
    monkeypatch.delenv("CORS_ORIGINS")
    settings = load_settings()
    assert settings.graphiql and settings.field_suggestions
    assert "http://localhost:5173" in settings.cors_origins


async def test_production_mode_hides_the_schema(demo_settings: Settings) -> None:
    production = with_settings(
        demo_settings,
        env="production",
        graphiql=False,
        introspection=False,
        field_suggestions=False,
        cors_origins=(),
    )
    async with _http(production) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 404 and codes(page.json()) == ["NOT_FOUND"]
        for query in ("{ __schema { types { name } } }", '{ __type(name: "Query") { name } }'):
            body = (await http.post("/graphql", json={"query": query})).json()
            assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}, query
            assert "introspection" in body["errors"][0]["message"]
        body = (await http.post("/graphql", json={"query": "{ stat { articleCount } }"})).json()
        assert "Did you mean" not in body["errors"][0]["message"]
        assert body["errors"][0]["message"] == "Cannot query field 'stat' on type 'Query'."
        assert (await http.post("/graphql", json={"query": "{ __typename }"})).json() == {
            "data": {"__typename": "Query"}
        }
        assert (await http.get("/schema.graphql")).status_code == 404
        preflight = await http.options(
            "/graphql",
            headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers


async def test_development_mode_helps(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    body = (await http.post("/graphql", json={"query": "{ stat { articleCount } }"})).json()
    assert "Did you mean 'stats' or 'tag'?" in body["errors"][0]["message"]
    body = (
        await http.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
    ).json()
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


# -- shared state and limits -------------------------------------------------------------------


@pytest.fixture
def redis_server() -> Any:
    from tests.services import start_redis

    server = start_redis()
    yield server
    server.stop()


async def test_persisted_queries_are_shared_through_redis(
    demo_settings: Settings, redis_server: Any
) -> None:
    """Two workers on one Redis: a hash one of them learnt runs on the other."""
    settings = with_settings(demo_settings, redis_url=redis_server.url)
    digest = sha(COUNT)
    async with _http(settings) as first, _http(settings) as second:
        assert codes((await second.post("/graphql", json={"extensions": apq(digest)})).json()) == [
            "PERSISTED_QUERY_NOT_FOUND"
        ]
        registered = await first.post("/graphql", json={"query": COUNT, "extensions": apq(digest)})
        by_hash = await second.post("/graphql", json={"extensions": apq(digest)})
        assert by_hash.json() == registered.json()
        assert "errors" not in by_hash.json()


async def test_persisted_queries_fall_back_to_the_worker_while_redis_is_down(
    demo_settings: Settings, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stopped: a hash this worker learnt still runs, an unknown one is
    PERSISTED_QUERY_NOT_FOUND at once (no wait on Redis per request), the outage is logged once."""
    import logging
    import time

    settings = with_settings(demo_settings, redis_url=redis_server.url)
    digest = sha(COUNT)
    async with _http(settings) as worker:
        registered = await worker.post("/graphql", json={"query": COUNT, "extensions": apq(digest)})
        redis_server.stop()
        try:
            with caplog.at_level(logging.WARNING, logger="agora"):
                started = time.monotonic()
                for _ in range(5):
                    unknown = await worker.post("/graphql", json={"extensions": apq(sha("{ x }"))})
                    assert codes(unknown.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
                    known = await worker.post("/graphql", json={"extensions": apq(digest)})
                    assert known.json() == registered.json()
                elapsed = time.monotonic() - started
        finally:
            redis_server.start()
    outages = [r for r in caplog.records if "persisted queries" in r.getMessage()]
    assert len(outages) == 1, [r.getMessage() for r in outages]
    # Ten lookups, at most one of them waiting for the (refused) connection.
    assert elapsed < 2.0


async def test_stream_replays_share_slots_per_address_and_viewer() -> None:
    """Replays of all of one client's streams share WS_REPLAYS_PER_CONNECTION slots per key."""
    import asyncio

    from realtime.streams import StreamLimits, StreamRefused

    limits = StreamLimits(Settings(ws_replays_per_connection=2, http_streams_per_viewer=3))
    keys = ["a127.0.0.1", "v1"]
    for _ in range(3):
        limits.acquire(keys)
    with pytest.raises(StreamRefused) as refused:
        limits.acquire(["a10.0.0.9", "v1"])  # another address, the same viewer
    assert (refused.value.status, refused.value.code) == (429, "TOO_MANY_STREAMS")
    assert limits.total == 3  # the refused one counted nowhere
    running = 0
    most = 0

    # One object per stream, entered once per replay or gap filled, as often as it needs.
    slots = limits.replay_slots(keys)

    async def replay() -> None:
        nonlocal running, most
        async with slots:
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(replay() for _ in range(6)))
    assert most == 2
    for _ in range(3):  # and again, one after the other
        await replay()
    for _ in range(3):
        limits.release(keys)
    assert (limits.total, limits.keys) == (0, {})


# -- review findings --------------------------------------------------------------------------


async def test_a_batch_never_hides_a_done_mutation_behind_a_503(
    demo_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import api.site.queries

    logged_in = await demo_client.log_in("alice", "demo-password")
    article = (await demo_client.data("{ articles(first: 1) { nodes { id commentCount } } }"))[
        "articles"
    ]["nodes"][0]

    calls = 0

    async def locked(now: Any) -> Any:
        nonlocal calls
        calls += 1
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(api.site.queries, "site_stats", locked)
    post = {
        "query": 'mutation($a: ID!) { postComment(input: {articleId: $a, body: "once"}) '
        "{ comment { body } errors { code } } }",
        "variables": {"a": article["id"]},
    }
    response = await demo_client.http.post(
        "/graphql",
        json=[post, {"query": STATS}, {"query": STATS}],
        headers={"Authorization": f"Bearer {logged_in.token}"},
    )
    assert response.status_code == 200
    done, failed, skipped = response.json()
    assert done == {"data": {"postComment": {"comment": {"body": "once"}, "errors": []}}}
    assert codes(failed) == codes(skipped) == ["SERVICE_UNAVAILABLE"]
    assert calls == 1  # the rest of the batch didn't wait on the database again
    # Nothing ran yet: the whole batch is a 503 to retry.
    response = await demo_client.http.post("/graphql", json=[{"query": STATS}, {"query": STATS}])
    assert response.status_code == 503 and "retry-after" in response.headers


async def test_production_mode_hides_suggestions_everywhere(demo_settings: Settings) -> None:
    production = with_settings(demo_settings, field_suggestions=False)
    cases = [
        ("{ markets(filter: {statu: OPEN}) { totalCount } }", {}),
        ("query($o: MarketOrder) { markets(orderBy: $o) { totalCount } }", {"o": "NEWES"}),
        (
            "query($f: MarketFilter) { markets(filter: $f) { totalCount } }",
            {"f": {"statu": "OPEN"}},
        ),
        ("{ markets(orderBy: NEWES) { totalCount } }", {}),
    ]
    async with _http(production) as http:
        for query, variables in cases:
            body = (
                await http.post("/graphql", json={"query": query, "variables": variables})
            ).json()
            assert body["errors"], query
            assert all("Did you mean" not in e["message"] for e in body["errors"]), body
    async with _http(demo_settings) as http:
        body = (
            await http.post("/graphql", json={"query": cases[1][0], "variables": cases[1][1]})
        ).json()
        assert "Did you mean the enum value 'NEWEST'?" in body["errors"][0]["message"]


@pytest.mark.parametrize("accept", ["text/event-stream", "application/json", GRJ])
async def test_an_operation_name_that_is_not_a_name_is_refused_unechoed(
    http: httpx.AsyncClient, accept: str
) -> None:
    response = await http.post(
        "/graphql",
        content=b'{"query":"query A { stats { articleCount } }","operationName":"\\ud800"}',
        headers={"Content-Type": "application/json", "Accept": accept},
    )
    assert response.status_code in (200, 400)
    text = response.text
    assert "BAD_USER_INPUT" in text and "operationName must be a GraphQL name" in text
    assert "\\ud800" not in text


def test_zero_q_refuses_a_type_a_wildcard_would_allow() -> None:
    offered = (Media.GRAPHQL_RESPONSE_JSON, Media.JSON)
    assert negotiate("application/json;q=0, */*", offered) == Media.GRAPHQL_RESPONSE_JSON
    assert negotiate(f"application/json;q=0, {GRJ};q=0, */*", offered) is None
    streams = (*offered, Media.MULTIPART)
    # Refusing deferred multipart doesn't refuse subscriptions over multipart.
    assert (
        negotiate(
            "multipart/mixed;deferSpec=20220824;q=0, multipart/mixed;subscriptionSpec=1.0", streams
        )
        == Media.MULTIPART
    )
    assert negotiate(f"application/json;q=0, {GRJ}", offered) == Media.GRAPHQL_RESPONSE_JSON


async def test_the_two_json_variants_have_different_etags(http: httpx.AsyncClient) -> None:
    plain = await http.get("/graphql", params={"query": STATS})
    spec = await http.get("/graphql", params={"query": STATS}, headers={"Accept": GRJ})
    assert plain.headers["etag"] != spec.headers["etag"]
    cross = await http.get(
        "/graphql",
        params={"query": STATS},
        headers={"Accept": GRJ, "If-None-Match": plain.headers["etag"]},
    )
    assert cross.status_code == 200


async def test_a_batch_can_not_stream(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", json=[{"query": STATS}], headers={"Accept": "text/event-stream"}
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_USER_INPUT"]


async def test_a_client_leaving_mid_body_is_not_an_error(
    demo_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(demo_settings)
    sent: list[Any] = []
    messages = [
        {"type": "http.request", "body": b'{"query": "{ st', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
        "app": app,
    }
    async with LifespanManager(app):
        with caplog.at_level("ERROR"):
            await app(scope, receive, send)
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_ipv6_clients_count_by_their_64() -> None:
    from clientaddr import address_key

    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("unknown") == "unknown"
    # IPv4 clients on a dual-stack socket count as their IPv4 addresses, one by one.
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("::ffff:10.0.0.1") != address_key("::ffff:1.2.3.4")


async def test_a_stalled_stream_client_lets_go(fresh_settings: Settings) -> None:
    """A client that stops reading can't hold its stream for as long as TCP keeps it."""
    import asyncio

    from realtime.fanout import Connection
    from realtime.protocol.sse import SSE
    from realtime.streams import _Body

    body = _Body(stall_seconds=0.05)

    async def never(message: Any) -> None:
        await asyncio.Event().wait()

    body.send = never
    conn = Connection(body, SSE, fresh_settings)
    conn.push(SSE.heartbeat())
    await asyncio.wait_for(conn.writer(), 2)
    assert conn.closing is not None and conn.closing.code == 1006
    assert conn.closed.is_set()
