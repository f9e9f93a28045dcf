"""Hostile inputs over HTTP: limits that count the real cost, strings no column can hold, hostile
cursors and bodies, the one bound during execution, and logs that stay small. Each case gave an
internal error, a plain-text 500 or an unbounded response before."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from accounts.ratelimit import MemoryRateLimiter
from api.loaders import Loaders
from app import create_app
from settings import Settings
from tests.conftest import FakeClock, GraphQLClient, _client_for, seed_demo, with_settings

ARTICLE_ID = "QXJ0aWNsZTo1MA=="  # Article:50, the Central Asia article of the demo data
ITEM_1 = (
    "query($ids: [ID!]!) { "
    + " ".join(
        f"a{i}: nodes(ids: $ids) {{ ... on Article {{ body comments(first: 20) {{ nodes {{ body "
        "bodyHtml author { username } replies(first: 10) { nodes { body bodyHtml } } } } "
        "relatedArticles(first: 20) { body } } }"
        for i in range(30)
    )
    + " }"
)


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def _limit(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or [{}]
    limit: str | None = errors[0].get("extensions", {}).get("limit")
    return limit


async def _raw(client: GraphQLClient, body: str | bytes) -> tuple[int, dict[str, Any]]:
    response = await client.http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    return response.status_code, response.json()


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# -- item 1: every list at its real size ---------------------------------------------------


async def test_nodes_ids_count_at_their_number(client: GraphQLClient) -> None:
    started = time.monotonic()
    body = await client.post(ITEM_1, {"ids": [ARTICLE_ID] * 100})
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]
    assert _limit(body) == "nodes"
    assert body["data"] is None
    assert time.monotonic() - started < 1.0
    # The same document with a small variable runs: the count is per request.
    small = await client.post(ITEM_1, {"ids": [ARTICLE_ID]})
    assert "errors" not in small, small["errors"]
    assert small["data"]["a0"][0]["body"]
    # A literal list counts the same way.
    literal = ITEM_1.replace("query($ids: [ID!]!) ", "")
    literal = literal.replace("$ids", "[" + ",".join([f'"{ARTICLE_ID}"'] * 100) + "]")
    body = await client.post(literal)
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "nodes")


async def test_fragments_and_first_arguments_count_too(client: GraphQLClient) -> None:
    fragment = """
      query($ids: [ID!]!, $n: Int!) { nodes(ids: $ids) { ...A } }
      fragment A on Article { relatedArticles(first: $n) { comments(first: 100) {
        nodes { replies(first: 100) { nodes { body } } } } } }"""
    body = await client.post(fragment, {"ids": [ARTICLE_ID] * 3, "n": 20})
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "nodes")
    body = await client.post(fragment, {"ids": [ARTICLE_ID], "n": 1})
    assert "errors" not in body, body["errors"]
    body = await client.post(
        "{ "
        + " ".join(
            f"l{i}: leaderboard(first: 100) {{ user {{ trades(first: 100) {{ nodes {{ id }} }} }} }}"
            for i in range(6)
        )
        + " }"
    )
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "nodes")


async def test_counts_kept_per_operation_follow_the_variables_they_read(
    client: GraphQLClient,
) -> None:
    """Node counts at a request's sizes are kept per operation and values of the variables the
    count reads (api.extensions.variables): the same document alternating between a refused
    and an allowed size is refused and allowed each time, and a variable the count doesn't read
    (an article page's slug) leaves one entry for any value."""
    from api.extensions import variables

    variables._counts.clear()
    sized = (
        "query($n: Int!) { articles(first: $n) { nodes { comments(first: 100) { nodes { "
        "replies(first: 100) { nodes { id } } } } } } }"
    )
    for n, refused in [(100, True), (1, False), (100, True), (1, False), (100, True)]:
        body = await client.post(sized, {"n": n})
        assert (_codes(body) == ["QUERY_TOO_COMPLEX"]) is refused, (n, body)
    by_slug = (
        "query($s: String!, $n: Int!) { article(slug: $s) { comments(first: $n) "
        "{ nodes { replies(first: 100) { nodes { id } } } } } }"
    )
    for slug in ("a", "b", "c"):
        body = await client.post(by_slug, {"s": slug, "n": 2})
        assert "errors" not in body, body
    counted = [
        entry
        for entry in variables._counts.values()
        if (operation := entry[0]()) is not None
        and operation.variable_definitions
        and len(operation.variable_definitions) == 2
    ]
    assert [(entry[2], list(entry[3].values())) for entry in counted] == [(("n",), [404])]


COERCED = """query($n: Int!, $ids: [ID!]!) { nodes(ids: $ids) { id } articles(first: $n) {
               nodes { comments(first: $n) { nodes { replies(first: $n) { nodes { id } } } } } } }"""


# 100.0 is an Int to graphql-core.
@pytest.mark.parametrize("n", [100, 100.0], ids=["int", "float"])
async def test_variables_count_after_coercion(client: GraphQLClient, n: float) -> None:
    body = await client.post(COERCED, {"n": n, "ids": ARTICLE_ID})
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "nodes"), n


