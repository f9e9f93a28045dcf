"""The newsroom over HTTP: drafts, publishing (now and at a time), unpublishing, archiving,
bylines; who may do what; what readers see of it everywhere; slugs; refusals change nothing."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import clock
from api.core.node import to_global_id
from app.response_cache import HEADER
from db import models
from db.sql import unstorable_reason
from settings import Settings
from tests.comments.test_xss import PAYLOADS, collect, normalise_href
from tests.conftest import GraphQLClient, _client_for, seed_demo, with_settings

CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"

ARTICLE_FIELDS = """
  id slug title excerpt body bodyHtml status publishAt publishedAt updatedAt
  readingTimeMinutes featured author { slug name } category { slug }
  tags { slug } markets { slug }
"""
CREATE = f"""mutation($input: CreateArticleInput!) {{ createArticle(input: $input) {{
  article {{ {ARTICLE_FIELDS} }} errors {{ code message field }} }} }}"""
UPDATE = f"""mutation($input: UpdateArticleInput!) {{ updateArticle(input: $input) {{
  article {{ {ARTICLE_FIELDS} }} errors {{ code message field }} }} }}"""
PUBLISH = f"""mutation($input: PublishArticleInput!) {{ publishArticle(input: $input) {{
  article {{ {ARTICLE_FIELDS} }} errors {{ code message field }} }} }}"""
UNPUBLISH = """mutation($id: ID!) { unpublishArticle(input: {articleId: $id}) {
  article { status } errors { code message field } } }"""
ARCHIVE = """mutation($id: ID!) { archiveArticle(input: {articleId: $id}) {
  article { status } errors { code message field } } }"""
PROFILE = """mutation($input: UpdateAuthorProfileInput!) { updateAuthorProfile(input: $input) {
  author { slug name bio articleCount } errors { code message field } } }"""

# What a reader can reach an article through: every list, count and lookup.
READER_VIEW = """
query($slug: String!, $id: ID!, $author: String!, $tag: String!, $category: String!) {
  article(slug: $slug) { slug }
  node(id: $id) { id }
  nodes(ids: [$id]) { id }
  articles(first: 100) { totalCount nodes { slug } }
  byAuthor: articles(first: 100, filter: {authorSlug: $author}) { totalCount nodes { slug } }
  searched: articles(first: 100, filter: {search: "customs code"}) { totalCount nodes { slug } }
  author(slug: $author) { articleCount articles(first: 100) { totalCount nodes { slug } } }
  tag(slug: $tag) { articleCount articles(first: 100) { totalCount nodes { slug } } }
  category(slug: $category) { articles(first: 100) { totalCount nodes { slug } } }
  stats { articleCount }
  showcase: article(slug: "SHOWCASE") { relatedArticles(first: 20) { slug }
    markets { articles { slug } } }
}
""".replace("SHOWCASE", CENTRAL_ASIA)


async def _market_pk() -> int:
    link = await models.MarketArticle.filter(article__slug=CENTRAL_ASIA).first()
    assert link is not None
    return link.market_id


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    """The article (or author) of a payload that must have succeeded."""
    assert payload["errors"] == [], payload["errors"]
    value = payload.get("article", payload.get("author"))
    assert value is not None
    return value


def refused(payload: dict[str, Any], code: str, field: list[str] | None = None) -> None:
    assert payload.get("article", payload.get("author")) is None, payload
    assert [e["code"] for e in payload["errors"]] == [code], payload["errors"]
    if field is not None:
        assert payload["errors"][0]["field"] == field, payload["errors"]


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def market_gid() -> str:
    """The market the showcase article discusses."""
    return to_global_id("Market", await _market_pk())


async def snapshot() -> tuple[Any, ...]:
    """Everything a newsroom write may change."""
    articles = (
        await models.Article.all()
        .order_by("id")
        .values_list(
            "id",
            "slug",
            "title",
            "excerpt",
            "body",
            "state",
            "published_at",
            "updated_at",
            "featured",
            "category_id",
            "author_id",
            "first_published_at",
        )
    )
    tags = await models.ArticleTag.all().order_by("id").values_list("article_id", "tag_id")
    markets = await models.MarketArticle.all().order_by("id").values_list("article_id", "market_id")
    slugs = await models.ArticleSlug.all().order_by("id").values_list("slug", "article_id")
    html = await models.ArticleHtml.all().order_by("id").values_list("article_id", "html")
    authors = await models.Author.all().order_by("id").values_list("id", "slug", "name", "bio")
    return (tuple(articles), tuple(tags), tuple(markets), tuple(slugs), tuple(html), tuple(authors))


async def reader_view(gql: GraphQLClient, article: dict[str, Any]) -> dict[str, Any]:
    return await gql.data(
        READER_VIEW,
        {
            "slug": article["slug"],
            "id": article["id"],
            "author": article["author"]["slug"],
            "tag": "azerbaijan",
            "category": "politics",
        },
    )


def sees(view: dict[str, Any], slug: str) -> dict[str, bool]:
    """Where in a reader view ``slug`` shows up."""
    showcase = view["showcase"]
    return {
        "article": view["article"] is not None,
        "node": view["node"] is not None,
        "nodes": view["nodes"] != [None],
        "articles": slug in {n["slug"] for n in view["articles"]["nodes"]},
        "byAuthor": slug in {n["slug"] for n in view["byAuthor"]["nodes"]},
        "searched": slug in {n["slug"] for n in view["searched"]["nodes"]},
        "author": slug in {n["slug"] for n in view["author"]["articles"]["nodes"]},
        "tag": slug in {n["slug"] for n in view["tag"]["articles"]["nodes"]},
        "category": slug in {n["slug"] for n in view["category"]["articles"]["nodes"]},
        "related": slug in {r["slug"] for r in showcase["relatedArticles"]},
        "market": slug in {a["slug"] for m in showcase["markets"] for a in m["articles"]},
    }


def counts(view: dict[str, Any]) -> tuple[int, ...]:
    return (
        view["articles"]["totalCount"],
        view["byAuthor"]["totalCount"],
        view["author"]["articleCount"],
        view["author"]["articles"]["totalCount"],
        view["tag"]["articleCount"],
        view["tag"]["articles"]["totalCount"],
        view["category"]["articles"]["totalCount"],
        view["stats"]["articleCount"],
    )


async def draft_input() -> dict[str, Any]:
    return {
        "title": "Caspian Ports Agree on a Single Customs Code",
        "categorySlug": "bilateral-relations",
        "excerpt": "Five ports, one code.",
        "body": "## The customs code\n\nWords " + "word " * 398 + "\n\n- one\n- two",
        "tagSlugs": ["azerbaijan", "central-asia"],
        "marketIds": [await market_gid()],
    }


class ClockFile:
    """The wall clock of this process (and of every process told the path), moved by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def move_to(self, moment: datetime) -> None:
        spare = self.path.with_name(self.path.name + ".new")
        spare.write_text(moment.isoformat())
        os.replace(spare, self.path)
        clock.use_offset_file(str(self.path))


