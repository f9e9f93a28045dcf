"""The query limits and the document cache over HTTP: what a document alone decides is checked
once, by graphql-core validation rules, and kept with the document; what its variables decide
is checked on every request, after coercion."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLError, parse, validate

import api.extensions.rules
from api.extensions.cache import DocumentCache
from api.extensions.rules import DepthRule, OperationLimitRule, operation_rules
from api.schema import build_schema
from settings import Settings
from tests.conftest import GraphQLClient

ARTICLE_ID = "QXJ0aWNsZTo1MA=="  # Article:50 of the demo data
# Three nested pages of $n: 2 is a few dozen nodes, 100 is over a million.
PAGES = (
    "query($n: Int) { articles(first: $n) { nodes { comments(first: $n) { nodes { "
    "replies(first: $n) { nodes { id } } } } } } }"
)
# One article per id, each with 100 comments of 100 replies.
IDS = (
    "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Article { comments(first: 100) { nodes { "
    "replies(first: 100) { nodes { id } } } } } } }"
)
DEEP = "{ articles { nodes { " + "author { articles { nodes { " * 4 + "id" + " } } }" * 4 + " } } }"


def _document_cache(client: GraphQLClient) -> DocumentCache:
    """The document cache of the schema behind ``client``'s app."""
    app = client.http._transport.app  # type: ignore[attr-defined]
    (checks,) = [e for e in app.state.schema.extensions if hasattr(e, "cache")]
    cache: DocumentCache = checks.cache
    return cache


def _codes(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["extensions"]["code"], e["extensions"].get("limit")) for e in body["errors"]]


@pytest.mark.parametrize(
    ("query", "small", "oversized"),
    [
        (PAGES, {"n": 2}, {"n": 100}),
        (IDS, {"ids": [ARTICLE_ID]}, {"ids": [ARTICLE_ID] * 100}),
    ],
    ids=["page sizes", "ids"],
)
async def test_one_document_with_small_then_oversized_variables(
    client: GraphQLClient, query: str, small: dict[str, Any], oversized: dict[str, Any]
) -> None:
    cache = _document_cache(client)
    assert "errors" not in await client.post(query, small)
    body = await client.post(query, oversized)
    assert body["data"] is None
    assert _codes(body) == [("QUERY_TOO_COMPLEX", "nodes")]
    assert body["errors"][0]["message"].startswith("Query could return ")
    # The small variables again: the refusal was this request's, not the document's.
    assert "errors" not in await client.post(query, small)
    # One entry for the document: its checks and its document-only verdict (it passes) are
    # kept; the node count at the variables' sizes is not.
    entry = cache.get(query)
    assert entry is not None and list(cache.items) == [query]
    assert entry.errors == [] and entry.limits == {None: None}


async def test_a_document_only_limit_is_validated_once_and_kept_by_the_cache(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule_runs: list[tuple[type, ...]] = []
    real_validate = api.extensions.rules.validate

    def counted_validate(schema: Any, document: Any, rules: Any, **options: Any) -> Any:
        rule_runs.append(tuple(rules))
        return real_validate(schema, document, rules, **options)

    monkeypatch.setattr(api.extensions.rules, "validate", counted_validate)
    for _ in range(2):
        body = await client.post(DEEP)
        assert body["data"] is None
        assert _codes(body) == [("QUERY_TOO_COMPLEX", "depth")]
        assert body["errors"][0]["message"] == "Query depth 15 exceeds the limit of 12."
    # Refused by the rules once (graphql-core ran them), then from the cache.
    assert len(rule_runs) == 1
    assert all(issubclass(rule, OperationLimitRule) for rule in rule_runs[0])
    assert any(issubclass(rule, DepthRule) for rule in rule_runs[0])
    entry = _document_cache(client).get(DEEP)
    assert entry is not None
    verdict = entry.limits[None]
    assert verdict is not None
    assert verdict.extensions == {"code": "QUERY_TOO_COMPLEX", "limit": "depth"}


async def test_the_verdict_is_kept_per_operation(client: GraphQLClient) -> None:
    query = "query Deep " + DEEP + " query Shallow { stats { articleCount } }"
    shallow = await client.http.post("/graphql", json={"query": query, "operationName": "Shallow"})
    assert "errors" not in shallow.json(), shallow.json()
    deep = await client.http.post("/graphql", json={"query": query, "operationName": "Deep"})
    assert _codes(deep.json()) == [("QUERY_TOO_COMPLEX", "depth")]
    entry = _document_cache(client).get(query)
    assert entry is not None and set(entry.limits) == {"Shallow", "Deep"}
    assert entry.limits["Shallow"] is None


async def test_the_request_checks_come_before_the_document_only_verdict(
    client: GraphQLClient,
) -> None:
    query = "query($s: String) " + DEEP.replace("articles {", "articles(filter: {search: $s}) {", 1)
    body = await client.post(query, {"s": "nul\x00"})
    assert _codes(body) == [("BAD_USER_INPUT", None)]
    assert _codes(await client.post(query, {"s": "fine"})) == [("QUERY_TOO_COMPLEX", "depth")]
    # Cached now; a bad variable is still what the client hears about first.
    assert _codes(await client.post(query, {"s": "nul\x00"})) == [("BAD_USER_INPUT", None)]


def test_the_rules_are_graphql_core_validation_rules() -> None:
    settings = Settings(database_url="sqlite://:memory:")
    schema = build_schema(settings)._schema
    errors = validate(schema, parse(DEEP), operation_rules(settings))
    # Each rule reports its own limit, in order; the first is the answer.
    assert [(e.extensions or {}).get("limit") for e in errors] == ["depth", "nodes"]
    assert errors[0].message == "Query depth 15 exceeds the limit of 12."
    assert validate(schema, parse("{ stats { articleCount } }"), operation_rules(settings)) == []
    assert all(isinstance(error, GraphQLError) for error in errors)
