"""The reference client (npm ``graphql-ws``) against our graphql-transport-ws server.

The app runs under a real uvicorn server on loopback; ``tests/node/graphql_ws_client.mjs``
subscribes to ``commentAdded`` and ``oddsUpdated``, posts a comment and buys shares over HTTP,
waits for both live messages, runs a query over the socket and prints what it received as one
JSON line.

Needs ``node`` and ``npm``: ``tests.nodetools`` installs the pinned client (``tests/node``) and
runs the script. Without them the test skips, unless ``AGORA_REQUIRE_SERVICES=1``, which makes
that a failure.
"""

from __future__ import annotations

import httpx

from demo.specs import CENTRAL_ASIA_SLUG
from settings import Settings
from tests.conftest import GraphQLClient
from tests.nodetools import load_demo_data, node_tools, run_node, served

COMMENT_BODY = "Checked with the reference graphql-ws client: **live** and in order."


ARTICLE = """
query($slug: String!) {
  article(slug: $slug) { id markets { id odds: outcomes { id } } }
  stats { articleCount }
}
"""


async def test_reference_graphql_ws_client_gets_live_comments_odds_and_query_results(
    fresh_settings: Settings,
) -> None:
    node = node_tools()
    comment_seq = await load_demo_data(fresh_settings)

    async with served(fresh_settings) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as http:
            alice = await GraphQLClient(http).log_in("alice")
            assert alice.token
            before = await alice.data(ARTICLE, {"slug": CENTRAL_ASIA_SLUG})
        article = before["article"]
        market = article["markets"][0]
        outcome_id = market["odds"][0]["id"]

        seen = await run_node(
            node,
            "graphql_ws_client.mjs",
            f"ws://{address}/graphql",
            alice.token,
            article["id"],
            market["id"],
            f"http://{address}/graphql",
            outcome_id,
            COMMENT_BODY,
        )

    # commentAdded: the comment just posted, with the article's next sequence.
    assert seen["posted"]["sequence"] == comment_seq + 1
    assert seen["comment"] == {
        "id": seen["posted"]["id"],
        "sequence": comment_seq + 1,
        "body": COMMENT_BODY,
        "author": {"username": "alice"},
    }
    # oddsUpdated: the odds at once (no trade), then the trade's update with the next seq.
    first, live = seen["oddsFirst"], seen["oddsLive"]
    assert first["market"] == {"id": market["id"]}
    assert first["lastTrade"] is None
    assert isinstance(first["seq"], int)
    assert live["seq"] == first["seq"] + 1
    assert live["lastTrade"] == {
        "amount": "5.00",
        "shares": seen["trade"]["shares"],
        "outcome": {"id": outcome_id},
        "user": {"username": "alice"},
    }
    assert seen["trade"]["amount"] == "5.00"
    assert [o["id"] for o in live["outcomes"]] == [o["id"] for o in market["odds"]]
    assert live["outcomes"] != first["outcomes"]  # buying moved the probabilities
    assert seen["oddsMessages"] == 2
    # A query over the socket: one `next` with the same result as over HTTP, then `complete`.
    assert seen["query"] == {"data": {"stats": before["stats"]}}
    # The protocol as the reference client saw it.
    trace = seen["trace"]
    assert trace["connected"] == {"payload": None}
    received = trace["received"]
    assert received[0] == "connection_ack"
    assert sorted({m.split(":")[0] for m in received}) == ["complete", "connection_ack", "next"]
    completed = [m.split(":", 1)[1] for m in received if m.startswith("complete:")]
    assert len(completed) == 1  # only the query: the subscriptions were ended by the client
    assert received[-2:] == [f"next:{completed[0]}", f"complete:{completed[0]}"]
    assert trace["closed"] == {"code": 1000, "reason": "Normal Closure"}