async def test_a_single_value_for_a_list_variable_is_a_list_of_one(client: GraphQLClient) -> None:
    data = await client.data(COERCED, {"n": 2, "ids": ARTICLE_ID})
    assert data["nodes"] == [{"id": ARTICLE_ID}]


async def test_short_lists_multiply(client: GraphQLClient) -> None:
    # 100 articles × their tags × 100 articles of each tag × their tags: plain lists count too.
    query = """{ articles(first: 100) { nodes { tags { articles(first: 100) { nodes {
                 tags { name } } } } } } }"""
    body = await client.post(query)
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "nodes")


async def test_list_arguments_add_their_items(client: GraphQLClient) -> None:
    # Two articles' worth of output, but 99 × 500 ids to check: the argument itself is work.
    ids = ",".join([f'"{ARTICLE_ID}"'] * 99)
    query = "{ " + " ".join(f"n{i}: nodes(ids: [{ids}]) {{ id }}" for i in range(30)) + " }"
    body = await client.post(query)
    assert "errors" not in body, body["errors"]
    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [ARTICLE_ID] * 100}
    )
    assert len(data["nodes"]) == 100


async def test_expensive_fields_are_capped_per_document(client: GraphQLClient) -> None:
    six = (
        "mutation { "
        + " ".join(
            f'l{i}: logIn(input: {{username: "alice", password: "wrong-password"}}) {{ token }}'
            for i in range(6)
        )
        + " }"
    )
    started = time.monotonic()
    body = await client.post(six)
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "expensive")
    assert body["data"] is None
    assert time.monotonic() - started < 0.5  # refused before any hashing
    five = six.replace(" l5: logIn", " #").split(" #")[0] + " }"
    body = await client.post(five)
    assert _codes(body) == []
    assert [body["data"][f"l{i}"]["token"] for i in range(5)] == [None] * 5


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("{ stats { " + "articleCount " * 2000 + "} }", id="2000-repeats"),
        pytest.param("{ stats { " + "articleCount " * 80 + "} }", id="80-repeats"),
        pytest.param("{ " + "articles { nodes { slug } } " * 200 + "}", id="200-root-repeats"),
        # Repeats under repeats multiply: 5 × 5 × 5 replies.
        pytest.param(
            "{ articles { nodes { comments { nodes { "
            + " ".join(
                ["replies { nodes { " + " ".join(["replies { nodes { id } }"] * 5) + " } }"] * 25
            )
            + " } } } } }",
            id="repeats-under-repeats",
        ),
        # Repeats hidden in fragments count the same.
        pytest.param(
            "{ stats { ...A ...B } } fragment A on SiteStats { "
            + "articleCount " * 40
            + "} fragment B on SiteStats { "
            + "articleCount " * 40
            + "}",
            id="repeats-in-fragments",
        ),
    ],
)
async def test_repeated_fields_are_refused_before_validation(
    client: GraphQLClient, query: str
) -> None:
    started = time.monotonic()
    body = await client.post(query)
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "fields"), query[:80]
    assert time.monotonic() - started < 0.5


async def test_what_clients_send_stays_inside_the_field_limit(client: GraphQLClient) -> None:
    # GraphiQL's introspection query, fragments that overlap a little.
    from graphql import get_introspection_query

    data = await client.data(get_introspection_query(descriptions=True))
    assert data["__schema"]["queryType"]["name"] == "Query"
    data = await client.data(
        "{ stats { ...A ...B articleCount } } fragment A on SiteStats { articleCount "
        "commentCount } fragment B on SiteStats { articleCount marketCount }"
    )
    assert data["stats"]["articleCount"] == 50


# -- the one bound during execution -----------------------------------------------------------


