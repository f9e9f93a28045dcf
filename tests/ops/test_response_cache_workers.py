"""The response cache across two workers (WORKERS=2, PostgreSQL, Redis): a write that answered
on one worker is on the next read of the other, even while Redis' pub/sub lost the message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from app.response_cache import HEADER
from app.serve import WORKER_HEADER
from tests.ops.processes import demo_of
from tests.ops.test_workers import _pinned_clients, _two_workers, redis, supervisors
from tests.services import PostgresServer, RedisServer

__all__ = ["redis", "supervisors"]  # the fixtures, shared with test_workers

ARTICLE_PAGE = (
    Path(__file__).resolve().parents[2] / "demo" / "operations" / "ArticlePage.graphql"
).read_text()
POST = (
    "mutation($a: ID!, $b: String!) { postComment(input: {articleId: $a, body: $b}) "
    "{ comment { id } errors { code } } }"
)
BUY = (
    'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "40.00"}) '
    "{ trade { probabilityAfter } errors { code } } }"
)


async def read(http: httpx.AsyncClient, slug: str) -> tuple[str, dict[str, Any]]:
    """The article page by GET (as a CDN would send it): the cache's verdict and the data."""
    response = await http.get(
        "/graphql", params={"query": ARTICLE_PAGE, "variables": json.dumps({"slug": slug})}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return response.headers[HEADER], body["data"]["article"]


async def test_a_write_on_one_worker_is_fresh_on_the_other_without_pub_sub(
    postgres_server: PostgresServer,
    redis: RedisServer,
    supervisors: list[Any],
    tmp_path: Path,
) -> None:
    _, address, _, pids = await _two_workers(
        postgres_server,
        redis,
        supervisors,
        tmp_path,
        RESPONSE_CACHE="true",
        COMMENT_RATE="1000/1",
    )
    clients = await _pinned_clients(address, pids)
    first, second = (clients[pid] for pid in sorted(clients))
    demo = await demo_of(address)
    slug = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"
    auth = {"Authorization": f"Bearer {demo.token}"}
    store = aioredis.from_url(redis.url)
    try:
        for http in (first, second):
            await read(http, slug)
            status, _ = await read(http, slug)
            assert status == "hit"
        # Every subscriber connection of both workers dropped: whatever is published until
        # they reconnect is lost to the other worker.
        killed = await store.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        assert killed >= 2
        for round_ in range(3):
            body = f"posted on the first worker, round {round_}"
            posted = await first.post(
                "/graphql",
                json={"query": POST, "variables": {"a": demo.article_id, "b": body}},
                headers=auth,
            )
            assert posted.json()["data"]["postComment"]["errors"] == []
            status, article = await read(second, slug)
            assert status == "miss"
            assert article["comments"]["edges"][0]["node"]["body"] == body
            assert (await read(second, slug))[0] == "hit"

            traded = await second.post(
                "/graphql", json={"query": BUY, "variables": {"o": demo.outcome_id}}, headers=auth
            )
            trade = traded.json()["data"]["buyShares"]
            assert trade["errors"] == []
            assert int(traded.headers[WORKER_HEADER]) != int(posted.headers[WORKER_HEADER])
            status, article = await read(first, slug)
            assert status == "miss"
            probability = article["markets"][0]["outcomes"][0]["probability"]
            assert probability == pytest.approx(trade["trade"]["probabilityAfter"])
            assert (await read(first, slug))[0] == "hit"
    finally:
        await store.aclose()
        for http in clients.values():
            await http.aclose()
