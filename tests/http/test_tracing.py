"""OpenTelemetry tracing (off by default): the span tree of one article-page request, read from
the SDK's in-memory exporter — the request, its GraphQL operation, and each SQL statement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import tracing
from tests.conftest import GraphQLClient
from tests.news.test_article_page import ARTICLE_PAGE, ARTICLE_PAGE_STATEMENTS, CENTRAL_ASIA


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def _by_id(exporter: InMemorySpanExporter) -> dict[int, Any]:
    return {span.context.span_id: span for span in exporter.get_finished_spans()}


async def test_an_article_page_request_is_one_trace_of_request_operation_and_statements(
    client: GraphQLClient, spans: InMemorySpanExporter
) -> None:
    data = await client.data(ARTICLE_PAGE, {"slug": CENTRAL_ASIA})
    assert data["article"]["slug"] == CENTRAL_ASIA
    finished = _by_id(spans)
    [root] = [span for span in finished.values() if span.parent is None]
    assert root.name == "POST /graphql"
    assert root.kind == SpanKind.SERVER
    assert root.attributes["http.route"] == "/graphql"
    assert root.attributes["http.response.status_code"] == 200
    assert root.status.status_code == StatusCode.UNSET
    [operation] = [span for span in finished.values() if span.name.startswith("query")]
    assert operation.name == "query ArticlePage"
    assert operation.attributes["graphql.operation.name"] == "ArticlePage"
    assert operation.parent.span_id == root.context.span_id
    statements = [span for span in finished.values() if span.kind == SpanKind.CLIENT]
    # The pinned statement count of the article page, each a child of the operation.
    assert len(statements) == ARTICLE_PAGE_STATEMENTS
    assert {span.parent.span_id for span in statements} == {operation.context.span_id}
    # Named by their first keyword (the ranked related articles start with a WITH).
    assert {span.name for span in statements} == {"SELECT", "WITH"}
    assert all(
        span.attributes["db.statement"].lstrip().upper().startswith(span.name)
        for span in statements
    )
    assert all(span.attributes["db.system"] in ("sqlite", "postgres") for span in statements)
    # Nothing else: three kinds of span, one trace.
    assert len(finished) == 2 + ARTICLE_PAGE_STATEMENTS
    assert {span.context.trace_id for span in finished.values()} == {root.context.trace_id}
    # Statement values are bound parameters: the slug is in no span.
    assert all(CENTRAL_ASIA not in str(dict(span.attributes)) for span in statements)


async def test_a_request_joins_the_callers_trace_and_an_error_code_marks_its_spans(
    client: GraphQLClient, spans: InMemorySpanExporter
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = await client.http.post(
        "/graphql",
        json={"query": "query Nope { nope }"},
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    [root] = spans.get_finished_spans()  # refused before execution: no operation span
    assert root.context is not None and root.parent is not None and root.attributes is not None
    assert f"{root.context.trace_id:032x}" == trace_id
    assert f"{root.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert root.status.status_code == StatusCode.ERROR
    assert root.attributes["agora.error_code"] == "GRAPHQL_VALIDATION_FAILED"
    # A refusal inside a mutation payload marks its operation span too.
    spans.clear()
    refused = await client.data(
        'mutation LogIn { logIn(input: {username: "alice", password: "wrong-password"}) '
        "{ token errors { code } } }"
    )
    assert refused["logIn"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]
    [operation] = [s for s in spans.get_finished_spans() if s.name == "mutation LogIn"]
    assert operation.attributes is not None
    assert operation.attributes["agora.error_code"] == "INVALID_CREDENTIALS"


async def test_tracing_off_makes_no_spans(client: GraphQLClient) -> None:
    exporter = InMemorySpanExporter()
    tracing.configure("", exporter=exporter)
    tracing.shutdown()  # on, then off again: nothing may still reach the exporter
    assert tracing.tracer is None
    await client.data(ARTICLE_PAGE, {"slug": CENTRAL_ASIA})
    assert exporter.get_finished_spans() == ()