async def test_a_response_over_its_object_budget_is_data_null(demo_settings: Settings) -> None:
    settings = with_settings(demo_settings, max_response_objects=200)
    async for client in _client_for(settings):
        body = await client.post(
            "{ articles(first: 100) { nodes { comments(first: 100) { nodes { body } } } } }"
        )
        assert body == {
            "data": None,
            "errors": [
                {
                    "message": "The response would hold more than 200 objects. Ask for less.",
                    "extensions": {"code": "RESPONSE_TOO_LARGE", "limit": "responseObjects"},
                }
            ],
        }
        # Cache hits count: one article asked for 100 times is 100 objects to render.
        body = await client.post(
            "query($ids: [ID!]!) { a: nodes(ids: $ids) { id } b: nodes(ids: $ids) { id } "
            "c: nodes(ids: $ids) { id } }",
            {"ids": [ARTICLE_ID] * 100},
        )
        assert _codes(body) == ["RESPONSE_TOO_LARGE"]
        assert body["data"] is None
        small = await client.data("{ articles(first: 5) { nodes { slug } } }")
        assert len(small["articles"]["nodes"]) == 5


async def test_a_response_over_its_byte_bound_is_data_null(demo_settings: Settings) -> None:
    settings = with_settings(demo_settings, max_response_bytes=20_000)
    async for client in _client_for(settings):
        response = await client.http.post(
            "/graphql", json={"query": "{ articles(first: 50) { nodes { body } } }"}
        )
        assert response.status_code == 200
        assert response.json() == {
            "data": None,
            "errors": [
                {
                    "message": "The response would exceed 20000 bytes. Ask for less.",
                    "extensions": {"code": "RESPONSE_TOO_LARGE", "limit": "responseBytes"},
                }
            ],
        }
        small = await client.data("{ articles(first: 2) { nodes { slug } } }")
        assert len(small["articles"]["nodes"]) == 2


# -- item 4: strings and cursors that reached an internal error -----------------------------


@pytest.mark.parametrize("length", [201, 1000, 100_000])
@pytest.mark.parametrize("field", ["article", "author", "tag", "market", "category"])
async def test_a_slug_longer_than_its_column_is_nothing(
    client: GraphQLClient, field: str, length: int
) -> None:
    body = await client.post(f'{{ {field}(slug: "{"a" * length}") {{ id }} }}')
    assert body == {"data": {field: None}}, (field, length)


async def test_log_in_with_an_over_long_username_is_invalid_credentials(
    client: GraphQLClient,
) -> None:
    data = await client.data(
        'mutation($u: String!) { logIn(input: {username: $u, password: "whatever-pass"}) '
        "{ token errors { code } } }",
        {"u": "a" * 5000},
    )
    assert data["logIn"] == {"token": None, "errors": [{"code": "INVALID_CREDENTIALS"}]}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(
            "query($s: String!) { article(slug: $s) { id } }", lambda v: {"s": v}, id="slug"
        ),
        pytest.param(
            "query($s: String) { articles(filter: {search: $s}) { totalCount } }",
            lambda v: {"s": v},
            id="search",
        ),
        pytest.param(
            "query($s: String) { articles(after: $s) { totalCount } }",
            lambda v: {"s": v},
            id="cursor",
        ),
        pytest.param("query($s: [ID!]!) { nodes(ids: $s) { id } }", lambda v: {"s": [v]}, id="ids"),
        # Keys too: a variables object is not only values.
        pytest.param(
            "query($s: String!) { article(slug: $s) { id } }",
            lambda v: {"s": "x", v: 1},
            id="variable-name",
        ),
    ],
)
@pytest.mark.parametrize(
    "value",
    ["\ud800", "a\udfffb", "\x00", "ok\x00", "\udbff\udfff\ud800"],
    ids=["high", "low-inside", "nul", "nul-inside", "pair-then-lone"],
)
async def test_unstorable_strings_in_variables_are_bad_user_input(
    client: GraphQLClient,
    value: str,
    query: str,
    variables: Callable[[str], dict[str, Any]],
) -> None:
    status, body = await _raw(
        client, json.dumps({"query": query, "variables": variables(value)}, ensure_ascii=True)
    )
    assert status == 200
    assert _codes(body) == ["BAD_USER_INPUT"], (query, body)
    assert body["data"] is None


