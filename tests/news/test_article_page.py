"""The article-page query of API.md: exact values, and a fixed number of SQL statements."""

from __future__ import annotations

import math
from pathlib import Path

import clock
from db import models
from tests.conftest import GraphQLClient, SqlCounter

# API.md's query, as demo/operations holds it (a trusted document the clients ship).
ARTICLE_PAGE = (
    Path(__file__).resolve().parents[2] / "demo" / "operations" / "ArticlePage.graphql"
).read_text()

CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"


async def test_the_central_asia_article_page(client: GraphQLClient) -> None:
    data = await client.data(ARTICLE_PAGE, {"slug": CENTRAL_ASIA})
    article = data["article"]
    row = await models.Article.get(slug=CENTRAL_ASIA)
    assert article["title"] == "Central Asian Leaders Strengthen Ties as Azerbaijan Joins Forum"
    assert article["author"] == {"name": "Oliver Scott", "initials": "OS", "slug": "oliver-scott"}
    assert [c["slug"] for c in article["breadcrumb"]] == [
        "politics",
        "diplomacy",
        "bilateral-relations",
    ]
    assert [c["name"] for c in article["breadcrumb"]] == [
        "Politics",
        "Diplomacy",
        "Bilateral Relations",
    ]
    assert sorted(t["slug"] for t in article["tags"]) == [
        "azerbaijan",
        "central-asia",
        "diplomacy",
        "featured",
        "regional-integration",
    ]
    assert article["featured"] is True
    assert article["readingTimeMinutes"] == max(1, math.ceil(len(row.body.split()) / 200))
    assert len(article["markets"]) >= 1
    for market in article["markets"]:
        assert 2 <= len(market["outcomes"]) <= 10
        assert math.isclose(sum(o["probability"] for o in market["outcomes"]), 1.0)

    visible = await models.Comment.filter(article_id=row.id, deleted=False).count()
    assert article["commentCount"] == visible
    top_level = await models.Comment.filter(article_id=row.id, parent_id=None).count()
    comments = article["comments"]
    assert comments["totalCount"] == top_level
    assert comments["pageInfo"]["hasNextPage"] == (top_level > 10)
    created = [edge["node"]["createdAt"] for edge in comments["edges"]]
    assert created == sorted(created, reverse=True)
    for edge in comments["edges"]:
        node = edge["node"]
        replies = node["replies"]["nodes"]
        assert len(replies) == min(5, await _reply_rows(node["id"]))
        assert [r["createdAt"] for r in replies] == sorted(r["createdAt"] for r in replies)

    related = article["relatedArticles"]
    assert len(related) == 5
    assert CENTRAL_ASIA not in [r["slug"] for r in related]


async def _reply_rows(comment_gid: str) -> int:
    from api.core.node import from_global_id

    _, pk = from_global_id(comment_gid)
    return await models.Comment.filter(parent_id=pk).count()


# The article page is exactly these statements, on SQLite and PostgreSQL alike (the loaders run
# concurrently, so their order varies):
#   1. the article by slug
#   2. the category tree (all categories, for the breadcrumb)
#   3. the author
#   4. the tags
#   5. the first page of comments, their authors joined, the top-level comments counted in the
#      same statement (comments.totalCount)
#   6. the first replies of each comment on the page, their authors joined
#   7. the related articles (one ranked query)
#   8. the markets
#   9. their outcomes (probabilities are computed from the outcomes' shares)
# commentCount is a column of the article; hasNextPage and the cursors come from the page itself.
ARTICLE_PAGE_STATEMENTS = 9


