"""The real npm clients against GraphQL over HTTP: SSE and multipart subscriptions, persisted
queries, batching.

Each test runs one node script of ``tests/node`` against the app under a real uvicorn on loopback
(development settings, SQLite with the demo data, a database of its own), and asserts both what
the client handed its caller and what went over the wire (every script's requests pass through
a recording ``fetch``: headers, bodies, statuses, content types, the raw streams):

- graphql-sse's ``createClient`` in distinct connections mode (one ``POST`` with
  ``Accept: text/event-stream`` per operation) gets the comment alice posts (``commentAdded`` on
  the showcase article, exactly once, the article's next sequence) and the odds change of her
  trade (``oddsUpdated``: the odds at once, then the trade's update with the next seq,
  probabilities summing to 1), runs a query (one ``next``, then ``complete``), and gets a
  document that doesn't validate as errors in a ``next`` event of a 200 stream, as the protocol
  requires;
- Apollo Client 4's ``HttpLink`` gets the same two live events over Apollo's multipart
  subscription protocol (``multipart/mixed``, ``subscriptionSpec=1.0``; its mutations go
  through the same link as ``application/graphql-response+json`` requests);
- Apollo's ``PersistedQueryLink`` (automatic persisted queries, sha256 of the query text) runs
  the article page twice, with POST and with ``useGETForHashedQueries``: the first request is
  hash-only and answered ``PERSISTED_QUERY_NOT_FOUND``, the retry carries the text (whose sha256
  is the hash) and gets the data, the second run is hash-only (a GET without the text, in GET
  mode) and gets the same data;
- Apollo's ``BatchHttpLink`` sends four queries as one array request and gets their four results
  in order, each what the query alone gets.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.specs import CENTRAL_ASIA_SLUG
from tests.conftest import GraphQLClient, prepare_database, with_settings
from tests.nodetools import load_demo_data, node_tools, run_node, served

ARTICLE = """
query($slug: String!) {
  article(slug: $slug) { id title markets { id outcomes { id probability } } }
  stats { articleCount }
}
"""
ARTICLE_TITLE = "Central Asian Leaders Strengthen Ties as Azerbaijan Joins Forum"
GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass
class Site:
    """The app served on loopback with the demo data, and what the tests need to know of it."""

    address: str
    node: str
    http: httpx.AsyncClient
    alice: GraphQLClient
    comment_seq: int
    article: dict[str, Any]
    stats: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://{self.address}/graphql"

    @property
    def market(self) -> dict[str, Any]:
        market: dict[str, Any] = self.article["markets"][0]
        return market

    async def run(self, script: str, **options: Any) -> dict[str, Any]:
        """Run ``tests/node/<script>`` with ``options`` (and the URL) as its JSON argument."""
        return await run_node(self.node, script, json.dumps({"url": self.url, **options}))

    def live_options(self, body: str) -> dict[str, Any]:
        """What the scripts need to subscribe to the showcase article and its first market."""
        return {
            "token": self.alice.token,
            "articleId": self.article["id"],
            "afterSequence": self.comment_seq,
            "marketId": self.market["id"],
            "outcomeId": self.market["outcomes"][0]["id"],
            "body": body,
        }

    async def plain(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """What ``query`` alone gets as ``application/json`` over POST."""
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 200, response.text
        return response.json()


@asynccontextmanager
async def demo_site(tmp_path: Path) -> AsyncIterator[Site]:
    node = node_tools()
    settings = with_settings(
        await prepare_database(f"sqlite://{tmp_path}/agora.sqlite3", demo=False),
        env="development",
    )
    comment_seq = await load_demo_data(settings)
    async with (
        served(settings) as address,
        httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as http,
    ):
        alice = await GraphQLClient(http).log_in("alice")
        assert alice.token
        data = await alice.data(ARTICLE, {"slug": CENTRAL_ASIA_SLUG})
        yield Site(address, node, http, alice, comment_seq, data["article"], data["stats"])


def untyped(value: Any) -> Any:
    """``value`` without the ``__typename`` fields Apollo adds to every selection."""
    if isinstance(value, dict):
        return {k: untyped(v) for k, v in value.items() if k != "__typename"}
    if isinstance(value, list):
        return [untyped(v) for v in value]
    return value


def assert_live(seen: dict[str, Any], site: Site, body: str) -> None:
    """The comment and the trade that the script made reached its subscriptions, once each."""
    posted = untyped(seen["posted"])
    assert posted["sequence"] == site.comment_seq + 1
    assert posted["body"] == body
    # commentAdded: the comment just posted, exactly once, with the article's next sequence.
    assert untyped(seen["comments"]) == [
        {
            "id": posted["id"],
            "sequence": site.comment_seq + 1,
            "body": body,
            "author": {"username": "alice"},
        }
    ]
    # oddsUpdated: the odds at once (no trade), then the trade's update with the next seq.
    first, live = untyped(seen["oddsFirst"]), untyped(seen["oddsLive"])
    market, bought = site.market, site.market["outcomes"][0]["id"]
    assert first == {
        "seq": first["seq"],
        "market": {"id": market["id"]},
        "outcomes": market["outcomes"],
        "lastTrade": None,
    }
    assert isinstance(first["seq"], int)
    assert live["seq"] == first["seq"] + 1
    trade = untyped(seen["trade"])
    assert trade["amount"] == "5.00"
    assert live["lastTrade"] == {
        "amount": "5.00",
        "shares": trade["shares"],
        "outcome": {"id": bought},
        "user": {"username": "alice"},
    }
    assert [o["id"] for o in live["outcomes"]] == [o["id"] for o in market["outcomes"]]
    for update in (first, live):
        assert math.isclose(sum(o["probability"] for o in update["outcomes"]), 1.0, abs_tol=1e-9)
    before = {o["id"]: o["probability"] for o in first["outcomes"]}
    after = {o["id"]: o["probability"] for o in live["outcomes"]}
    assert after[bought] > before[bought]  # buying an outcome makes it likelier
    assert seen["oddsMessages"] == 2


def sse_events(stream: str) -> list[tuple[str, Any]]:
    """A ``text/event-stream`` body as (event, data) pairs, data parsed (None when empty);
    comments (keep-alives) left out."""
    events = []
    for block in stream.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))
        if fields:
            data = "\n".join(fields.get("data", []))
            events.append(("".join(fields.get("event", ["message"])), json.loads(data or "null")))
    return events


async def test_graphql_sse_client_gets_live_comments_odds_and_query_results(
    tmp_path: Path,
) -> None:
    body = "Checked with the graphql-sse client: **live**, over server-sent events."
    async with demo_site(tmp_path) as site:
        seen = await site.run("graphql_sse_client.mjs", **site.live_options(body))
        stats = await site.plain("query Stats { stats { articleCount } }")

    assert_live(seen, site, body)
    # A query over SSE: one `next` with what a plain POST gets, then `complete`.
    assert seen["query"] == [stats]
    assert stats == {"data": {"stats": site.stats}}
    # A document that doesn't validate: its errors in a `next`, then `complete`.
    [invalid] = seen["invalid"]
    assert "data" not in invalid
    assert invalid["errors"]
    assert {e["extensions"]["code"] for e in invalid["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert seen["events"] == {
        "commentAdded": ["next"],
        "oddsUpdated": ["next", "next"],
        "query": ["next", "complete"],
        "invalid": ["next", "complete"],
    }
    # On the wire: one POST per operation, each answered with an event stream.
    requests = seen["requests"]
    assert [r["body"]["query"].split("(")[0].split("{")[0].strip() for r in requests] == [
        "subscription CommentAdded",
        "subscription OddsUpdated",
        "query Stats",
        "subscription Invalid",
    ]
    for request in requests:
        assert request["method"] == "POST"
        assert request["path"] == "/graphql"
        assert request["accept"] == "text/event-stream"
        assert request["contentType"] == "application/json; charset=utf-8"
        assert request["status"] == 200, request
        assert request["responseContentType"].split(";")[0].strip() == "text/event-stream"
    comments, odds, query, invalid_stream = (sse_events(r["stream"]) for r in requests)
    assert comments == [("next", {"data": {"commentAdded": seen["comments"][0]}})]
    assert odds == [
        ("next", {"data": {"oddsUpdated": seen["oddsFirst"]}}),
        ("next", {"data": {"oddsUpdated": seen["oddsLive"]}}),
    ]
    assert query == [("next", stats), ("complete", None)]
    assert invalid_stream == [("next", invalid), ("complete", None)]
    # (Whether a stream "ended" says nothing: graphql-sse aborts the request itself as soon as
    # it reads `complete`, before the server's end of the body can arrive.)


MULTIPART_ACCEPT = (
    "multipart/mixed;boundary=graphql;subscriptionSpec=1.0,"
    "application/graphql-response+json,application/json;q=0.9"
)
APOLLO_ACCEPT = "application/graphql-response+json,application/json;q=0.9"


def multipart_parts(stream: str, content_type: str) -> list[Any]:
    """The JSON bodies of a ``multipart/mixed`` body's parts, in order."""
    boundary = next(
        part.split("=", 1)[1].strip().strip('"')
        for part in content_type.split(";")
        if part.strip().lower().startswith("boundary=")
    )
    delimiter = f"--{boundary}"
    parts = []
    for chunk in stream.split(delimiter)[1:]:
        if chunk.startswith("--"):
            break  # the close delimiter
        if not chunk.strip():
            continue  # what came after the last delimiter so far: nothing yet
        headers, _, content = chunk.partition("\r\n\r\n")
        assert "content-type: application/json" in headers.lower(), headers
        parts.append(json.loads(content))
    return parts


