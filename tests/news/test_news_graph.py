"""Filters, orders and derived fields of the news graph, checked against the database."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from api.accounts.types import initials
from api.news.types import reading_time
from db import models
from tests.conftest import GraphQLClient


def visible() -> Any:
    """The articles readers see (the demo's drafts and scheduled article are not), as the
    database says: published and live."""
    return models.Article.filter(
        state=models.ArticleState.PUBLISHED, published_at__lte=datetime.now(UTC)
    )


def visible_links() -> Any:
    """Tag links of the articles readers see."""
    return models.ArticleTag.filter(
        article__state=models.ArticleState.PUBLISHED, article__published_at__lte=datetime.now(UTC)
    )


ARTICLES = """
query($filter: ArticleFilter, $first: Int) {
  articles(filter: $filter, first: $first) { totalCount nodes { slug } }
}
"""


async def _slugs(client: GraphQLClient, flt: dict) -> tuple[set[str], int]:
    data = await client.data(ARTICLES, {"filter": flt, "first": 100})
    conn = data["articles"]
    return {n["slug"] for n in conn["nodes"]}, conn["totalCount"]


async def test_category_filter_covers_the_subtree(client: GraphQLClient) -> None:
    politics = await models.Category.get(slug="politics")
    subtree = await models.Category.filter(path__startswith=politics.path).values_list(
        "id", flat=True
    )
    expected = {a.slug for a in await visible().filter(category_id__in=list(subtree))}
    slugs, total = await _slugs(client, {"categorySlug": "politics"})
    assert slugs == expected and total == len(expected)
    leaf, _ = await _slugs(client, {"categorySlug": "bilateral-relations"})
    assert "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum" in leaf
    assert leaf < slugs
    assert await _slugs(client, {"categorySlug": "no-such-category"}) == (set(), 0)


async def test_tag_author_and_featured_filters(client: GraphQLClient) -> None:
    tag = await models.Tag.get(slug="azerbaijan")
    expected = {
        link.article.slug
        for link in await visible_links().filter(tag_id=tag.id).prefetch_related("article")
    }
    assert await _slugs(client, {"tagSlug": "azerbaijan"}) == (expected, len(expected))

    author = await models.Author.get(slug="oliver-scott")
    expected = {a.slug for a in await visible().filter(author_id=author.id)}
    assert await _slugs(client, {"authorSlug": "oliver-scott"}) == (expected, len(expected))

    featured = {a.slug for a in await visible().filter(featured=True)}
    assert await _slugs(client, {"featured": True}) == (featured, len(featured))
    rest, total = await _slugs(client, {"featured": False})
    assert total == 50 - len(featured) and not rest & featured

    both, _ = await _slugs(client, {"featured": True, "authorSlug": "oliver-scott"})
    assert both == featured & {a.slug for a in await visible().filter(author_id=author.id)}


async def test_search_is_case_insensitive_over_title_excerpt_and_body(
    client: GraphQLClient,
) -> None:
    slugs, _ = await _slugs(client, {"search": "AZERBAIJAN joins"})
    assert "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum" in slugs
    rows = await visible()
    word = "forum"
    expected = {a.slug for a in rows if word in (a.title + " " + a.excerpt + " " + a.body).lower()}
    assert await _slugs(client, {"search": "FoRuM"}) == (expected, len(expected))
    # LIKE wildcards are literal text.
    assert await _slugs(client, {"search": "%"}) == (
        {a.slug for a in rows if "%" in a.title + a.excerpt + a.body},
        len({a.slug for a in rows if "%" in a.title + a.excerpt + a.body}),
    )
    body = await client.post(ARTICLES, {"filter": {"search": "x" * 201}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_authors_tags_and_categories(client: GraphQLClient) -> None:
    data = await client.data(
        """{ authors(first: 100) { totalCount nodes { name initials articleCount
               user { username role } } }
             tags(first: 100) { totalCount nodes { slug articleCount } }
             categories { slug parent { slug } children { slug parent { slug }
               children { slug breadcrumb { slug } } } } }"""
    )
    authors = data["authors"]["nodes"]
    assert data["authors"]["totalCount"] == await models.Author.all().count() >= 8
    assert [a["name"] for a in authors] == sorted(a["name"] for a in authors)
    for author in authors:
        row = await models.Author.get(name=author["name"])
        assert author["articleCount"] == await visible().filter(author_id=row.id).count()
        assert author["initials"] == initials(author["name"])
    oliver = next(a for a in authors if a["name"] == "Oliver Scott")
    assert oliver["user"] == {"username": "editor", "role": "AUTHOR"}

    for tag in data["tags"]["nodes"]:
        tag_row = await models.Tag.get(slug=tag["slug"])
        assert tag["articleCount"] == await visible_links().filter(tag_id=tag_row.id).count()

    roots = data["categories"]
    assert {c["slug"] for c in roots} == {
        c.slug for c in await models.Category.filter(parent_id=None)
    }
    politics = next(c for c in roots if c["slug"] == "politics")
    assert politics["parent"] is None
    diplomacy = next(c for c in politics["children"] if c["slug"] == "diplomacy")
    assert diplomacy["parent"] == {"slug": "politics"}
    bilateral = next(c for c in diplomacy["children"] if c["slug"] == "bilateral-relations")
    assert [c["slug"] for c in bilateral["breadcrumb"]] == [
        "politics",
        "diplomacy",
        "bilateral-relations",
    ]


async def test_category_and_tag_article_lists(client: GraphQLClient) -> None:
    data = await client.data(
        """{ category(slug: "politics") { articles(first: 100) { totalCount } }
             tag(slug: "featured") { articles(first: 3) { totalCount nodes { slug } }
                                     markets { totalCount } } }"""
    )
    politics = await models.Category.get(slug="politics")
    subtree = await models.Category.filter(path__startswith=politics.path).values_list(
        "id", flat=True
    )
    assert (
        data["category"]["articles"]["totalCount"]
        == await visible().filter(category_id__in=list(subtree)).count()
    )
    tag = await models.Tag.get(slug="featured")
    assert (
        data["tag"]["articles"]["totalCount"] == await visible_links().filter(tag_id=tag.id).count()
    )
    assert (
        data["tag"]["markets"]["totalCount"] == await models.MarketTag.filter(tag_id=tag.id).count()
    )


async def test_markets_filters_orders_and_derived_fields(client: GraphQLClient) -> None:
    now = datetime.now(UTC)
    rows = await models.Market.all()
    data = await client.data(
        """{ all: markets(first: 100, orderBy: NEWEST) { totalCount nodes { slug status
               liquidity volume traderCount closesAt outcomes { label probability }
               articles { slug } tags { slug } } }
             closed: markets(filter: {status: CLOSED}) { nodes { slug status } }
             open: markets(filter: {status: OPEN}, orderBy: CLOSING_SOON) { nodes { slug } }
             trending: markets(first: 100) { nodes { slug } } }"""
    )
    nodes = data["all"]["nodes"]
    assert data["all"]["totalCount"] == len(rows) >= 10
    assert [n["slug"] for n in nodes] == [
        m.slug for m in sorted(rows, key=lambda m: (m.created_at, m.id), reverse=True)
    ]
    for node in nodes:
        row = next(m for m in rows if m.slug == node["slug"])
        assert node["liquidity"] == f"{row.liquidity_cents // 100}.{row.liquidity_cents % 100:02d}"
        assert 2 <= len(node["outcomes"]) <= 10
        assert math.isclose(sum(o["probability"] for o in node["outcomes"]), 1.0)
        assert node["articles"], "every demo market is linked to an article"
    closed = {m.slug for m in rows if m.state == "OPEN" and m.closes_at <= now}
    assert {n["slug"] for n in data["closed"]["nodes"]} == closed
    assert all(n["status"] == "CLOSED" for n in data["closed"]["nodes"])
    open_rows = sorted(
        (m for m in rows if m.state == "OPEN" and m.closes_at > now),
        key=lambda m: (m.closes_at, m.id),
    )
    assert [n["slug"] for n in data["open"]["nodes"]] == [m.slug for m in open_rows][:20]
    # No trades in the last 24 h in the demo data: TRENDING falls back to newest.
    assert [n["slug"] for n in data["trending"]["nodes"]] == [n["slug"] for n in nodes][:20]


async def test_stats_match_the_database(client: GraphQLClient) -> None:
    data = await client.data(
        "{ stats { articleCount commentCount marketCount openMarketCount traderCount volume } }"
    )
    now = datetime.now(UTC)
    markets = await models.Market.all()
    assert data["stats"] == {
        "articleCount": await visible().count(),
        "commentCount": await models.Comment.filter(
            deleted=False,
            article__state=models.ArticleState.PUBLISHED,
            article__published_at__lte=now,
        ).count(),
        "marketCount": len(markets),
        "openMarketCount": sum(1 for m in markets if m.state == "OPEN" and m.closes_at > now),
        "traderCount": len(set(await models.Trade.all().values_list("user_id", flat=True))),
        "volume": money_text(sum(m.volume_cents for m in markets)),
    }


async def test_comment_fields_and_deleted_comments(client: GraphQLClient) -> None:
    deleted = await models.Comment.filter(deleted=True).first()
    assert deleted is not None, "the demo data has a deleted comment"
    from api.core.node import to_global_id

    data = await client.data(
        """query($id: ID!) { node(id: $id) { ... on Comment { body bodyHtml deleted sequence
             viewerCanEdit viewerCanDelete article { slug } author { username } } } }""",
        {"id": to_global_id("Comment", deleted.id)},
    )
    article = await models.Article.get(id=deleted.article_id)
    author = await models.User.get(id=deleted.author_id)
    assert data["node"] == {
        "body": "",
        "bodyHtml": "",
        "deleted": True,
        "sequence": deleted.sequence,
        "viewerCanEdit": False,
        "viewerCanDelete": False,
        "article": {"slug": article.slug},
        "author": {"username": author.username},
    }


def money_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def test_derived_field_rules() -> None:
    assert initials("Oliver Scott") == "OS"
    assert initials("Jean-Luc Picard") == "JP"
    assert initials("Plato") == "P"
    assert initials("  ") == ""
    assert reading_time(0) == 1
    assert reading_time(200) == 1
    assert reading_time(201) == 2