@pytest.fixture
def clock_file(tmp_path: Path) -> Iterator[ClockFile]:
    yield ClockFile(tmp_path / "clock")
    clock.use_offset_file(None)


async def test_the_workflow_and_what_readers_see_of_it(demo_client: GraphQLClient) -> None:
    anonymous = demo_client
    editor = await demo_client.log_in("editor")
    alice = await demo_client.log_in("alice")
    admin = await demo_client.log_in("admin")
    before = await reader_view(
        anonymous,
        {"slug": "x", "id": to_global_id("Article", 1), "author": {"slug": "oliver-scott"}},
    )

    # A draft: readers see nothing of it, anywhere; its author and admins do.
    draft = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    # A draft's slug tells nothing (a title-based one would, to other authors, when taken).
    assert re.fullmatch(r"draft-[0-9a-f]{12}", draft["slug"]), draft["slug"]
    assert (draft["status"], draft["publishAt"], draft["featured"]) == ("DRAFT", None, False)
    assert draft["author"] == {"slug": "oliver-scott", "name": "Oliver Scott"}
    assert draft["readingTimeMinutes"] == 3  # 402 words
    assert draft["bodyHtml"].startswith("<h2>The customs code</h2>")
    assert "<li>one</li>" in draft["bodyHtml"]
    assert [t["slug"] for t in draft["tags"]] == ["azerbaijan", "central-asia"]
    for reader in (anonymous, alice):
        view = await reader_view(reader, draft)
        assert not any(sees(view, draft["slug"]).values()), sees(view, draft["slug"])
        assert counts(view) == counts(before)
    for insider in (editor, admin):
        data = await insider.data(
            "query($s: String!) { article(slug: $s) { status } "
            "articles(filter: {status: DRAFT}, first: 100) { nodes { slug } } }",
            {"s": draft["slug"]},
        )
        assert data["article"] == {"status": "DRAFT"}
        assert draft["slug"] in {n["slug"] for n in data["articles"]["nodes"]}
    # Editors' views are theirs: a reader asking for drafts is refused.
    body = await alice.post("{ articles(filter: {status: DRAFT}) { nodes { slug } } }")
    assert error_codes(body) == ["FORBIDDEN"] and body["data"] is None
    body = await anonymous.post("{ articles(filter: {status: DRAFT}) { nodes { slug } } }")
    assert error_codes(body) == ["UNAUTHENTICATED"]

    # Published: everywhere at once.
    live = ok((await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"])
    assert live["status"] == "PUBLISHED" and live["publishAt"] == live["publishedAt"]
    assert live["slug"] == "caspian-ports-agree-on-a-single-customs-code"
    view = await reader_view(anonymous, live)
    assert all(sees(view, live["slug"]).values()), sees(view, live["slug"])
    assert counts(view) == tuple(n + 1 for n in counts(before))

    # Publishing again changes nothing (a retried request).
    again = ok(
        (await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"]
    )
    assert again["publishedAt"] == live["publishedAt"]

    # Unpublished: a draft again, gone for readers.
    assert (await editor.data(UNPUBLISH, {"id": draft["id"]}))["unpublishArticle"] == {
        "article": {"status": "DRAFT"},
        "errors": [],
    }
    view = await reader_view(anonymous, live)
    assert not any(sees(view, live["slug"]).values())
    assert counts(view) == counts(before)

    # Archived, after publishing again: hidden with its comments; its market trades on.
    ok((await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"])
    posted = await alice.data(
        'mutation($a: ID!) { postComment(input: {articleId: $a, body: "Good news"}) '
        "{ comment { id } errors { code } } }",
        {"a": draft["id"]},
    )
    comment_id = posted["postComment"]["comment"]["id"]
    archived = await editor.data(ARCHIVE, {"id": draft["id"]})
    assert archived["archiveArticle"] == {"article": {"status": "ARCHIVED"}, "errors": []}
    view = await reader_view(anonymous, live)
    assert not any(sees(view, live["slug"]).values())
    hidden = await anonymous.data("query($id: ID!) { node(id: $id) { id } }", {"id": comment_id})
    assert hidden == {"node": None}
    # Its author can't reach it (nor, through it, the article) by deleting it either.
    deleting = await alice.data(
        "mutation($c: ID!) { deleteComment(input: {commentId: $c}) "
        "{ comment { article { body } } errors { code } } }",
        {"c": comment_id},
    )
    assert deleting["deleteComment"] == {"comment": None, "errors": [{"code": "NOT_FOUND"}]}
    refused_post = await alice.data(
        'mutation($a: ID!) { postComment(input: {articleId: $a, body: "Again"}) '
        "{ comment { id } errors { code field } } }",
        {"a": draft["id"]},
    )
    assert refused_post["postComment"] == {
        "comment": None,
        "errors": [{"code": "NOT_FOUND", "field": ["articleId"]}],
    }
    outcome = await models.Outcome.filter(market_id=int(await _market_pk())).first()
    assert outcome is not None
    traded = await alice.data(
        'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "5.00"}) '
        "{ trade { amount } errors { code } } }",
        {"o": to_global_id("Outcome", outcome.id)},
    )
    assert traded["buyShares"] == {"trade": {"amount": "5.00"}, "errors": []}
    admin_view = await admin.data(
        "{ articles(filter: {status: ARCHIVED}, first: 100) { nodes { slug status } } }"
    )
    assert {"slug": live["slug"], "status": "ARCHIVED"} in admin_view["articles"]["nodes"]


async def test_a_scheduled_article_appears_at_its_time(
    demo_client: GraphQLClient, clock_file: ClockFile
) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    clock_file.move_to(start)
    editor = await demo_client.log_in("editor")
    draft = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    at = start + timedelta(hours=2)
    scheduled = ok(
        (
            await editor.data(
                PUBLISH, {"input": {"articleId": draft["id"], "publishAt": at.isoformat()}}
            )
        )["publishArticle"]
    )
    assert scheduled["status"] == "SCHEDULED"
    assert datetime.fromisoformat(scheduled["publishAt"]) == at
    data = await editor.data(
        "{ articles(filter: {status: SCHEDULED}, first: 100) { nodes { slug } } }"
    )
    assert {n["slug"] for n in data["articles"]["nodes"]} >= {scheduled["slug"]}

    clock_file.move_to(at - timedelta(seconds=1))
    view = await reader_view(demo_client, scheduled)
    assert not any(sees(view, scheduled["slug"]).values())
    clock_file.move_to(at)
    view = await reader_view(demo_client, scheduled)
    assert all(sees(view, scheduled["slug"]).values()), sees(view, scheduled["slug"])
    data = await demo_client.data(
        "query($s: String!) { article(slug: $s) { status publishAt } }", {"s": scheduled["slug"]}
    )
    assert data["article"]["status"] == "PUBLISHED"

    # A time in the past is refused (leave it out to publish now), and changes nothing.
    before = await snapshot()
    payload = (
        await editor.data(
            PUBLISH,
            {
                "input": {
                    "articleId": draft["id"],
                    "publishAt": (at - timedelta(days=1)).isoformat(),
                }
            },
        )
    )["publishArticle"]
    refused(payload, "VALIDATION", ["publishAt"])
    assert await snapshot() == before


async def test_who_may_do_what(demo_client: GraphQLClient) -> None:
    editor = await demo_client.log_in("editor")
    admin = await demo_client.log_in("admin")
    bob = await demo_client.log_in("bob")
    writer = await demo_client.sign_up("writer")
    await models.User.filter(username="writer").update(role=models.Role.AUTHOR)
    draft = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    showcase = await demo_client.data(
        "query($s: String!) { article(slug: $s) { id } }", {"s": CENTRAL_ASIA}
    )
    showcase_id = showcase["article"]["id"]
    before = await snapshot()

    # Readers and anonymous clients can't write at all.
    body = await bob.post(CREATE, {"input": await draft_input()})
    assert error_codes(body) == ["FORBIDDEN"] and body["data"] is None
    body = await demo_client.post(CREATE, {"input": await draft_input()})
    assert error_codes(body) == ["UNAUTHENTICATED"]
    body = await bob.post(PROFILE, {"input": {"name": "Bob"}})
    assert error_codes(body) == ["FORBIDDEN"]

    # Another author: someone else's draft doesn't exist for them; a live article is FORBIDDEN.
    for mutation, variables, field in (
        (UPDATE, {"input": {"articleId": draft["id"], "title": "Mine now"}}, "updateArticle"),
        (PUBLISH, {"input": {"articleId": draft["id"]}}, "publishArticle"),
        (UNPUBLISH, {"id": draft["id"]}, "unpublishArticle"),
        (ARCHIVE, {"id": draft["id"]}, "archiveArticle"),
    ):
        refused((await writer.data(mutation, variables))[field], "NOT_FOUND", ["articleId"])
    for mutation, variables in (
        (UPDATE, {"input": {"articleId": showcase_id, "title": "Mine now"}}),
        (UNPUBLISH, {"id": showcase_id}),
        (ARCHIVE, {"id": showcase_id}),
    ):
        body = await writer.post(mutation, variables)
        assert error_codes(body) == ["FORBIDDEN"], body
    # The editor is an AUTHOR: featuring is for moderators.
    body = await editor.post(UPDATE, {"input": {"articleId": draft["id"], "featured": True}})
    assert error_codes(body) == ["FORBIDDEN"]
    body = await editor.post(CREATE, {"input": {**await draft_input(), "featured": True}})
    assert error_codes(body) == ["FORBIDDEN"]
    # Leaving it as it is is no featuring.
    same = await editor.data(UPDATE, {"input": {"articleId": draft["id"], "featured": False}})
    assert same["updateArticle"]["errors"] == []
    # An unknown article is NOT_FOUND; a malformed id BAD_USER_INPUT.
    refused(
        (await admin.data(UNPUBLISH, {"id": to_global_id("Article", 99_999)}))["unpublishArticle"],
        "NOT_FOUND",
    )
    body = await admin.post(UNPUBLISH, {"id": "nope"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert await snapshot() == before

    # A moderator edits and features anyone's article, and sees every draft.
    featured = ok(
        (
            await admin.data(
                UPDATE, {"input": {"articleId": draft["id"], "featured": True, "excerpt": "Edited"}}
            )
        )["updateArticle"]
    )
    assert (featured["featured"], featured["excerpt"]) == (True, "Edited")
    # A new author's first article makes their byline from their display name; readers don't
    # see the byline until something of theirs is published.
    mine = ok((await writer.data(CREATE, {"input": await draft_input()}))["createArticle"])
    assert mine["author"] == {"slug": "writer", "name": "Writer"}
    bylines = await bob.data("{ authors(first: 100) { nodes { slug } } }")
    assert "writer" not in {n["slug"] for n in bylines["authors"]["nodes"]}
    # A market can't be linked to a draft: its id answers as one that doesn't exist.
    market = await writer.data(
        """mutation($a: ID!) { createMarket(input: {question: "Will the draft be published?",
             description: "d", resolutionCriteria: "r", outcomes: ["Yes", "No"],
             closesAt: "2099-01-01T00:00:00Z", liquidity: "100.00", articleIds: [$a],
             tagSlugs: []}) { market { id } errors { code field } } }""",
        {"a": mine["id"]},
    )
    assert market["createMarket"] == {
        "market": None,
        "errors": [{"code": "NOT_FOUND", "field": ["articleIds"]}],
    }
    assert mine["slug"].startswith("draft-")
    # An author lists their own drafts only; a moderator everyone's.
    own = await writer.data("{ articles(filter: {status: DRAFT}, first: 100) { nodes { slug } } }")
    assert [n["slug"] for n in own["articles"]["nodes"]] == [mine["slug"]]
    every = await admin.data("{ articles(filter: {status: DRAFT}, first: 100) { nodes { slug } } }")
    assert {mine["slug"], draft["slug"]} <= {n["slug"] for n in every["articles"]["nodes"]}

    profile = ok(
        (await writer.data(PROFILE, {"input": {"name": "  Wri   Ter ", "bio": "Writes."}}))[
            "updateAuthorProfile"
        ]
    )
    assert profile == {"slug": "writer", "name": "Wri Ter", "bio": "Writes.", "articleCount": 0}
    cleared = ok((await writer.data(PROFILE, {"input": {"bio": ""}}))["updateAuthorProfile"])
    assert cleared["bio"] is None and cleared["name"] == "Wri Ter"


async def test_slugs_come_from_the_title_at_publication_then_old_ones_resolve(
    demo_client: GraphQLClient,
) -> None:
    editor = await demo_client.log_in("editor")
    draft = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    retitled = ok(
        (await editor.data(UPDATE, {"input": {"articleId": draft["id"], "title": "Zürich Talks"}}))[
            "updateArticle"
        ]
    )
    assert retitled["slug"] == draft["slug"] and retitled["slug"].startswith("draft-")
    assert datetime.fromisoformat(retitled["updatedAt"]) > datetime.fromisoformat(
        draft["updatedAt"]
    )
    # Published: the title it goes out with makes its URL (ASCII, diacritics folded).
    published = ok(
        (await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"]
    )
    assert published["slug"] == "zurich-talks"
    # The draft's slug named nothing public: it doesn't resolve.
    gone = await editor.data(
        "query($s: String!) { article(slug: $s) { slug } }", {"s": draft["slug"]}
    )
    assert gone == {"article": None}
    # The same title published again gets the next free slug.
    twin = ok(
        (await editor.data(CREATE, {"input": {**await draft_input(), "title": "Zürich talks!"}}))[
            "createArticle"
        ]
    )
    twin = ok((await editor.data(PUBLISH, {"input": {"articleId": twin["id"]}}))["publishArticle"])
    assert twin["slug"] == "zurich-talks-2"
    # Published: a new title keeps the URL.
    kept = ok(
        (await editor.data(UPDATE, {"input": {"articleId": draft["id"], "title": "Geneva Talks"}}))[
            "updateArticle"
        ]
    )
    assert (kept["slug"], kept["title"]) == ("zurich-talks", "Geneva Talks")
    # An explicit new slug: the old one keeps resolving, to the article with its new slug.
    moved = ok(
        (await editor.data(UPDATE, {"input": {"articleId": draft["id"], "slug": "geneva-talks"}}))[
            "updateArticle"
        ]
    )
    assert moved["slug"] == "geneva-talks"
    for slug in ("zurich-talks", "geneva-talks"):
        data = await demo_client.data(
            "query($s: String!) { article(slug: $s) { slug title } }", {"s": slug}
        )
        assert data["article"] == {"slug": "geneva-talks", "title": "Geneva Talks"}
    # Taken slugs (another article's, current or old) and malformed ones are refused.
    before = await snapshot()
    for slug, code in (
        (CENTRAL_ASIA, "VALIDATION"),
        ("Not A Slug", "VALIDATION"),
        ("", "VALIDATION"),
        ("draft-0123456789ab", "VALIDATION"),
    ):
        payload = (await editor.data(UPDATE, {"input": {"articleId": draft["id"], "slug": slug}}))[
            "updateArticle"
        ]
        refused(payload, code, ["slug"])
    assert await snapshot() == before
    other = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    after_create = await snapshot()
    payload = (
        await editor.data(UPDATE, {"input": {"articleId": other["id"], "slug": "zurich-talks"}})
    )["updateArticle"]
    refused(payload, "VALIDATION", ["slug"])
    assert await snapshot() == after_create
    # Going back to an old slug is allowed: it is the article's own.
    back = ok(
        (await editor.data(UPDATE, {"input": {"articleId": draft["id"], "slug": "zurich-talks"}}))[
            "updateArticle"
        ]
    )
    assert back["slug"] == "zurich-talks"
    data = await demo_client.data(
        "query($s: String!) { article(slug: $s) { slug } }", {"s": "geneva-talks"}
    )
    assert data["article"] == {"slug": "zurich-talks"}


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"title": "   "}, "VALIDATION", ["title"]),
        ({"title": "x" * 301}, "VALIDATION", ["title"]),
        ({"excerpt": "x" * 1001}, "VALIDATION", ["excerpt"]),
        ({"body": "x" * 100_001}, "VALIDATION", ["body"]),
        ({"categorySlug": "no-such-category"}, "NOT_FOUND", ["categorySlug"]),
        ({"tagSlugs": ["azerbaijan", "no-such-tag"]}, "NOT_FOUND", ["tagSlugs"]),
        ({"tagSlugs": [f"t{i}" for i in range(21)]}, "VALIDATION", ["tagSlugs"]),
        ({"marketIds": [to_global_id("Market", 99_999)]}, "NOT_FOUND", ["marketIds"]),
    ],
    ids=[
        "blank-title",
        "long-title",
        "long-excerpt",
        "long-body",
        "category",
        "tag",
        "too-many-tags",
        "market",
    ],
)
async def test_refused_writes_change_nothing(
    demo_client: GraphQLClient, change: dict[str, Any], code: str, field: list[str]
) -> None:
    editor = await demo_client.log_in("editor")
    draft = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    before = await snapshot()
    created = await editor.data(CREATE, {"input": {**await draft_input(), **change}})
    refused(created["createArticle"], code, field)
    updated = await editor.data(UPDATE, {"input": {"articleId": draft["id"], **change}})
    refused(updated["updateArticle"], code, field)
    assert await snapshot() == before


async def test_an_empty_draft_cannot_be_published(demo_client: GraphQLClient) -> None:
    editor = await demo_client.log_in("editor")
    draft = ok(
        (await editor.data(CREATE, {"input": {"title": "Notes", "categorySlug": "politics"}}))[
            "createArticle"
        ]
    )
    before = await snapshot()
    payload = (await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"]
    refused(payload, "VALIDATION", ["body"])
    assert await snapshot() == before


# -- bodyHtml ---------------------------------------------------------------------------

ARTICLE_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "img",
}
ARTICLE_ATTRIBUTES = {
    "a": {"href", "title", "rel"},
    "ol": {"start"},
    "img": {"src", "alt", "title", "loading", "referrerpolicy"},
}
IMAGE_PAYLOADS = [
    ("img-js-src", "![x](javascript:alert(1))"),
    ("img-data-src", "![x](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)"),
    ("img-relative", "![x](/etc/passwd)"),
    ("img-protocol-relative", "![x](//evil.example/a.png)"),
    ("img-onerror-title", '![x](https://a.example/a.png "x\\" onerror=\\"alert(1)")'),
    ("img-raw-html", '<img src=x onerror="alert(1)">'),
    ("img-alt-breakout", '![x" onerror="alert(1)](https://a.example/a.png)'),
]


def assert_article_safe(rendered: str) -> None:
    """Only the article allow-list; links and images to absolute http(s) URLs only."""
    found = collect(rendered)
    assert found.other == [], rendered
    for tag, attrs in found.tags:
        assert tag in ARTICLE_TAGS, f"<{tag}> in {rendered!r}"
        for name, value in attrs:
            assert not name.startswith("on"), rendered
            assert name in ARTICLE_ATTRIBUTES.get(tag, set()), f"{name}={value!r} on <{tag}>"
        values = dict(attrs)
        if tag == "a":
            assert values.get("rel") == "noopener noreferrer", rendered
            if "href" in values:
                href = normalise_href(values["href"] or "")
                assert href.startswith(("http://", "https://", "mailto:")), rendered
        if tag == "img":
            if "src" in values:
                assert normalise_href(values["src"] or "").startswith(("http://", "https://"))
            assert values.get("loading") == "lazy", rendered
    lowered = rendered.lower()
    for token in ("<script", "<iframe", "<svg", "<style", "<object", "<math", "<form"):
        assert token not in lowered, rendered


async def test_body_html_holds_against_the_xss_corpus(demo_client: GraphQLClient) -> None:
    editor = await demo_client.log_in("editor")
    draft = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    for case_id, payload in [*PAYLOADS, *IMAGE_PAYLOADS]:
        body = await editor.post(
            "mutation($i: UpdateArticleInput!) { updateArticle(input: $i) "
            "{ article { body bodyHtml } errors { code } } }",
            {"i": {"articleId": draft["id"], "body": payload}},
        )
        if unstorable_reason(payload) is not None:
            # NUL and lone surrogates never reach the newsroom (the input hygiene refuses them).
            assert error_codes(body) == ["BAD_USER_INPUT"], (case_id, body)
            continue
        article = body["data"]["updateArticle"]["article"]
        assert article is not None, (case_id, body)
        assert_article_safe(article["bodyHtml"])
    image = await editor.data(
        "mutation($i: UpdateArticleInput!) { updateArticle(input: $i) { article { bodyHtml } } }",
        {"i": {"articleId": draft["id"], "body": '![Map](https://a.example/map.png "The map")'}},
    )
    rendered = image["updateArticle"]["article"]["bodyHtml"]
    assert rendered.startswith("<p><img ") and rendered.endswith("></p>"), rendered
    tags = collect(rendered).tags
    assert [(tag, dict(attrs)) for tag, attrs in tags] == [
        ("p", {}),
        (
            "img",
            {
                "src": "https://a.example/map.png",
                "alt": "Map",
                "title": "The map",
                "referrerpolicy": "no-referrer",
                "loading": "lazy",
            },
        ),
    ]


async def test_demo_drafts_are_the_editors_and_invisible(client: GraphQLClient) -> None:
    editor = await client.log_in("editor")
    data = await editor.data(
        "{ drafts: articles(filter: {status: DRAFT}, first: 100) { nodes { slug author { slug } } } "
        "scheduled: articles(filter: {status: SCHEDULED}, first: 100) { nodes { slug } } }"
    )
    assert len(data["drafts"]["nodes"]) >= 2
    assert {n["author"]["slug"] for n in data["drafts"]["nodes"]} == {"oliver-scott"}
    assert len(data["scheduled"]["nodes"]) == 1
    hidden = {n["slug"] for n in data["drafts"]["nodes"] + data["scheduled"]["nodes"]}
    listed = await client.data("{ articles(first: 100) { nodes { slug } } }")
    assert hidden.isdisjoint(n["slug"] for n in listed["articles"]["nodes"])
    for slug in hidden:
        found = await client.data("query($s: String!) { article(slug: $s) { slug } }", {"s": slug})
        assert found == {"article": None}


# -- the response cache ------------------------------------------------------------------


@pytest.fixture
async def cached(fresh_settings: Settings) -> AsyncIterator[GraphQLClient]:
    await seed_demo(fresh_settings)
    async for gql in _client_for(with_settings(fresh_settings, response_cache=True)):
        yield gql


async def test_newsroom_writes_reach_cached_readers(cached: GraphQLClient) -> None:
    query = "{ articles(first: 100) { totalCount nodes { slug title } } }"

    async def read() -> tuple[str, dict[str, Any]]:
        response: httpx.Response = await cached.http.post("/graphql", json={"query": query})
        return response.headers.get(HEADER, ""), response.json()["data"]

    first = await read()
    assert first[0] == "miss" and (await read())[0] == "hit"
    editor = await cached.log_in("editor")
    draft = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    ok((await editor.data(PUBLISH, {"input": {"articleId": draft["id"]}}))["publishArticle"])
    status, data = await read()
    assert status == "miss"
    assert data["articles"]["totalCount"] == first[1]["articles"]["totalCount"] + 1
    ok(
        (await editor.data(UPDATE, {"input": {"articleId": draft["id"], "title": "New title"}}))[
            "updateArticle"
        ]
    )
    status, data = await read()
    assert status == "miss" and "New title" in {n["title"] for n in data["articles"]["nodes"]}


async def test_a_cached_answer_expires_when_a_scheduled_article_goes_live(
    cached: GraphQLClient, clock_file: ClockFile
) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    clock_file.move_to(start)
    editor = await cached.log_in("editor")
    draft = ok((await editor.data(CREATE, {"input": await draft_input()}))["createArticle"])
    at = start + timedelta(hours=2)
    scheduled = ok(
        (
            await editor.data(
                PUBLISH, {"input": {"articleId": draft["id"], "publishAt": at.isoformat()}}
            )
        )["publishArticle"]
    )
    query = "{ articles(first: 100) { nodes { slug } } }"

    async def read() -> tuple[str, set[str]]:
        response: httpx.Response = await cached.http.post("/graphql", json={"query": query})
        nodes = response.json()["data"]["articles"]["nodes"]
        return response.headers.get(HEADER, ""), {n["slug"] for n in nodes}

    assert (await read())[0] == "miss"
    status, slugs = await read()
    assert status == "hit" and scheduled["slug"] not in slugs
    # No write, no scheduler run: the entry itself knew when it stops being right.
    clock_file.move_to(at)
    status, slugs = await read()
    assert status == "miss" and scheduled["slug"] in slugs