async def test_apollo_http_link_gets_live_comments_and_odds_over_multipart(
    tmp_path: Path,
) -> None:
    body = "Checked with Apollo Client: **live**, over multipart HTTP."
    async with demo_site(tmp_path) as site:
        seen = await site.run("apollo_client.mjs", mode="multipart", **site.live_options(body))

    assert_live(seen, site, body)
    assert seen["comments"][0]["__typename"] == "Comment"
    # On the wire: two subscriptions, then the two mutations, all POSTs.
    requests = seen["requests"]
    assert [r["body"]["operationName"] for r in requests] == [
        "CommentAdded",
        "OddsUpdated",
        "PostComment",
        "BuyShares",
    ]
    for request in requests:
        assert request["method"] == "POST"
        assert request["contentType"] == "application/json"
        assert request["status"] == 200, request
    subscriptions, mutations = requests[:2], requests[2:]
    for request in subscriptions:
        assert request["accept"] == MULTIPART_ACCEPT
        content_type = request["responseContentType"]
        assert content_type.split(";")[0].strip() == "multipart/mixed"
        assert re.search(r';\s*subscriptionSpec="?1\.0"?\s*(;|$)', content_type), content_type
    for request in mutations:
        assert request["accept"] == APOLLO_ACCEPT
        assert request["responseContentType"].split(";")[0].strip() == GRAPHQL_RESPONSE
    # Each part is a heartbeat ({}) or {"payload": <execution result>}; the client ended both.
    comment_parts, odds_parts = (
        [p for p in multipart_parts(r["stream"], r["responseContentType"]) if p != {}]
        for r in subscriptions
    )
    assert comment_parts == [{"payload": {"data": {"commentAdded": seen["comments"][0]}}}]
    assert odds_parts == [
        {"payload": {"data": {"oddsUpdated": seen["oddsFirst"]}}},
        {"payload": {"data": {"oddsUpdated": seen["oddsLive"]}}},
    ]
    assert [r["ended"] for r in subscriptions] == [False, False]