async def test_sql_statement_count_does_not_grow_with_the_thread(client: GraphQLClient) -> None:
    # The busiest and a quiet article: the page must cost the same number of statements,
    articles = await models.Article.all().order_by("-comment_count", "id")
    busiest = articles[0]
    assert busiest.comment_count >= 60
    replies = await models.Comment.filter(article_id=busiest.id).exclude(parent_id=None).count()
    assert replies > 0
    # whatever the size of the thread. Both discuss a market (its outcomes are one query)
    with_markets = set(await models.MarketArticle.all().values_list("article_id", flat=True))
    assert busiest.id in with_markets
    # ...and a reply in the thread, so that both pages run the same queries.
    with_replies = set(
        await models.Comment.exclude(parent_id=None).values_list("article_id", flat=True)
    )
    quiet = next(
        a
        for a in reversed(articles)
        if 2 <= a.comment_count <= 4 and a.id in with_markets and a.id in with_replies
    )

    counts: list[int] = []
    statements: list[list[str]] = []
    for slug in (quiet.slug, busiest.slug):
        with SqlCounter().counting() as counter:
            data = await client.data(ARTICLE_PAGE, {"slug": slug})
        assert data["article"]["slug"] == slug
        counts.append(len(counter.statements))
        statements.append([s[:100] for s in counter.statements])
    assert counts[0] == counts[1], (counts, statements)
    assert counts[1] == ARTICLE_PAGE_STATEMENTS, (counts, statements)


async def test_an_unknown_slug_is_null(client: GraphQLClient) -> None:
    data = await client.data(ARTICLE_PAGE, {"slug": "no-such-article"})
    assert data == {"article": None}