@pytest.mark.parametrize(
    "document",
    [
        '{{ article(slug: "{}") {{ id }} }}',
        '{{ articles(filter: {{search: "{}"}}) {{ totalCount }} }}',
        '{{ articles(after: "{}") {{ totalCount }} }}',
    ],
    ids=["slug", "search", "cursor"],
)
@pytest.mark.parametrize("literal", ["a\\u{0}b", "\\u{000}", "x\\u0000", "\\u{D800}"], ids=str)
async def test_unstorable_string_literals_are_refused(
    client: GraphQLClient, literal: str, document: str
) -> None:
    query = document.format(literal)
    body = await client.post(query)
    # graphql-core refuses a surrogate escape while parsing; NUL gets through to us.
    assert _codes(body) in (["BAD_USER_INPUT"], ["GRAPHQL_PARSE_FAILED"]), (query, body)
    assert body["data"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(["NEWEST", "0001-01-01T00:00:00+01:00", 1]),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),
        _cursor(["NEWEST", "2026-01-01T00:00:00+00:00\x00", 1]),
        _cursor(["TOP", 1, "x\x00", 3]),
        "\u00e9\u00e9\u00e9\u00e9",
        "=" * 1000,
    ],
    ids=["year-1-offset", "deep-brackets", "nul-in-date", "nul-in-value", "non-ascii", "padding"],
)
@pytest.mark.parametrize(
    "query",
    [
        "query($c: String) { articles(after: $c) { totalCount } }",
        "query($c: String) { articles(before: $c, last: 2) { totalCount } }",
        """query($c: String) { article(slug:
             "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum") {
             comments(after: $c, orderBy: TOP) { totalCount } } }""",
    ],
    ids=["articles-after", "articles-before", "comments-after"],
)
async def test_hostile_cursors_are_bad_user_input(
    client: GraphQLClient, cursor: str, query: str
) -> None:
    body = await client.post(query, {"c": cursor})
    assert _codes(body) == ["BAD_USER_INPUT"], (query, body)


# -- item 5: bodies that were plain-text 500s -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"hello"', "The request body must be a JSON object."),
        (b"12", "The request body must be a JSON object."),
        (b"null", "The request body must be a JSON object."),
        (b'{"query": "{ stats { articleCount } }\xff"}', "The request body is not valid UTF-8."),
        (
            b'{"query": "{ stats { articleCount } }", "variables": {"v": '
            + b"[" * 50_000
            + b"]" * 50_000
            + b"}}",
            "The request body is nested too deeply.",
        ),
    ],
    ids=["json-string", "json-number", "json-null", "invalid-utf8", "deep-variables"],
)
async def test_malformed_bodies_are_json_errors(
    client: GraphQLClient, body: bytes, message: str
) -> None:
    status, answer = await _raw(client, body)
    assert status == 400
    assert answer == {
        "data": None,
        "errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}],
    }