@pytest.mark.parametrize("use_get", [False, True], ids=["post", "get"])
async def test_apollo_persisted_queries_send_the_hash_then_the_text_once(
    tmp_path: Path, use_get: bool
) -> None:
    async with demo_site(tmp_path) as site:
        seen = await site.run(
            "apollo_client.mjs", mode="persisted", slug=CENTRAL_ASIA_SLUG, useGET=use_get
        )
        requests = seen["requests"]
        assert len(requests) == 3, json.dumps(requests, indent=1)
        text = requests[1]["body"]["query"]
        expected = await site.plain(text, {"slug": CENTRAL_ASIA_SLUG})

    name = "ArticlePageByGet" if use_get else "ArticlePageByPost"
    unknown, retried, known = requests
    digest = hashlib.sha256(text.encode()).hexdigest()
    persisted = {"version": 1, "sha256Hash": digest}
    hashed_method = "GET" if use_get else "POST"

    def sent(request: dict[str, Any]) -> dict[str, Any]:
        """What the request carried: its body, or a GET's URL parameters."""
        carried: dict[str, Any] = (
            request["params"] if request["method"] == "GET" else request["body"]
        )
        return carried

    # 1. Hash only; the server doesn't know it yet.
    assert unknown["method"] == hashed_method
    assert "query" not in sent(unknown)
    assert sent(unknown)["operationName"] == name
    assert sent(unknown)["variables"] == {"slug": CENTRAL_ASIA_SLUG}
    assert sent(unknown)["extensions"]["persistedQuery"] == persisted
    assert unknown["accept"] == APOLLO_ACCEPT
    assert unknown["responseContentType"].split(";")[0].strip() == GRAPHQL_RESPONSE
    assert [e["extensions"]["code"] for e in unknown["response"]["errors"]] == [
        "PERSISTED_QUERY_NOT_FOUND"
    ]
    assert unknown["response"].get("data") is None
    # 2. The same again with the text (always a POST): the server runs it and keeps it.
    assert retried["method"] == "POST"
    assert retried["body"]["operationName"] == name
    assert retried["body"]["extensions"]["persistedQuery"] == persisted
    assert text.startswith(f"query {name}(")
    assert retried["status"] == 200
    assert retried["responseContentType"].split(";")[0].strip() == GRAPHQL_RESPONSE
    assert retried["response"] == expected
    # 3. The second run: the hash alone is enough.
    assert known["method"] == hashed_method
    assert "query" not in sent(known)
    assert sent(known)["extensions"]["persistedQuery"] == persisted
    assert known["status"] == 200
    assert known["response"] == expected
    # What the client got, both times: the article page.
    assert [run["requestsSoFar"] for run in seen["runs"]] == [2, 3]
    for run in seen["runs"]:
        assert run["data"] == expected["data"]
    article = untyped(expected["data"]["article"])
    assert article["slug"] == CENTRAL_ASIA_SLUG
    assert article["title"] == ARTICLE_TITLE
    assert article["author"]["name"] == "Oliver Scott"
    comments = article["comments"]
    assert 0 < len(comments["edges"]) == min(10, comments["totalCount"])


