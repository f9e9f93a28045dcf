"""One error rule for each kind, query limits before execution, and the HTTP surface."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import pytest

from api.core.node import to_global_id
from api.loaders import Loaders
from tests.conftest import GraphQLClient


def _codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


@pytest.mark.parametrize(
    "bad",
    [
        "nope",
        "",
        base64.b64encode(b"Spaceship:1").decode(),
        to_global_id("Article", 1)[:-2],
    ],
    ids=["garbage", "empty", "unknown-type", "truncated"],
)
async def test_malformed_ids_are_bad_user_input(client: GraphQLClient, bad: str) -> None:
    body = await client.post("query($id: ID!) { node(id: $id) { id } }", {"id": bad})
    assert _codes(body) == ["BAD_USER_INPUT"], (bad, body)
    assert body["data"] == {"node": None} or body["data"] is None


async def test_ids_and_cursors_out_of_the_column_range_are_bad_user_input(
    client: GraphQLClient,
) -> None:
    import base64 as b64

    body = await client.post(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": b64.b64encode(b"Article:99999999999").decode()},
    )
    assert _codes(body) == ["BAD_USER_INPUT"]
    cursor = b64.urlsafe_b64encode(b'["NEWEST","2026-01-01T00:00:00+00:00",99999999999]').decode()
    body = await client.post(
        "query($c: String) { articles(after: $c) { totalCount } }", {"c": cursor}
    )
    assert _codes(body) == ["BAD_USER_INPUT"]


async def test_an_id_of_nothing_is_null(client: GraphQLClient) -> None:
    data = await client.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Article", 999999)}
    )
    assert data == {"node": None}


async def test_node_and_nodes_fetch_any_type(client: GraphQLClient) -> None:
    data = await client.data(
        """{ article(slug: "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum") {
              id author { id } category { id } tags { id } markets { id outcomes { id } } } }"""
    )
    article = data["article"]
    ids = [
        article["id"],
        article["author"]["id"],
        article["category"]["id"],
        article["tags"][0]["id"],
        article["markets"][0]["id"],
        article["markets"][0]["outcomes"][0]["id"],
        to_global_id("Tag", 999999),
    ]
    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }", {"ids": ids}
    )
    assert [n and n["__typename"] for n in data["nodes"]] == [
        "Article",
        "Author",
        "Category",
        "Tag",
        "Market",
        "Outcome",
        None,
    ]
    assert [n["id"] for n in data["nodes"][:-1]] == ids[:-1]


async def test_nodes_takes_at_most_100_ids(client: GraphQLClient) -> None:
    ids = [to_global_id("Tag", i) for i in range(101)]
    body = await client.post("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert _codes(body) == ["BAD_USER_INPUT"]
    ids = ids[:100]
    data = await client.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert len(data["nodes"]) == 100


async def test_document_validation_errors_stay_readable(client: GraphQLClient) -> None:
    body = await client.post("{ articles { nodes { nope } } }")
    assert _codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Cannot query field 'nope'" in body["errors"][0]["message"]
    body = await client.post("{ articles { ")
    assert _codes(body) == ["GRAPHQL_PARSE_FAILED"]


async def test_bad_scalar_values_are_bad_user_input(client: GraphQLClient) -> None:
    body = await client.post("query($n: Int) { articles(first: $n) { totalCount } }", {"n": "x"})
    assert _codes(body) == ["BAD_USER_INPUT"]
    body = await client.post('{ articles(first: "x") { totalCount } }')
    assert _codes(body) == ["BAD_USER_INPUT"]


def _nested(depth: int) -> str:
    # article → comments → node → replies → nodes → replies … gives depth quickly.
    inner = "id"
    for _ in range(depth):
        inner = f"replies(first: 1) {{ nodes {{ {inner} }} }}"
    return "{ articles(first: 1) { nodes { comments(first: 1) { nodes { " + inner + " } } } } }"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(_nested(15), id="depth"),
        pytest.param(
            "{ " + " ".join(f"a{i}: stats {{ articleCount }}" for i in range(200)) + " }",
            id="aliases",
        ),
        pytest.param(
            "{ articles(first: 100) { nodes { comments(first: 100) { nodes { "
            "replies(first: 100) { nodes { id } } } } } } }",
            id="nodes",
        ),
        pytest.param("{ " + "stats { articleCount } " * 3000 + "}", id="tokens"),
    ],
)
async def test_limits_refuse_before_execution_within_a_second(
    client: GraphQLClient, query: str
) -> None:
    started = time.monotonic()
    body = await client.post(query)
    assert time.monotonic() - started < 1.0
    assert _codes(body) == ["QUERY_TOO_COMPLEX"], body["errors"][0]["message"]
    assert body["data"] is None


async def test_thirty_levels_of_nesting_are_refused(client: GraphQLClient) -> None:
    query = "{ categories { " + "children { " * 29 + "id" + " }" * 30 + " }"
    body = await client.post(query)
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]


async def test_node_limit_counts_variables(client: GraphQLClient) -> None:
    query = """query($n: Int) { articles(first: $n) { nodes { comments(first: $n) {
                 nodes { replies(first: $n) { nodes { id } } } } } } }"""
    body = await client.post(query, {"n": 100})
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]
    data = await client.data(query, {"n": 2})
    assert len(data["articles"]["nodes"]) == 2


async def test_unexpected_errors_are_masked_and_logged(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: Loaders) -> None:
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(Loaders, "_load_tree", broken)
    with caplog.at_level(logging.ERROR, logger="agora.errors"):
        body = await client.post("{ categories { slug } stats { articleCount } }")
    assert body["errors"] == [
        {
            "message": "Internal server error.",
            "locations": [{"line": 1, "column": 3}],
            "path": ["categories"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        }
    ]
    assert body["data"] is None
    assert "SELECT secret" not in str(body)
    assert any("SELECT secret" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.parametrize("path", ["/graphql", "/graphql/"], ids=["no-slash", "trailing-slash"])
async def test_graphql_is_served_with_or_without_a_trailing_slash(
    client: GraphQLClient, path: str
) -> None:
    response = await client.http.post(path, json={"query": "{ stats { articleCount } }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"stats": {"articleCount": 50}}}


async def test_http_surface(client: GraphQLClient) -> None:
    http = client.http
    response = await http.get("/graphql", params={"query": "{ stats { articleCount } }"})
    assert response.json() == {"data": {"stats": {"articleCount": 50}}}
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    assert (await http.get("/healthz")).text == "ok"
    assert (await http.get("/readyz")).json() == {"database": "ok"}


async def test_bodies_over_one_mebibyte_get_413(client: GraphQLClient) -> None:
    padding = " " * (1024 * 1024)
    response = await client.http.post(
        "/graphql",
        content=('{"query": "{ stats { articleCount } }' + padding + '"}').encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_cors_allows_listed_origins_with_authorization(client: GraphQLClient) -> None:
    response = await client.http.options(
        "/graphql",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    response = await client.http.options(
        "/graphql",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("method", "request_args"),
    [
        pytest.param(
            "POST",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            id="not-json",
        ),
        pytest.param("POST", {"json": {"query": 5}}, id="query-not-a-string"),
        pytest.param(
            "POST",
            {"json": {"query": "{ stats { articleCount } }", "variables": [1]}},
            id="variables-not-an-object",
        ),
    ],
)
async def test_malformed_http_requests_get_json_errors_with_codes(
    client: GraphQLClient, method: str, request_args: dict[str, Any]
) -> None:
    response = await client.http.request(method, "/graphql", **request_args)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"]


async def test_a_mutation_over_get_is_405_with_allow_post(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", params={"query": "mutation { logOut }"})
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(
            "query($s: String!) { article(slug: $s) { id } }", {"s": "a\x00b"}, id="slug-variable"
        ),
        pytest.param(
            "query($f: ArticleFilter) { articles(filter: $f) { totalCount } }",
            {"f": {"search": "x\x00"}},
            id="search-in-an-input-object",
        ),
        pytest.param('{ article(slug: "a\\u0000b") { id } }', {}, id="escaped-in-a-literal"),
    ],
)
async def test_nul_characters_in_string_inputs_are_bad_user_input(
    client: GraphQLClient, query: str, variables: dict[str, Any]
) -> None:
    body = await client.post(query, variables)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], query


async def test_fragments_spread_exponentially_are_refused_quickly(client: GraphQLClient) -> None:
    levels = 24
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = "query { ...F0 } " + fragments + f" fragment F{levels} on Query {{ __typename }}"
    started = time.monotonic()
    body = await client.post(query)
    assert time.monotonic() - started < 1.0
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]


@pytest.mark.parametrize(
    "query",
    [
        "{ leaderboard(first: 1000000000) { rank } }",
        "{ articles(first: 1) { nodes { comments(first: 100000) { totalCount } } } }",
    ],
    ids=["leaderboard", "nested-connection"],
)
async def test_huge_page_sizes_are_bad_input_not_complexity(
    client: GraphQLClient, query: str
) -> None:
    body = await client.post(query)
    assert _codes(body) == ["BAD_USER_INPUT"], query


async def test_non_ascii_digits_are_not_ids(client: GraphQLClient) -> None:
    body = await client.post(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": base64.b64encode("User:١".encode()).decode()},
    )
    assert _codes(body) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "amount",
    ["١٢", "1.0000000000000000000000000001"],
    ids=["arabic-indic-digits", "28-decimal-places"],
)
async def test_non_ascii_digits_and_excess_precision_are_not_amounts(
    client: GraphQLClient, amount: str
) -> None:
    outcome = await client.data("{ markets(first: 1) { nodes { outcomes { id } } } }")
    outcome_id = outcome["markets"]["nodes"][0]["outcomes"][0]["id"]
    body = await client.post(
        "query($o: ID!, $a: Decimal) { quote(input: {outcomeId: $o, amount: $a}) { shares } }",
        {"o": outcome_id, "a": amount},
    )
    assert _codes(body) in (["BAD_USER_INPUT"], ["VALIDATION"]), amount
