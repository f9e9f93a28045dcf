"""Relay keyset connections: complete, stable under inserts, strict about arguments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db import models
from tests.conftest import GraphQLClient, readers_articles

PAGE = """
query($first: Int, $after: String, $last: Int, $before: String, $order: ArticleOrder) {
  articles(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
    totalCount
    edges { cursor node { slug } }
    nodes { slug }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _walk(client: GraphQLClient, order: str, size: int) -> tuple[list[str], int]:
    slugs: list[str] = []
    after = None
    total = -1
    for _ in range(100):
        data = await client.data(PAGE, {"first": size, "after": after, "order": order})
        conn = data["articles"]
        total = conn["totalCount"]
        assert [e["node"]["slug"] for e in conn["edges"]] == [n["slug"] for n in conn["nodes"]]
        assert len(conn["edges"]) <= size
        slugs.extend(n["slug"] for n in conn["nodes"])
        if conn["edges"]:
            assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
            assert conn["pageInfo"]["startCursor"] == conn["edges"][0]["cursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            return slugs, total
        after = conn["pageInfo"]["endCursor"]
    raise AssertionError("paging never ended")


@pytest.mark.parametrize("order", ["NEWEST", "OLDEST", "MOST_COMMENTED"])
async def test_paging_seven_at_a_time_visits_every_article_once(
    client: GraphQLClient, order: str
) -> None:
    slugs, total = await _walk(client, order, 7)
    assert total == await readers_articles().count() == 50
    assert len(slugs) == len(set(slugs)) == total
    rows = await readers_articles()
    if order == "NEWEST":
        expected = sorted(rows, key=lambda a: (a.published_at, a.id), reverse=True)
    elif order == "OLDEST":
        expected = sorted(rows, key=lambda a: (a.published_at, a.id))
    else:
        expected = sorted(rows, key=lambda a: (a.comment_count, a.published_at, a.id), reverse=True)
    assert slugs == [a.slug for a in expected]


async def test_paging_backward_mirrors_paging_forward(client: GraphQLClient) -> None:
    forward, _ = await _walk(client, "NEWEST", 50)
    backward: list[str] = []
    before = None
    while True:
        data = await client.data(PAGE, {"last": 9, "before": before})
        conn = data["articles"]
        backward = [n["slug"] for n in conn["nodes"]] + backward
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert backward == forward


async def test_first_zero_is_an_empty_page_that_knows_more_exist(client: GraphQLClient) -> None:
    data = await client.data(PAGE, {"first": 0})
    conn = data["articles"]
    assert conn["edges"] == [] and conn["nodes"] == []
    assert conn["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }
    assert conn["totalCount"] == 50


async def test_default_page_size_is_20(client: GraphQLClient) -> None:
    data = await client.data(PAGE, {})
    assert len(data["articles"]["nodes"]) == 20


@pytest.mark.parametrize(
    "variables",
    [
        {"first": 1000},
        {"first": 101},
        {"first": -1},
        {"last": 101},
        {"first": 5, "last": 5},
        {"after": "not-a-cursor"},
        {"after": "W10"},  # base64 of "[]"
        {"first": 5, "before": "x"},
    ],
)
async def test_bad_paging_arguments_are_bad_user_input(
    client: GraphQLClient, variables: dict[str, Any]
) -> None:
    body = await client.post(PAGE, variables)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


async def test_a_cursor_of_another_order_is_refused(client: GraphQLClient) -> None:
    data = await client.data(PAGE, {"first": 1, "order": "OLDEST"})
    cursor = data["articles"]["pageInfo"]["endCursor"]
    body = await client.post(PAGE, {"first": 1, "after": cursor, "order": "NEWEST"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in body["errors"][0]["message"]


async def test_inserts_while_paging_neither_repeat_nor_skip(
    fresh_client: GraphQLClient,
) -> None:
    """NEWEST paging over a list that grows at the top and the bottom between pages."""
    author = await models.Author.create(slug="a", name="A Writer")
    category = await models.Category.create(slug="c", name="C", path="/", depth=0)
    category.path = f"/{category.id}/"
    await category.save()
    base = datetime(2026, 1, 1, tzinfo=UTC)

    async def add(i: int, at: datetime) -> None:
        await models.Article.create(
            slug=f"art-{i}",
            title=f"Article {i}",
            excerpt="x",
            body="words",
            word_count=1,
            published_at=at,
            updated_at=at,
            author=author,
            category=category,
        )

    for i in range(30):
        # Pairs share a timestamp so the id tie-break is exercised too.
        await add(i, base + timedelta(hours=i // 2))
    seen: list[str] = []
    after = None
    extra = 100
    while True:
        data = await fresh_client.data(PAGE, {"first": 4, "after": after})
        conn = data["articles"]
        seen.extend(n["slug"] for n in conn["nodes"])
        # A newer article (before the cursor) must not appear; an older one (after it) must.
        await add(extra, base + timedelta(days=10))
        await add(extra + 1, base - timedelta(days=10 + extra))
        extra += 2
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    originals = [f"art-{i}" for i in reversed(range(30))]
    # Within a timestamp pair, the higher id comes first (NEWEST is published_at, id DESC).
    assert [s for s in seen if s in set(originals)] == originals
    assert len(seen) == len(set(seen))
    new_top = {s for s in seen if int(s.split("-")[1]) >= 100 and int(s.split("-")[1]) % 2 == 0}
    assert new_top == set()
    older = [s for s in seen if int(s.split("-")[1]) >= 100]
    assert older, "rows added below the cursor are reached"


CHILD_COUNTS = """
query($slug: String!, $first: Int, $last: Int) {
  article(slug: $slug) {
    commentCount
    comments(first: $first, last: $last) {
      totalCount
      nodes { replies(first: $first, last: $last) { totalCount } }
    }
  }
}
"""


@pytest.mark.parametrize("size", ["first", "last"])
async def test_a_zero_page_of_a_parents_list_still_counts_it(
    client: GraphQLClient, size: str
) -> None:
    """``first: 0`` is the "just count" idiom: the per-parent windowed page must count the whole
    list though it keeps no row (its count rides on the rows it trims)."""
    slug = "polls-tighten-ahead-of-presidential-run-off"
    full = await client.data(CHILD_COUNTS, {"slug": slug, "first": 100})
    top_level = full["article"]["comments"]["totalCount"]
    assert top_level > 0
    zero = await client.data(CHILD_COUNTS, {"slug": slug, size: 0})
    assert zero["article"]["comments"] == {"totalCount": top_level, "nodes": []}
    replies = await client.data(
        """query($slug: String!) { article(slug: $slug) { comments(first: 100) {
             nodes { replies(first: 0) { totalCount } } } } }""",
        {"slug": slug},
    )
    assert [n["replies"]["totalCount"] for n in replies["article"]["comments"]["nodes"]] == [
        n["replies"]["totalCount"] for n in full["article"]["comments"]["nodes"]
    ]
    assert sum(n["replies"]["totalCount"] for n in full["article"]["comments"]["nodes"]) > 0


def test_specs_hash_once_and_compare_by_value() -> None:
    from api.core.pagination import Ordering, SortKey

    a = Ordering("n", (SortKey("x", "int", True),))
    b = Ordering("n", (SortKey("x", "int", True),))
    c = Ordering("n", (SortKey("x", "int", False),))
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert a != c and hash(a) != hash(c)
    assert a.__dict__["_hash"] == hash(a)  # kept after the first hash


@pytest.mark.parametrize("order", ["NEWEST", "OLDEST", "TOP"])
async def test_one_parents_page_is_the_windowed_pages_own(
    client: GraphQLClient, order: str
) -> None:
    # One parent's page (an article's comments) has its own statement, ORDER BY … LIMIT; many
    # parents share a windowed one. Same rows, sort values, count and neighbours for each.
    from api.comments.lists import COMMENT_ORDERS, TOP_LEVEL_COMMENTS
    from api.core.pagination import PageRequest, fetch_pages

    ordering = COMMENT_ORDERS[order]
    ids = [a.id for a in await models.Article.all().order_by("id")]
    for size in (0, 1, 3, 10):
        request = PageRequest(size)
        together = await fetch_pages(TOP_LEVEL_COMMENTS, ordering, request, ids)
        for article_id in ids:
            alone = (await fetch_pages(TOP_LEVEL_COMMENTS, ordering, request, [article_id]))[
                article_id
            ]
            other = together[article_id]
            # And both count what the database holds, independently.
            top_level = await models.Comment.filter(article_id=article_id, parent_id=None)
            assert other.total == len(top_level)
            assert [r.id for r in other.rows] == [
                c.id for c in sorted(top_level, key=_order_key(order))[:size]
            ]
            assert [r.id for r in alone.rows] == [r.id for r in other.rows]
            assert alone.sort_values == other.sort_values
            assert (alone.total, alone.has_next, alone.has_previous) == (
                other.total,
                other.has_next,
                other.has_previous,
            )
            assert [r.pk for r in alone.related["user_by_id"]] == [
                r.pk for r in other.related["user_by_id"]
            ]


def _order_key(order: str) -> Any:
    if order == "NEWEST":
        return lambda c: (-c.created_at.timestamp(), -c.id)
    if order == "OLDEST":
        return lambda c: (c.created_at.timestamp(), c.id)
    return lambda c: (-c.reply_count, -c.created_at.timestamp(), -c.id)