async def test_apollo_batch_http_link_sends_four_queries_in_one_request(tmp_path: Path) -> None:
    async with demo_site(tmp_path) as site:
        seen = await site.run("apollo_client.mjs", mode="batch", slug=CENTRAL_ASIA_SLUG)
        [request] = seen["requests"]
        batch = request["body"]
        expected = [await site.plain(op["query"], op["variables"]) for op in batch]

    assert request["method"] == "POST"
    assert request["accept"] == APOLLO_ACCEPT
    assert request["contentType"] == "application/json"
    assert [op["operationName"] for op in batch] == ["Stats", "Article", "Markets", "Categories"]
    assert batch[1]["variables"] == {"slug": CENTRAL_ASIA_SLUG}
    assert request["status"] == 200
    # Four results, in the order of the operations, each what the query alone gets.
    assert request["response"] == expected
    assert seen["results"] == [result["data"] for result in expected]
    stats, article, markets, categories = (untyped(result["data"]) for result in expected)
    assert stats["stats"]["articleCount"] == site.stats["articleCount"]
    assert article["article"]["title"] == ARTICLE_TITLE
    assert article["article"]["author"] == {"name": "Oliver Scott"}
    assert len(markets["markets"]["nodes"]) == 3
    for market in markets["markets"]["nodes"]:
        assert math.isclose(sum(o["probability"] for o in market["outcomes"]), 1.0, abs_tol=1e-9)
    assert categories["categories"]
