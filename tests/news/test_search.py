"""Full-text search over HTTP on both databases: relevance, stemming, Unicode, the websearch
syntax, snippets, paging, the filters that use the same index, refusals; and that the index is
what the database uses (EXPLAIN)."""

from __future__ import annotations

from typing import Any

import pytest

from db.sql import fetch_dicts, is_postgres
from tests.conftest import GraphQLClient
from tests.news.test_newsroom import CREATE, PUBLISH, ok

SEARCH = """query($q: String!, $first: Int, $after: String, $types: [SearchType!]) {
  search(query: $q, first: $first, after: $after, types: $types) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { rank snippet node { __typename
      ... on Article { slug title } ... on Market { slug question } } } }
  }
}"""

# Written for these tests (published by the editor): (title, excerpt, body).
ARTICLES = {
    "lemons": (
        "A Market for Lemons Returns to the Bazaar",
        "Traders in Samarkand argue over quality.",
        "Buyers can't tell good fruit from bad. <script>alert(1)</script> Prices fall.",
    ),
    "tashkent": (
        "Summit Notes From the Capital",
        "A diary of the forum's second day.",
        "Delegates met in Ташкент to discuss water and transit corridors along the river.",
    ),
    "zurich": (
        "Bankers Gather Quietly",
        "Private talks on reserves.",
        "The meeting in Zürich ended without a communiqué on exchange rates.",
    ),
    "customs": (
        "Ports Agree on a Single Customs Code",
        "Five ports, one code.",
        "The single customs code covers transit cargo and inspections.",
    ),
    "customs-body": (
        "Inspections Slow at the Border",
        "Queues grow.",
        "Officials blame paperwork; a customs code is still being drafted by ministers.",
    ),
}


async def _publish_all(client: GraphQLClient) -> dict[str, str]:
    editor = await client.log_in("editor")
    slugs: dict[str, str] = {}
    for key, (title, excerpt, body) in ARTICLES.items():
        draft = ok(
            (
                await editor.data(
                    CREATE,
                    {
                        "input": {
                            "title": title,
                            "excerpt": excerpt,
                            "body": body,
                            "categorySlug": "politics",
                        }
                    },
                )
            )["createArticle"]
        )
        live = ok(
            (await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"]
        )
        slugs[key] = live["slug"]
    return slugs


async def _search(client: GraphQLClient, query: str, **variables: Any) -> dict[str, Any]:
    data = await client.data(SEARCH, {"q": query, **variables})
    result: dict[str, Any] = data["search"]
    return result


def _slugs(result: dict[str, Any]) -> list[str]:
    return [edge["node"]["node"]["slug"] for edge in result["edges"]]


async def test_relevance_stemming_unicode_and_the_query_syntax(demo_client: GraphQLClient) -> None:
    slugs = await _publish_all(demo_client)
    # Which article ranks first, for a reader's query.
    table = [
        ("customs code", slugs["customs"]),  # in the title beats in the body
        ("markets lemons", slugs["lemons"]),  # "markets" finds "Market" (stemmed)
        ("Ташкент", slugs["tashkent"]),  # Cyrillic, matched as a word
        ("ТАШКЕНТ", slugs["tashkent"]),  # case-folded beyond ASCII
        ("Zürich", slugs["zurich"]),
        ('"single customs code"', slugs["customs"]),  # a phrase
    ]
    for query, first in table:
        found = _slugs(await _search(demo_client, query))
        assert found and found[0] == first, (query, found)
    ranked = await _search(demo_client, "customs code")
    assert _slugs(ranked)[:2] == [slugs["customs"], slugs["customs-body"]]
    ranks = [edge["node"]["rank"] for edge in ranked["edges"]]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[1]
    # A phrase in the wrong order, an excluded word, OR.
    assert slugs["customs"] not in _slugs(await _search(demo_client, '"code customs single"'))
    excluded = _slugs(await _search(demo_client, "customs -inspections"))
    assert slugs["customs"] not in excluded and slugs["customs-body"] not in excluded
    either = set(_slugs(await _search(demo_client, "lemons OR Ташкент")))
    assert {slugs["lemons"], slugs["tashkent"]} <= either
    both = set(_slugs(await _search(demo_client, "lemons Ташкент")))
    assert both == set()
    # What parses to nothing finds nothing (on both databases alike).
    for query in ("", "   ", "!!!", "-customs", '""'):
        assert await _search(demo_client, query) == {
            "totalCount": 0,
            "pageInfo": {"hasNextPage": False, "endCursor": None},
            "edges": [],
        }, query


async def test_drafts_are_never_found_and_snippets_are_escaped(demo_client: GraphQLClient) -> None:
    slugs = await _publish_all(demo_client)
    editor = await demo_client.log_in("editor")
    # The demo's draft "Caspian Ministers Draft a Common Customs Code": found by nobody, not even
    # its author (search is what readers see).
    for client in (demo_client, editor):
        found = _slugs(await _search(client, "customs ministers"))
        assert found[0] == slugs["customs-body"], found
        assert not any(s.startswith("draft-") or "caspian-ministers" in s for s in found), found
    [hit] = [
        e["node"]
        for e in (await _search(demo_client, "fruit"))["edges"]
        if e["node"]["node"]["slug"] == slugs["lemons"]
    ]
    snippet = hit["snippet"]
    assert "<mark>fruit</mark>" in snippet
    assert "<script>" not in snippet and "alert(1)" in snippet
    # SQLite's snippet keeps the text as written (escaped here); PostgreSQL's ts_headline reads
    # "<script>" as a tag and leaves it out.
    assert ("&lt;script&gt;" in snippet) != is_postgres()
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0


async def test_markets_types_and_paging(demo_client: GraphQLClient) -> None:
    await _publish_all(demo_client)
    both = await _search(demo_client, "transit")
    kinds = {e["node"]["node"]["__typename"] for e in both["edges"]}
    assert kinds == {"Article", "Market"}
    markets = await _search(demo_client, "transit", types=["MARKET"])
    assert {e["node"]["node"]["__typename"] for e in markets["edges"]} == {"Market"}
    assert any("transit" in e["node"]["node"]["question"].lower() for e in markets["edges"])
    articles = await _search(demo_client, "transit", types=["ARTICLE", "ARTICLE"])
    assert {e["node"]["node"]["__typename"] for e in articles["edges"]} == {"Article"}
    assert articles["totalCount"] + markets["totalCount"] == both["totalCount"]
    # Paging one at a time visits every hit once, in the first page's order.
    seen: list[tuple[str, str]] = []
    after = None
    for _ in range(100):
        page = await _search(demo_client, "transit", first=1, after=after)
        assert page["totalCount"] == both["totalCount"]
        seen += [
            (e["node"]["node"]["__typename"], e["node"]["node"]["slug"]) for e in page["edges"]
        ]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    full = await _search(demo_client, "transit", first=100)
    assert seen == [
        (e["node"]["node"]["__typename"], e["node"]["node"]["slug"]) for e in full["edges"]
    ]
    assert len(seen) == both["totalCount"]


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"q": "x" * 201}, "BAD_USER_INPUT"),
        ({"q": "a\x00b"}, "BAD_USER_INPUT"),
        ({"q": "transit", "first": 101}, "BAD_USER_INPUT"),
        ({"q": "transit", "first": -1}, "BAD_USER_INPUT"),
        ({"q": "transit", "after": "bm90LWEtY3Vyc29y"}, "BAD_USER_INPUT"),
        ({"q": "transit", "types": ["BOOK"]}, "BAD_USER_INPUT"),
    ],
    ids=["long", "nul", "first-101", "first-negative", "cursor", "type"],
)
async def test_bad_searches_are_refused(
    client: GraphQLClient, variables: dict[str, Any], code: str
) -> None:
    body = await client.post(SEARCH, variables)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body


