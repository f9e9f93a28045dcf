"""Public profiles over HTTP: ``user(username:)``, ``User.comments``, ``User.profit`` and
``User.rank`` (the leaderboard's own ranking), on both databases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from api.core.node import to_global_id
from db import models
from tests.conftest import FakeClock, GraphQLClient, SqlCounter

CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"

PROFILE = """query($u: String!, $n: Int, $after: String) { user(username: $u) {
  id username displayName rank profit
  comments(first: $n, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id body deleted article { slug } parent { id } } }
  }
} }"""

POST = """mutation($a: ID!, $b: String!, $p: ID) {
  postComment(input: {articleId: $a, body: $b, parentId: $p}) { comment { id } errors { code } } }"""

BUY = """mutation($o: ID!, $x: Decimal!) { buyShares(input: {outcomeId: $o, amount: $x}) {
  trade { id } errors { code } } }"""


async def post(
    gql: GraphQLClient, article: models.Article, body: str, parent: str | None = None
) -> str:
    data = await gql.data(POST, {"a": to_global_id("Article", article.id), "b": body, "p": parent})
    assert data["postComment"]["errors"] == [], data
    comment_id: str = data["postComment"]["comment"]["id"]
    return comment_id


async def profile(gql: GraphQLClient, username: str, n: int = 20, after: str | None = None) -> Any:
    return (await gql.data(PROFILE, {"u": username, "n": n, "after": after}))["user"]


async def test_a_profile_is_found_by_username_whatever_its_case(client: GraphQLClient) -> None:
    alice = await models.User.get(username="alice")
    found = (await client.data('{ user(username: "  Alice ") { id username displayName role } }'))[
        "user"
    ]
    assert found == {
        "id": to_global_id("User", alice.id),
        "username": "alice",
        "displayName": alice.display_name,
        "role": "READER",
    }
    by_node = await client.data(
        "query($id: ID!) { node(id: $id) { ... on User { id username displayName role } } }",
        {"id": found["id"]},
    )
    assert by_node["node"] == found
    # Unknown, empty and longer than any username: null, no error.
    for name in ("nobody_at_all", "", " ", "a" * 33, "a" * 5000):
        body = await client.post("query($u: String!) { user(username: $u) { id } }", {"u": name})
        assert body == {"data": {"user": None}}, name


async def test_a_profile_keeps_the_balance_private(client: GraphQLClient) -> None:
    query = '{ user(username: "alice") { username balance } }'
    anonymous = await client.post(query)
    assert anonymous["data"] == {"user": {"username": "alice", "balance": None}}
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    bob = await client.log_in("bob")
    other = await bob.post(query)
    assert other["data"]["user"] == {"username": "alice", "balance": None}
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    alice = await client.log_in("alice")
    own = await alice.data(query)
    me = await alice.data("{ me { balance } }")
    assert own["user"]["balance"] == me["me"]["balance"]
    assert Decimal(own["user"]["balance"]) >= 0


async def test_profile_comments_are_the_visible_ones_newest_first(
    demo_client: GraphQLClient, clock: FakeClock
) -> None:
    carol = await demo_client.sign_up("carol_profile")
    central = await models.Article.get(slug=CENTRAL_ASIA)
    other = (
        await models.Article.filter(state=models.ArticleState.PUBLISHED)
        .exclude(id=central.id)
        .order_by("id")
        .first()
    )
    assert other is not None
    written: list[str] = []
    for i in range(3):
        written.append(await post(carol, central, f"carol on central asia {i}"))
        clock.advance(120)
    reply_to = written[0]
    written.append(await post(carol, central, "carol replying to herself", reply_to))
    clock.advance(120)
    on_other = await post(carol, other, "carol elsewhere")
    written.append(on_other)
    clock.advance(120)
    deleted = written.pop(1)
    removed = await carol.data(
        "mutation($c: ID!) { deleteComment(input: {commentId: $c}) { errors { code } } }",
        {"c": deleted},
    )
    assert removed["deleteComment"]["errors"] == []

    whole = (await profile(demo_client, "carol_profile"))["comments"]
    assert whole["totalCount"] == 4
    nodes = [edge["node"] for edge in whole["edges"]]
    assert [n["id"] for n in nodes] == written[::-1]
    assert [n["body"] for n in nodes] == [
        "carol elsewhere",
        "carol replying to herself",
        "carol on central asia 2",
        "carol on central asia 0",
    ]
    assert [n["article"]["slug"] for n in nodes] == [other.slug] + [CENTRAL_ASIA] * 3
    assert nodes[1]["parent"] == {"id": reply_to}
    assert not any(n["deleted"] for n in nodes)
    assert whole["pageInfo"]["hasNextPage"] is False

    # Keyset pages: no repeat, no gap, the same order.
    first = (await profile(demo_client, "carol_profile", 3))["comments"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await profile(demo_client, "carol_profile", 3, first["pageInfo"]["endCursor"]))[
        "comments"
    ]
    assert [e["node"]["id"] for e in first["edges"] + rest["edges"]] == written[::-1]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["totalCount"] == 4

    # An article readers can no longer see takes its comments off the profile.
    admin = await demo_client.log_in("admin")
    unpublished = await admin.data(
        "mutation($a: ID!) { unpublishArticle(input: {articleId: $a}) { errors { code } } }",
        {"a": to_global_id("Article", other.id)},
    )
    assert unpublished["unpublishArticle"]["errors"] == []
    after = (await profile(demo_client, "carol_profile"))["comments"]
    assert after["totalCount"] == 3
    assert [e["node"]["id"] for e in after["edges"]] == written[:3][::-1]
    # A bad cursor is a clear error.
    body = await demo_client.post(PROFILE, {"u": "carol_profile", "n": 2, "after": "not-a-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # And `first` beyond the page limit is refused, never clamped.
    body = await demo_client.post(PROFILE, {"u": "carol_profile", "n": 101})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_rank_and_profit_are_the_leaderboards(demo_client: GraphQLClient) -> None:
    board_query = """{ leaderboard(first: 100) { rank profit user { username rank profit
                         positions(first: 100) { nodes { profit value costBasis } } } } }"""
    board = (await demo_client.data(board_query))["leaderboard"]
    assert len(board) >= 2
    for entry in board:
        assert entry["user"]["rank"] == entry["rank"]
        assert entry["user"]["profit"] == entry["profit"]
        positions = entry["user"]["positions"]["nodes"]
        assert sum(Decimal(p["profit"]) for p in positions) == Decimal(entry["profit"])

    dave = await demo_client.sign_up("dave_profile")
    fresh = await profile(demo_client, "dave_profile")
    assert (fresh["rank"], fresh["profit"]) == (None, "0.00")
    assert fresh["comments"] == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }

    market = await models.Market.filter(state=models.MarketState.OPEN).order_by("id").first()
    assert market is not None
    outcome = await models.Outcome.get(market_id=market.id, position=0)
    bought = await dave.data(BUY, {"o": to_global_id("Outcome", outcome.id), "x": "100.00"})
    assert bought["buyShares"]["errors"] == []

    traded = await profile(demo_client, "dave_profile")
    board = (await demo_client.data(board_query))["leaderboard"]
    mine = [e for e in board if e["user"]["username"] == "dave_profile"]
    assert len(mine) == 1
    assert traded["rank"] == mine[0]["rank"] == mine[0]["user"]["rank"]
    assert traded["profit"] == mine[0]["profit"]
    position = mine[0]["user"]["positions"]["nodes"]
    assert Decimal(traded["profit"]) == sum(Decimal(p["profit"]) for p in position)
    # Marked at the price after the purchase: value − the 100.00 paid.
    assert [(p["costBasis"], Decimal(p["profit"])) for p in position] == [
        ("100.00", Decimal(p["value"]) - 100) for p in position
    ]
    # The ranks are the board's places: 1, 2, 3… with no gap.
    assert [e["rank"] for e in board] == list(range(1, len(board) + 1))


async def test_profile_statements_do_not_grow_with_the_list(client: GraphQLClient) -> None:
    query = """query($n: Int!) { leaderboard(first: $n) { rank user { username rank profit
                 comments(first: 3) { totalCount nodes { body article { slug } } } } } }"""
    counts = []
    for n in (2, 8):
        with SqlCounter().counting() as counter:
            data = await client.data(query, {"n": n})
        assert len(data["leaderboard"]) == n
        counts.append(len(counter.statements))
    assert counts[0] == counts[1], counts

    # The leaderboard and every rank and profit of a response share one ranking: its positions
    # are read once, however many profiles ask.
    for query in (
        "{ leaderboard(first: 5) { rank } }",
        """{ leaderboard(first: 5) { rank user { rank profit } }
             a: user(username: "alice") { rank profit } b: user(username: "bob") { rank } }""",
    ):
        with SqlCounter().counting() as counter:
            await client.data(query)
        reads = [s for s in counter.statements if "FROM positions" in s]
        assert len(reads) == 1, counter.statements