async def test_an_exception_outside_execution_is_a_masked_json_500(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from app import GraphQLApp

    async def broken(self: Any, request: Any, response: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(GraphQLApp, "get_context", broken)
    with caplog.at_level(logging.ERROR, logger="agora"):
        response = await client.http.post("/graphql", json={"query": "{ stats { articleCount } }"})
    assert response.status_code == 500
    assert response.json() == {
        "data": None,
        "errors": [
            {"message": "Internal server error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        ],
    }
    assert any("secret internals" in (r.exc_text or "") for r in caplog.records)


# -- item 10 ----------------------------------------------------------------------------------


async def test_several_operations_need_an_operation_name(client: GraphQLClient) -> None:
    document = "query A { stats { articleCount } } query B { stats { commentCount } }"
    body = await client.post(document)
    assert body == {
        "data": None,
        "errors": [
            {
                "message": "Must provide operation name if query contains multiple operations.",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ],
    }
    response = await client.http.post("/graphql", json={"query": document, "operationName": "B"})
    assert set(response.json()["data"]["stats"]) == {"commentCount"}


# -- item 7 and 9: one client address, the websocket message limit on every start path -----


def test_client_address_believes_only_trusted_proxies() -> None:
    from clientaddr import client_address

    headers = {"x-forwarded-for": "203.0.113.9, 192.0.2.7"}
    assert client_address("127.0.0.1", headers, ()) == "127.0.0.1"
    assert client_address("127.0.0.1", headers, ("127.0.0.1",)) == "192.0.2.7"
    # A client's own X-Forwarded-For entries are left of what the proxies appended.
    assert client_address("127.0.0.1", headers, ("127.0.0.0/8", "192.0.2.0/24")) == "203.0.113.9"
    assert client_address("198.51.100.1", headers, ("127.0.0.1",)) == "198.51.100.1"
    assert client_address("127.0.0.1", {"x-forwarded-for": "junk"}, ("127.0.0.1",)) == "127.0.0.1"
    assert client_address("127.0.0.1", {}, ("127.0.0.1",)) == "127.0.0.1"
    assert client_address(None, headers, ()) == "unknown"
    # Proxies that append the client's port.
    ported = {"x-forwarded-for": "203.0.113.9:5123, [2001:db8::1]:443"}
    assert client_address("127.0.0.1", ported, ("127.0.0.1",)) == "2001:db8::1"


@pytest.mark.parametrize(
    ("trusted", "shared"),
    [((), True), (("127.0.0.1",), False)],
    ids=["no-trusted-proxy-one-shared-limit", "trusted-proxy-a-limit-per-forwarded-address"],
)
async def test_http_rate_limits_key_on_the_forwarded_address_behind_a_trusted_proxy(
    demo_settings: Settings, trusted: tuple[str, ...], shared: bool
) -> None:
    query = (
        'mutation($u: String!) { logIn(input: {username: $u, password: "wrong-password"}) '
        "{ errors { code } } }"
    )
    rule_limit = 5
    settings = with_settings(
        demo_settings, trusted_proxies=trusted, login_failure_rate_per_address="5/900"
    )
    async for client in _client_for(settings, MemoryRateLimiter(clock=FakeClock())):
        # Steps, not cases: the address's limit must be used up before the other address asks.
        for i in range(rule_limit):
            body = await client.post(
                query, {"u": f"nobody{i}"}, headers={"X-Forwarded-For": "192.0.2.1"}
            )
            assert body["data"]["logIn"]["errors"] == [{"code": "INVALID_CREDENTIALS"}], i
        other = await client.post(
            query, {"u": "somebody"}, headers={"X-Forwarded-For": "192.0.2.2"}
        )
        expected = "RATE_LIMITED" if shared else "INVALID_CREDENTIALS"
        assert other["data"]["logIn"]["errors"] == [{"code": expected}], trusted


async def test_an_ipv6_client_rotating_through_its_64_shares_one_log_in_budget(
    demo_settings: Settings,
) -> None:
    """Per-address limits count an IPv6 client as its /64: a host can use any of its 2^64
    addresses, so keying on each would give it a fresh budget per request."""
    query = (
        'mutation($u: String!) { logIn(input: {username: $u, password: "wrong-password"}) '
        "{ errors { code } } }"
    )
    settings = with_settings(
        demo_settings, trusted_proxies=("127.0.0.1", "::1"), login_failure_rate_per_account="5/900"
    )
    async for client in _client_for(settings, MemoryRateLimiter(clock=FakeClock())):
        codes = []
        for i in range(7):
            body = await client.post(
                query, {"u": "alice"}, headers={"X-Forwarded-For": f"2001:db8:1:2::{i + 1:x}"}
            )
            codes.append(body["data"]["logIn"]["errors"][0]["code"])
        assert codes == ["INVALID_CREDENTIALS"] * 5 + ["RATE_LIMITED"] * 2
        # Another /64 is another client.
        body = await client.post(
            query, {"u": "alice"}, headers={"X-Forwarded-For": "2001:db8:1:3::1"}
        )
        assert body["data"]["logIn"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]


def test_every_start_path_sets_the_websocket_limit_and_ignores_proxy_headers() -> None:
    from app import uvicorn_options

    settings = Settings(ws_max_message_bytes=65_536)
    options = uvicorn_options(settings)
    assert options["ws_max_size"] == 65_536
    assert options["proxy_headers"] is False
    assert options["timeout_graceful_shutdown"] == 10
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    command = readme[readme.index("uvicorn app:create_app") :].split("#", 1)[0]
    assert "--ws-max-size 65536" in command
    assert "--no-proxy-headers" in command
    assert "--timeout-graceful-shutdown 10" in command


# -- item 8: logs stay small --------------------------------------------------------------


async def test_failing_inputs_are_logged_truncated(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    huge = "x" * 1_000_000

    async def broken(self: Loaders) -> None:
        raise ValueError(f"cannot handle {huge}") from KeyError(huge)

    monkeypatch.setattr(Loaders, "_load_tree", broken)
    with caplog.at_level(logging.ERROR, logger="agora.errors"):
        body = await client.post("{ categories { slug } }")
    assert _codes(body) == ["INTERNAL_SERVER_ERROR"]
    records = [r for r in caplog.records if r.name == "agora.errors"]
    assert records
    for record in records:
        logged = record.getMessage() + (record.exc_text or "")
        assert "cannot handle xxx" in logged
        assert len(logged) < 30_000, len(logged)


def test_access_log_lines_drop_query_strings() -> None:
    from logs import TruncatingFilter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/graphql?query=" + "q" * 100_000 + "&password=hunter2",
            "1.1",
            200,
        ),
        None,
    )
    assert TruncatingFilter().filter(record)
    line = record.getMessage()
    assert "hunter2" not in line
    assert len(line) < 200
    assert line.startswith('127.0.0.1:5000 - "GET /graphql?…')


def test_the_app_builds_with_trusted_proxies() -> None:
    create_app(Settings(trusted_proxies=("10.0.0.0/8",), database_url="sqlite://:memory:"))


# -- found by the review: fragments, numbers, caches, transports ----------------------------


def _fragment_chain(levels: int, leaf: str) -> str:
    """F0 spreads F1 twice, F1 spreads F2 twice, …: 2^levels expansions of ``leaf``."""
    parts = ["query { ...F0 }"]
    for i in range(levels):
        parts.append(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}")
    parts.append(f"fragment F{levels} on Query {{ {leaf} }}")
    return " ".join(parts)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (_fragment_chain(23, "...F0"), "GRAPHQL_VALIDATION_FAILED"),  # a cycle at the end
        (_fragment_chain(23, "...Nope"), "GRAPHQL_VALIDATION_FAILED"),  # an unknown fragment
        (_fragment_chain(23, "stats { articleCount }"), "QUERY_TOO_COMPLEX"),  # valid, huge
        (_fragment_chain(23, "__typename"), "QUERY_TOO_COMPLEX"),
    ],
    ids=["cycle", "unknown", "valid-fields", "valid-typename"],
)
async def test_fragment_bombs_are_refused_at_once(
    client: GraphQLClient, query: str, code: str
) -> None:
    started = time.monotonic()
    body = await client.post(query)
    assert _codes(body) == [code], body
    assert body["data"] is None
    assert time.monotonic() - started < 0.5  # was 18 s for 23 levels, doubling with each


async def test_many_spreads_in_one_selection_are_refused_before_validation(
    client: GraphQLClient,
) -> None:
    fragments = " ".join(
        f"fragment G{i} on Query {{ stats {{ articleCount }} }}" for i in range(400)
    )
    spreads = " ".join(f"...G{i}" for i in range(400))
    started = time.monotonic()
    body = await client.post(f"query {{ {spreads} }} {fragments}")
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "fields")
    assert time.monotonic() - started < 0.5
    # A Relay-style page: a couple dozen fragments on one object, each with its own fields.
    few = " ".join(f"fragment G{i} on SiteStats {{ articleCount commentCount }}" for i in range(24))
    data = await client.data("{ stats { " + " ".join(f"...G{i}" for i in range(24)) + " } } " + few)
    assert data["stats"]["articleCount"] == 50


@pytest.mark.parametrize(
    "query",
    [
        "{ articles(first: " + "9" * 5000 + ") { totalCount } }",
        "{ leaderboard(first: " + "9" * 5000 + ") { rank } }",
        "{ articles(first: -" + "9" * 30 + ") { totalCount } }",
        '{ article(slug: "x") { relatedArticles(first: ' + "9" * 5000 + ") { slug } } }",
    ],
    ids=["connection", "leaderboard", "negative", "related"],
)
async def test_huge_integer_literals_are_bad_user_input(client: GraphQLClient, query: str) -> None:
    body = await client.post(query)
    assert _codes(body) == ["BAD_USER_INPUT"], body


async def test_huge_json_numbers_are_a_400(client: GraphQLClient) -> None:
    status, body = await _raw(
        client,
        '{"query": "query($f: Int) { articles(first: $f) { totalCount } }", "variables": {"f": '
        + "9" * 5000
        + "}}",
    )
    assert (status, _codes(body)) == (400, ["BAD_USER_INPUT"])
    response = await client.http.get(
        "/graphql",
        params={
            "query": "query($f: Int) { articles(first: $f) { totalCount } }",
            "variables": '{"f": ' + "9" * 5000 + "}",
        },
    )
    assert response.status_code == 400
    assert _codes(response.json()) == ["BAD_USER_INPUT"]


async def test_limits_of_one_operation_are_its_own(client: GraphQLClient) -> None:
    aliases = " ".join(f"a{i}: stats {{ articleCount }}" for i in range(16))
    document = f"query A {{ {aliases} }} query B {{ {aliases} }}"
    response = await client.http.post("/graphql", json={"query": document, "operationName": "A"})
    body = response.json()
    assert "errors" not in body, body
    assert len(body["data"]) == 16


async def test_introspection_is_limited_per_document(client: GraphQLClient) -> None:
    one = "__schema { types { name fields { name args { name } } } }"
    body = await client.post("{ " + " ".join(f"s{i}: {one}" for i in range(3)) + " }")
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "introspection")
    data = await client.data("{ " + one + " }")
    assert data["__schema"]["types"]