async def test_the_list_filters_use_the_index_ordered_by_relevance(
    demo_client: GraphQLClient,
) -> None:
    slugs = await _publish_all(demo_client)
    query = """query($s: String!, $o: ArticleOrder) {
      articles(filter: {search: $s}, orderBy: $o, first: 50) { totalCount nodes { slug } }
    }"""
    relevant = (await demo_client.data(query, {"s": "customs code"}))["articles"]
    assert [n["slug"] for n in relevant["nodes"]][:2] == [slugs["customs"], slugs["customs-body"]]
    newest = (await demo_client.data(query, {"s": "customs code", "o": "NEWEST"}))["articles"]
    assert [n["slug"] for n in newest["nodes"]][:2] == [slugs["customs-body"], slugs["customs"]]
    assert relevant["totalCount"] == newest["totalCount"]
    # Stemmed there too; and the markets' filter.
    stemmed = (await demo_client.data(query, {"s": "markets"}))["articles"]
    assert slugs["lemons"] in {n["slug"] for n in stemmed["nodes"]}
    markets = await demo_client.data(
        '{ markets(filter: {search: "transit"}) { totalCount nodes { question description } } }'
    )
    assert markets["markets"]["totalCount"] >= 1
    assert all(
        "transit" in (n["question"] + n["description"]).lower() for n in markets["markets"]["nodes"]
    )


async def test_the_index_is_what_the_database_uses(fresh_client: GraphQLClient) -> None:
    """On enough rows, after ANALYZE: the FTS5 table on SQLite, the GIN index on PostgreSQL."""
    if is_postgres():
        await fetch_dicts(
            "INSERT INTO users (username, display_name, password_hash, role, created_at) "
            "VALUES ('w', 'W', '', 'AUTHOR', now())"
        )
        await fetch_dicts("INSERT INTO authors (slug, name) VALUES ('w', 'W')")
        await fetch_dicts(
            "INSERT INTO categories (slug, name, path, depth, position) VALUES ('c', 'C', '/1/', 0, 0)"
        )
        await fetch_dicts(
            "INSERT INTO articles (slug, title, excerpt, body, word_count, published_at, "
            "updated_at, featured, comment_count, comment_seq, author_id, category_id, state) "
            "SELECT 's' || g, 'Title ' || g, 'Excerpt', 'Body text number ' || g || "
            "CASE WHEN g % 2000 = 0 THEN ' lemons' ELSE '' END, 4, now(), now(), false, 0, 0, "
            "1, 1, 'PUBLISHED' FROM generate_series(1, 20000) g"
        )
        # The GIN index's pending list merged, its statistics fresh.
        await fetch_dicts("VACUUM ANALYZE article_search")
        plan = await fetch_dicts(
            "EXPLAIN SELECT article_id FROM article_search "
            "WHERE document @@ websearch_to_tsquery('agora_search', 'lemons')"
        )
        text = "\n".join(str(next(iter(row.values()))) for row in plan)
        assert "article_search_document" in text and "Seq Scan" not in text, text
    else:
        plan = await fetch_dicts(
            "EXPLAIN QUERY PLAN SELECT rowid FROM article_search WHERE article_search MATCH ?",
            ['"lemons"'],
        )
        text = "\n".join(str(row.get("detail")) for row in plan)
        assert "VIRTUAL TABLE INDEX" in text, text
    # The reader's field goes through the same engine.
    data = await fresh_client.data('{ search(query: "lemons", first: 5) { totalCount } }')
    assert data["search"]["totalCount"] == (10 if is_postgres() else 0)