async def test_related_articles_follow_the_rule(client: GraphQLClient) -> None:
    """Most shared tags, then same category, then newest, never itself, computed independently."""
    source = await models.Article.get(slug=CENTRAL_ASIA)
    links = await models.ArticleTag.all().values("article_id", "tag_id")
    tags: dict[int, set[int]] = {}
    for link in links:
        tags.setdefault(link["article_id"], set()).add(link["tag_id"])
    # Readers' articles only: the demo's drafts and scheduled article are never related.
    others = await models.Article.exclude(id=source.id).filter(
        state=models.ArticleState.PUBLISHED, published_at__lte=clock.now()
    )

    def key(a: models.Article) -> tuple[int, int, float, int]:
        shared = len(tags.get(a.id, set()) & tags.get(source.id, set()))
        same = 1 if a.category_id == source.category_id else 0
        return (-shared, -same, -a.published_at.timestamp(), -a.id)

    expected = [a.slug for a in sorted(others, key=key)[:20]]
    data = await client.data(
        "query($s: String!) { article(slug: $s) { relatedArticles(first: 20) { slug } } }",
        {"s": CENTRAL_ASIA},
    )
    assert [r["slug"] for r in data["article"]["relatedArticles"]] == expected

    body = await client.post(
        "query($s: String!) { article(slug: $s) { relatedArticles(first: 21) { slug } } }",
        {"s": CENTRAL_ASIA},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_one_articles_related_statement_ranks_as_the_windowed_one(
    client: GraphQLClient,
) -> None:
    # An article page asks for one article's related list (its own, cheaper statement); a list
    # of articles asks for many at once (the windowed one). Both must rank alike, every article.
    from api.news.loaders import related_articles

    ids = [a.id for a in await models.Article.all().order_by("id")]
    for size in (1, 5, 20):
        together = await related_articles(ids, size)
        for article_id in ids:
            alone = await related_articles([article_id], size)
            assert [r.id for r in alone[article_id]] == [r.id for r in together[article_id]]
            assert len(alone[article_id]) == size


async def test_reply_counts_of_a_page_are_the_databases(client: GraphQLClient) -> None:
    # Replies of many comments come from one windowed statement that counts each list too.
    replied = await models.Comment.exclude(parent_id=None).order_by("id")
    parent = await models.Comment.get(id=replied[0].parent_id)
    article = await models.Article.get(id=parent.article_id)
    data = await client.data(
        """query($s: String!) { article(slug: $s) { comments(first: 100) { nodes { id
             replies(first: 1) { totalCount pageInfo { hasNextPage } nodes { id } } } } } }""",
        {"s": article.slug},
    )
    checked = 0
    for node in data["article"]["comments"]["nodes"]:
        count = await _reply_rows(node["id"])
        replies = node["replies"]
        assert replies["totalCount"] == count
        assert replies["pageInfo"]["hasNextPage"] == (count > 1)
        assert len(replies["nodes"]) == min(1, count)
        checked += count > 1
    assert checked > 0


# The home feed of bench.article_page: the categories, the featured page, the latest page (its
# bylines joined, its totalCount counted in the same statement), the markets and their outcomes,
# the latest articles' tags.
HOME_STATEMENTS = 6


async def test_home_feed_statements_and_bylines_from_the_page(client: GraphQLClient) -> None:
    from bench.article_page import HOME

    with SqlCounter().counting() as counter:
        data = await client.data(HOME)
    assert len(counter.statements) == HOME_STATEMENTS, [s[:100] for s in counter.statements]
    assert not [s for s in counter.statements if s.startswith("SELECT * FROM authors")]
    assert not [s for s in counter.statements if s.startswith("SELECT COUNT(*)")]
    assert (
        data["latest"]["totalCount"]
        == await models.Article.filter(state="PUBLISHED", published_at__lte=clock.now()).count()
    )
    featured = data["featured"]["nodes"]
    assert featured
    for node in featured:
        article = await models.Article.get(slug=node["slug"]).prefetch_related("author")
        assert node["author"]["name"] == article.author.name
    # An author's, a tag's and a category's articles bring their bylines too.
    query = """{ tags(first: 3) { nodes { articles(first: 3) { nodes { author { slug } } } } }
                 categories { articles(first: 3) { nodes { author { slug } } } } }"""
    with SqlCounter().counting() as counter:
        data = await client.data(query)
    assert not [s for s in counter.statements if s.startswith("SELECT * FROM authors")]
    slugs = [
        node["author"]["slug"] for tag in data["tags"]["nodes"] for node in tag["articles"]["nodes"]
    ] + [node["author"]["slug"] for c in data["categories"] for node in c["articles"]["nodes"]]
    assert slugs and all(slugs)


async def test_root_total_count_the_same_however_it_is_counted(client: GraphQLClient) -> None:
    """A root list's totalCount comes from its page statement when the connection selects it,
    from a statement of its own through a fragment or after a cursor: always the whole list."""
    visible = models.Article.filter(state="PUBLISHED", published_at__lte=clock.now())
    total, featured = await visible.count(), await visible.filter(featured=True).count()
    first = await client.data("{ articles(first: 2) { pageInfo { endCursor } } }")
    after = first["articles"]["pageInfo"]["endCursor"]
    query = """query($after: String) {
      inline: articles(first: 3) { totalCount }
      none: articles(first: 0) { totalCount nodes { slug } }
      later: articles(first: 3, after: $after) { totalCount }
      spread: articles(first: 3) { ...Counted }
      featured: articles(first: 1, filter: {featured: true}) { totalCount }
    }
    fragment Counted on ArticleConnection { totalCount }"""
    with SqlCounter().counting() as counter:
        data = await client.data(query, {"after": after})
    assert data == {
        "inline": {"totalCount": total},
        "none": {"totalCount": total, "nodes": []},
        "later": {"totalCount": total},
        "spread": {"totalCount": total},
        "featured": {"totalCount": featured},
    }
    # Five pages, no count of its own: one page of each list counts it for the others (so
    # aliases of a list with different sizes cost one count, the visible and the featured one).
    assert len(counter.statements) == 5
    assert not [s for s in counter.statements if s.startswith("SELECT COUNT(*)")]
    assert len([s for s in counter.statements if "SELECT COUNT(*)" in s]) == 2
    query = """query($after: String) {
      later: articles(first: 3, after: $after) { totalCount }
      spread: articles(first: 3) { ...Counted }
    }
    fragment Counted on ArticleConnection { totalCount }"""
    with SqlCounter().counting() as counter:
        data = await client.data(query, {"after": after})
    assert data == {"later": {"totalCount": total}, "spread": {"totalCount": total}}
    assert len([s for s in counter.statements if s.startswith("SELECT COUNT(*)")]) == 1
    assert len(counter.statements) == 3