async def test_an_over_long_document_is_refused_before_parsing(client: GraphQLClient) -> None:
    literal = "\\u00e9" * 40_000  # 240,000 characters of escapes: long to parse
    body = await client.post('{ article(slug: "' + literal + '") { id } }')
    assert (_codes(body), _limit(body)) == (["QUERY_TOO_COMPLEX"], "characters")
    # The same value as a variable is fine.
    data = await client.data(
        "query($s: String!) { article(slug: $s) { id } }", {"s": "\u00e9" * 40_000}
    )
    assert data == {"article": None}


def test_the_document_cache_is_bounded_in_characters() -> None:
    from graphql import parse

    from api.extensions.cache import CheckedDocument as _Checked
    from api.extensions.cache import DocumentCache as _LRU

    cache = _LRU(size=100, max_chars=10_000)
    document = parse("{ __typename }")
    for i in range(50):
        cache.put(f"{i:04d}" + "x" * 496, _Checked(document, []))
    assert cache.chars <= 10_000
    assert len(cache.items) == 20
    cache.put("y" * 2_000, _Checked(document, []))  # over a tenth of the budget: not kept
    assert cache.get("y" * 2_000) is None


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_subscription_over_plain_http_needs_a_streaming_transport(
    client: GraphQLClient, method: str
) -> None:
    query = 'subscription { oddsUpdated(marketId: "TWFya2V0OjE=") { seq } }'
    if method == "POST":
        response = await client.http.post("/graphql", json={"query": query})
    else:
        response = await client.http.get("/graphql", params={"query": query})
    assert response.status_code == 400, response.text
    assert _codes(response.json()) == ["STREAMING_TRANSPORT_REQUIRED"]


