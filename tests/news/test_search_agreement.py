"""Search reads a query the same way on both databases (websearch_to_tsquery's syntax, no stop
words, accents folded), whatever the reader types; its cursors belong to one connection; a
snippet is balanced whatever the stored text holds; migration 0008 rebuilds the documents of a
populated database. Also: bylines with only drafts, and a comment event after its article was
archived."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate

from api.comments.subscriptions import COMMENT_ADDED
from api.core.node import from_global_id, to_global_id
from api.loaders import Loaders
from api.search.types import marked
from db import models
from db.config import tortoise_config
from db.migrate import apply_migrations
from db.sql import fetch_dicts, is_postgres
from tests.conftest import GraphQLClient, _client_for, new_database, suite_settings
from tests.news.test_newsroom import ARCHIVE, CREATE, PUBLISH, ok

SEARCH = """query($q: String!, $after: String) {
  search(query: $q, first: 100, after: $after, types: [ARTICLE]) {
    totalCount pageInfo { endCursor }
    edges { node { snippet node { ... on Article { slug } } } } } }"""
LIST = """query($q: String!, $after: String) {
  articles(filter: {search: $q}, first: 100, after: $after) {
    totalCount pageInfo { endCursor } nodes { slug } } }"""

# (title, body), published by the editor for these tests.
ARTICLES = {
    "t": ("Trade deal signed", "Ministers signed the trade deal."),
    "m": ("Market opens early", "Stalls opened before dawn."),
    "b": ("Market and trade", "A market near a trade hub."),
    "z": ("Bankers meet in Zürich", "Talks at a café ended late."),
    "w": ("Why rain falls", "Clouds, mostly."),
}

# A query → which of ARTICLES it finds, the same on SQLite and PostgreSQL.
AGREEMENT = [
    ("the", {"t"}),  # no stop words on either
    ("and", {"b"}),
    ("market or trade", {"t", "m", "b"}),  # "or" in any case is OR, as websearch_to_tsquery
    ("market OR trade", {"t", "m", "b"}),
    ("Zurich", {"z"}),  # accents folded on both
    ("Zürich", {"z"}),
    ("ZURICH", {"z"}),
    ("cafe", {"z"}),
    ("café", {"z"}),
    ("-trade", set()),  # only exclusions: nothing, on both
    ("- trade", set()),  # a lone "-" excludes the next word, as websearch_to_tsquery
    ('-"trade"', set()),
    ('"trade deal"', {"t"}),
    ("trade-deal", {"t"}),  # a hyphenated word is its parts, on both
    ('"deal trade"', set()),
    ("market -trade", {"m"}),
    ("trade - market", {"t"}),
    ("trade --market", {"b"}),  # two "-" cancel, as websearch_to_tsquery
    ("NEAR(trade market)", {"b"}),  # "near", "trade" and "market": no FTS5 syntax
    ("markets", {"m", "b"}),  # stemmed
    ("why?", {"w"}),
    ("trade OR -market", {"t", "b"}),  # an alternative of only exclusions finds nothing
]


async def _publish(client: GraphQLClient) -> dict[str, str]:
    editor = await client.log_in("editor")
    slugs: dict[str, str] = {}
    for key, (title, body) in ARTICLES.items():
        draft = ok(
            (
                await editor.data(
                    CREATE, {"input": {"title": title, "body": body, "categorySlug": "politics"}}
                )
            )["createArticle"]
        )
        live = ok(
            (await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"]
        )
        slugs[live["slug"]] = key
    return slugs


async def test_the_same_query_finds_the_same_articles_on_both_databases(
    demo_client: GraphQLClient,
) -> None:
    ours = await _publish(demo_client)
    for query, expected in AGREEMENT:
        root = (await demo_client.data(SEARCH, {"q": query}))["search"]
        listed = (await demo_client.data(LIST, {"q": query}))["articles"]
        found_root = {
            ours[e["node"]["node"]["slug"]]
            for e in root["edges"]
            if e["node"]["node"]["slug"] in ours
        }
        found_list = {ours[n["slug"]] for n in listed["nodes"] if n["slug"] in ours}
        assert found_root == expected, (query, found_root)
        assert found_list == expected, (query, found_list)
        assert root["totalCount"] == listed["totalCount"], query
        if not expected and query.lstrip().startswith("-"):
            assert root["totalCount"] == listed["totalCount"] == 0, query


# Reader text that is SQL to somebody: PostgreSQL's parameters, quotes, backslashes.
AWKWARD = ["why?", "$1", "$1 trade", "trade?", "'", "trade'", "it's", "\\", "trade \\", "?$2'\\"]


@pytest.mark.parametrize("query", AWKWARD)
async def test_reader_text_is_never_sql_in_the_relevance_order(
    demo_client: GraphQLClient, query: str
) -> None:
    ours = await _publish(demo_client)
    root = (await demo_client.data(SEARCH, {"q": query}))["search"]
    # The list's relevance order, and its keyset on the next page, inline the query.
    page = """query($q: String!, $after: String) {
      articles(filter: {search: $q}, first: 1, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } nodes { slug } }
      markets(filter: {search: $q}, first: 1) { totalCount } }"""
    first = await demo_client.data(page, {"q": query})
    assert first["articles"]["totalCount"] == root["totalCount"]
    listed = [n["slug"] for n in first["articles"]["nodes"]]
    after = first["articles"]["pageInfo"]["endCursor"]
    while first["articles"]["pageInfo"]["hasNextPage"]:
        first = await demo_client.data(page, {"q": query, "after": after})
        listed += [n["slug"] for n in first["articles"]["nodes"]]
        after = first["articles"]["pageInfo"]["endCursor"]
    assert sorted(listed) == sorted(e["node"]["node"]["slug"] for e in root["edges"])
    expected = {"why?": {"w"}, "trade?": {"t", "b"}, "$1 trade": set(), "trade \\": {"t", "b"}}
    if query in expected:
        assert {ours[s] for s in listed if s in ours} == expected[query], query


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def test_search_cursors_belong_to_their_connection(client: GraphQLClient) -> None:
    search_cursor = (await client.data(SEARCH, {"q": "trade"}))["search"]["pageInfo"]["endCursor"]
    list_cursor = (await client.data(LIST, {"q": "trade"}))["articles"]["pageInfo"]["endCursor"]
    markets = """query($q: String!, $after: String) {
      markets(filter: {search: $q}, first: 1, after: $after) { pageInfo { endCursor } } }"""
    market_cursor = (await client.data(markets, {"q": "transit"}))["markets"]["pageInfo"][
        "endCursor"
    ]
    assert search_cursor and list_cursor and market_cursor
    search_order = json.loads(base64.urlsafe_b64decode(search_cursor + "==="))[0]
    assert search_order == "SEARCH_RELEVANCE"
    huge = 10**400
    refused = [
        (SEARCH, list_cursor),
        (SEARCH, market_cursor),
        (LIST, search_cursor),
        (LIST, market_cursor),
        (markets, list_cursor),
        (SEARCH, _cursor(["SEARCH_RELEVANCE", huge, "Article", 1])),
        (SEARCH, _cursor(["SEARCH_RELEVANCE", -huge, "Article", 1])),
        (SEARCH, _cursor(["SEARCH_RELEVANCE", 1.0, "Zzz", 1])),
        (SEARCH, _cursor(["SEARCH_RELEVANCE", 1.0, "Comment", 1])),
        (SEARCH, _cursor(["SEARCH_RELEVANCE", 1.0, "", 1])),
        (SEARCH, _cursor(["RELEVANCE", 1.0, "Article", 1])),
    ]
    list_values = json.loads(base64.urlsafe_b64decode(list_cursor + "==="))
    refused.append((LIST, _cursor([list_values[0], huge, *list_values[2:]])))
    for document, after in refused:
        body = await client.post(document, {"q": "trade", "after": after})
        assert body["data"] is None, (document, after)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    # A cursor of the right order and kind still pages.
    for kind in ("Article", "Market"):
        body = await client.post(
            SEARCH, {"q": "trade", "after": _cursor(["SEARCH_RELEVANCE", 1e300, kind, 1])}
        )
        assert "errors" not in body, body


def test_marked_is_balanced_whatever_the_text_holds() -> None:
    s, e = "\ue000", "\ue001"
    assert marked(f"a {s}b{e} <i>&") == "a <mark>b</mark> &lt;i&gt;&amp;"
    assert marked(f"{e}x{s}{s}y{e}{e}z{s}w") == "x<mark>y</mark>z<mark>w</mark>"
    assert marked(f"{s}a{e}{s}") == "<mark>a</mark><mark></mark>"
    assert marked("plain") == "plain"


_SNIPPET = re.compile(r"(?:[^<>\ue000\ue001]|<mark>[^<>\ue000\ue001]*</mark>)*")


async def test_markers_in_text_are_refused_and_stored_ones_stay_balanced(
    demo_client: GraphQLClient,
) -> None:
    editor = await demo_client.log_in("editor")
    for field, value in [
        ("title", "Quokka \ue000 report"),
        ("excerpt", "a \ue001 b"),
        ("body", "The quokka \ue000 budget \ue001\ue001."),
    ]:
        article = {"title": "Quokka report", "categorySlug": "politics", field: value}
        payload = (await editor.data(CREATE, {"input": article}))["createArticle"]
        assert payload["article"] is None
        assert [(x["code"], x["field"]) for x in payload["errors"]] == [("VALIDATION", [field])]
    admin = await demo_client.log_in("admin")
    market = """mutation($input: CreateMarketInput!) {
      createMarket(input: $input) { market { id } errors { code field } } }"""
    for field, value in [
        ("question", "Will the quokka \ue000 win?"),
        ("description", "x \ue001"),
    ]:
        fields = {
            "question": "Will the quokka win the vote?",
            "description": "About quokkas.",
            "resolutionCriteria": "The vote.",
            "outcomes": ["Yes", "No"],
            "closesAt": "2999-01-01T00:00:00Z",
            "liquidity": "100.00",
            field: value,
        }
        payload = (await admin.data(market, {"input": fields}))["createMarket"]
        assert payload == {"market": None, "errors": [{"code": "VALIDATION", "field": [field]}]}
    # Rows stored before (or written around the API) still give balanced snippets.
    draft = ok(
        (
            await editor.data(
                CREATE,
                {"input": {"title": "Quokka report", "body": "x", "categorySlug": "politics"}},
            )
        )["createArticle"]
    )
    slug = ok(
        (await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"]
    )["slug"]
    pk = from_global_id(draft["id"], "Article")[1]
    body = "The quokka \ue000 budget \ue001\ue001 and <b>quokka</b> numbat</mark> \ue001 again."
    await models.Article.filter(id=pk).update(title="Quokka \ue000 report", body=body)
    for query in ("quokka", "budget", "numbat", "report"):
        edges = (await demo_client.data(SEARCH, {"q": query}))["search"]["edges"]
        [snippet] = [e["node"]["snippet"] for e in edges if e["node"]["node"]["slug"] == slug]
        assert _SNIPPET.fullmatch(snippet), (query, snippet)
        assert "<mark>" in snippet, (query, snippet)
        assert "\ue000" not in snippet and "\ue001" not in snippet
    if is_postgres():
        # ts_headline reads the text without the stored markers: only matches are marked.
        edges = (await demo_client.data(SEARCH, {"q": "budget"}))["search"]["edges"]
        [ours] = [e["node"]["snippet"] for e in edges if e["node"]["node"]["slug"] == slug]
        assert re.findall(r"<mark>(.*?)</mark>", ours) == ["budget"], ours


async def test_migration_0008_rebuilds_the_documents_of_a_populated_database(
    request: pytest.FixtureRequest, backend: str, tmp_path: Any
) -> None:
    url = await new_database(request, backend, tmp_path)
    settings = suite_settings(url)
    await migrate(config=tortoise_config(settings), target="models.0007_search")
    await Tortoise.close_connections()
    await Tortoise.init(config=tortoise_config(settings))
    try:
        now = "now()" if is_postgres() else "CURRENT_TIMESTAMP"
        await fetch_dicts("INSERT INTO authors (slug, name) VALUES ('w', 'W')")
        await fetch_dicts(
            "INSERT INTO categories (slug, name, path, depth, position) "
            "VALUES ('c', 'C', '/1/', 0, 0)"
        )
        await fetch_dicts(
            "INSERT INTO articles (slug, title, excerpt, body, word_count, published_at, "
            "updated_at, featured, comment_count, comment_seq, author_id, category_id, state) "
            "VALUES ('s', 'Bankers in Zürich', '', 'The café closed.', 4, "
            f"{now}, {now}, false, 0, 0, 1, 1, 'PUBLISHED')"
        )
    finally:
        await Tortoise.close_connections()
    await apply_migrations(settings)
    async for gql in _client_for(settings):
        for query in ("cafe", "café", "Zurich", "the", "bankers"):
            data = await gql.data(
                "query($q: String!) { search(query: $q) { totalCount } }", {"q": query}
            )
            assert data["search"]["totalCount"] == 1, query


async def test_migration_0008_says_what_to_do_without_unaccent() -> None:
    import importlib

    migration = importlib.import_module("db.migrations.0008_search_config")
    executed: list[str] = []

    class Client:
        class capabilities:
            dialect = "postgres"

        async def execute_query(self, sql: str) -> None:
            executed.append(sql)
            if sql.startswith("CREATE EXTENSION"):
                raise PermissionError("permission denied to create extension")

    class Editor:
        client = Client()

    with pytest.raises(RuntimeError) as failure:
        await migration._forward(None, Editor())
    assert str(failure.value) == migration.UNACCENT_MISSING.format(
        error="permission denied to create extension"
    )
    assert "CREATE EXTENSION unaccent;" in str(failure.value)
    assert executed == ["CREATE EXTENSION IF NOT EXISTS unaccent"]


AUTHOR = """query($slug: String!, $id: ID!) {
  author(slug: $slug) { slug } node(id: $id) { id } nodes(ids: [$id]) { id }
  authors(first: 100) { nodes { slug } } }"""


async def test_a_byline_with_only_drafts_is_seen_nowhere(demo_client: GraphQLClient) -> None:
    jane = await demo_client.sign_up("janedoe", display_name="Jane Doe")
    await models.User.filter(username="janedoe").update(role=models.Role.AUTHOR)
    draft = ok(
        (
            await jane.data(
                CREATE,
                {"input": {"title": "Secret plan", "body": "b", "categorySlug": "politics"}},
            )
        )["createArticle"]
    )
    slug = draft["author"]["slug"]
    byline = await models.Author.get(slug=slug)
    variables = {"slug": slug, "id": to_global_id("Author", byline.id)}
    admin = await demo_client.log_in("admin")
    for viewer in (demo_client, jane, admin):
        # As `authors` lists bylines: with an article readers see, for everyone.
        data = await viewer.data(AUTHOR, variables)
        assert (data["author"], data["node"], data["nodes"]) == (None, None, [None])
        assert slug not in {n["slug"] for n in data["authors"]["nodes"]}
    ok((await jane.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"])
    data = await demo_client.data(AUTHOR, variables)
    assert data["author"] == {"slug": slug}
    assert data["node"] == {"id": variables["id"]} and data["nodes"] == [{"id": variables["id"]}]
    assert slug in {n["slug"] for n in data["authors"]["nodes"]}


async def test_a_comment_added_before_its_article_was_archived_is_not_delivered(
    demo_client: GraphQLClient,
) -> None:
    editor = await demo_client.log_in("editor")
    draft = ok(
        (
            await editor.data(
                CREATE, {"input": {"title": "Short-lived", "body": "b", "categorySlug": "politics"}}
            )
        )["createArticle"]
    )
    ok((await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"])
    alice = await demo_client.log_in("alice")
    posted = (
        await alice.data(
            """mutation($input: PostCommentInput!) {
              postComment(input: $input) { comment { id } errors { code } } }""",
            {"input": {"articleId": draft["id"], "body": "first"}},
        )
    )["postComment"]
    assert posted["errors"] == []
    article_pk = from_global_id(draft["id"], "Article")[1]
    event = {"kind": "added", "comment_id": from_global_id(posted["comment"]["id"], "Comment")[1]}
    assert await COMMENT_ADDED.root(article_pk, event, Loaders()) is not None
    archived = (await editor.data(ARCHIVE, {"id": draft["id"]}))["archiveArticle"]
    assert archived == {"article": {"status": "ARCHIVED"}, "errors": []}
    # The event of the comment, handled after the archiving: readers hear nothing.
    assert await COMMENT_ADDED.root(article_pk, event, Loaders()) is None