async def test_routing_errors_are_json(client: GraphQLClient) -> None:
    response = await client.http.put("/graphql", json={"query": "{ stats { articleCount } }"})
    assert response.status_code == 405
    assert _codes(response.json()) == ["METHOD_NOT_ALLOWED"]
    response = await client.http.get("/nowhere")
    assert response.status_code == 404
    assert _codes(response.json()) == ["NOT_FOUND"]


async def test_concurrent_failed_log_ins_are_counted_before_hashing(
    demo_settings: Settings,
) -> None:
    import asyncio

    query = (
        'mutation($p: String!) { logIn(input: {username: "alice", password: $p}) '
        "{ token errors { code } } }"
    )
    async for client in _client_for(demo_settings, MemoryRateLimiter(clock=FakeClock())):
        answers = await asyncio.gather(
            *(client.post(query, {"p": f"wrong-password-{i}"}) for i in range(12))
        )
        codes = sorted(a["data"]["logIn"]["errors"][0]["code"] for a in answers)
        # LOGIN_FAILURE_RATE_PER_ACCOUNT is 5: five guesses, however many arrive at once.
        assert codes == ["INVALID_CREDENTIALS"] * 5 + ["RATE_LIMITED"] * 7


async def test_a_response_of_shared_strings_is_refused_before_encoding(
    demo_settings: Settings,
) -> None:
    settings = with_settings(demo_settings, max_response_bytes=1_000_000)
    bodies = " ".join(f"b{i}: article {{ body }}" for i in range(30))
    query = (
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Article { comments(first: 20) { "
        f"nodes {{ {bodies} }} }} }} }} }}"
    )
    async for client in _client_for(settings):
        started = time.monotonic()
        body = await client.post(query, {"ids": [ARTICLE_ID] * 20})
        assert body == {
            "data": None,
            "errors": [
                {
                    "message": "The response would exceed 1000000 bytes. Ask for less.",
                    "extensions": {"code": "RESPONSE_TOO_LARGE", "limit": "responseBytes"},
                }
            ],
        }
        assert time.monotonic() - started < 2.0


def test_a_locked_sqlite_file_is_the_database_being_down() -> None:
    import sqlite3

    from db.health import is_database_down

    assert is_database_down(sqlite3.OperationalError("database is locked"))
    assert not is_database_down(sqlite3.OperationalError("no such table: x"))


@pytest.mark.parametrize(
    "name", ["uvicorn.access", "uvicorn.error", "agora", "agora.ws", "agora.trading"]
)
def test_every_start_path_filters_uvicorn_and_app_logs(name: str) -> None:
    from logs import TruncatingFilter

    create_app(Settings(database_url="sqlite://:memory:"))
    assert any(isinstance(f, TruncatingFilter) for f in logging.getLogger(name).filters), name


async def test_a_mutation_that_did_its_work_is_never_hidden(fresh_settings: Settings) -> None:

    from db import models

    await seed_demo(fresh_settings)
    settings = with_settings(fresh_settings, max_response_objects=3)
    async for client in _client_for(settings, MemoryRateLimiter(clock=FakeClock())):
        alice = await client.log_in("alice")
        before = await models.Comment.filter(article_id=50).count()
        body = await alice.post(
            """mutation($a: ID!) { postComment(input: {articleId: $a, body: "Still here"}) {
                 comment { id body article { comments(first: 100) { nodes { id } } } }
                 errors { code } } }""",
            {"a": ARTICLE_ID},
        )
        # Over the object budget, but the comment was posted: the answer says so.
        assert body["data"]["postComment"]["comment"]["body"] == "Still here"
        assert body["data"]["postComment"]["errors"] == []
        assert await models.Comment.filter(article_id=50).count() == before + 1


def test_kept_node_counts_pin_no_document() -> None:
    """A count kept for an operation goes when nothing else holds its document (a refused
    document of 30 KB is ~2 MB of tokens: 512 of them kept would be a gigabyte)."""
    import gc

    from graphql import parse

    from api.extensions import request_error, variables
    from api.schema import build_schema

    settings = Settings(env="test")
    schema = build_schema(settings)._schema
    variables._counts.clear()
    document = parse("query($n: Int) { articles(first: $n) { nodes { id } } }")
    assert request_error(schema, document, None, {"n": 3}, settings) is None
    assert len(variables._counts) == 1
    del document
    gc.collect()
    assert variables._counts == {}


def test_counts_of_an_input_variable_follow_its_lists_not_its_scalars() -> None:
    """A variable read only inside arguments is kept by the shape of its lists: an input's
    amounts and texts leave one count for any value (buyShares walks once, not per amount),
    while its lists' lengths still count item by item, refused and allowed alternately."""
    from dataclasses import replace

    from graphql import parse

    from api.extensions import request_error, variables
    from api.schema import build_schema

    settings = Settings(env="test")
    schema = build_schema(settings)._schema
    variables._counts.clear()
    document = parse(
        "mutation($input: CreateMarketInput!) { createMarket(input: $input) { market { id } } }"
    )

    def sent(outcomes: int, liquidity: str, question: str) -> dict[str, Any]:
        return {
            "input": {
                "question": question,
                "description": "",
                "resolutionCriteria": "",
                "outcomes": [f"o{i}" for i in range(outcomes)],
                "closesAt": "2030-01-01T00:00:00Z",
                "liquidity": liquidity,
            }
        }

    for liquidity, question in (("10.00", "Will it?"), ("250.50", "Will it not?")):
        assert request_error(schema, document, None, sent(2, liquidity, question), settings) is None
    (entry,) = variables._counts.values()
    assert list(entry[3].values()) == [2]  # one walk for both: the outcomes' 2 items
    assert request_error(schema, document, None, sent(3, "10.00", "?"), settings) is None
    assert list(entry[3].values()) == [2, 3]
    tight = replace(settings, max_query_nodes=2)
    for outcomes, refused in [(3, True), (2, False), (3, True), (2, False)]:
        error = request_error(schema, document, None, sent(outcomes, "1.00", "?"), tight)
        assert (error is not None) is refused, outcomes
