"""The comment write path over HTTP: exact counters, permissions, refusals that change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from accounts.ratelimit import MemoryRateLimiter
from api.core.node import from_global_id, to_global_id
from db import models
from settings import Settings
from tests.conftest import FakeClock, GraphQLClient, _client_for, new_database, prepare_database

POST = """
mutation($input: PostCommentInput!) {
  postComment(input: $input) {
    comment { id sequence body bodyHtml deleted replyCount editedAt viewerCanEdit viewerCanDelete
              author { username } parent { id } article { id commentCount } }
    errors { code message field retryAfterSeconds }
  }
}
"""
EDIT = """
mutation($input: EditCommentInput!) {
  editComment(input: $input) { comment { id body bodyHtml editedAt } errors { code field } }
}
"""
DELETE = """
mutation($input: DeleteCommentInput!) {
  deleteComment(input: $input) { comment { id body bodyHtml deleted } errors { code } }
}
"""
REPORT = """
mutation($input: ReportCommentInput!) {
  reportComment(input: $input) { comment { id } errors { code message field } }
}
"""
ARTICLE = """
query($slug: String!) {
  article(slug: $slug) { id commentCount comments(first: 100, orderBy: OLDEST) { totalCount
    nodes { id sequence replyCount deleted body replies(first: 100) { totalCount nodes { id } } } } }
}
"""


async def _article(client: GraphQLClient, slug: str | None = None) -> dict[str, Any]:
    if slug is None:
        row = await models.Article.filter(comment_count=0).order_by("id").first()
        assert row is not None
        slug = row.slug
    data = await client.data(ARTICLE, {"slug": slug})
    article: dict[str, Any] = data["article"]
    return article


async def _snapshot() -> tuple[Any, ...]:
    comments = (
        await models.Comment.all()
        .order_by("id")
        .values_list("id", "body", "deleted", "reply_count", "report_count", "edited_at")
    )
    articles = (
        await models.Article.all().order_by("id").values_list("id", "comment_count", "comment_seq")
    )
    reports = await models.CommentReport.all().count()
    return (tuple(comments), tuple(articles), reports)


async def test_post_reply_edit_delete_keep_every_count_exact(
    demo_client: GraphQLClient, clock: FakeClock
) -> None:
    alice = await demo_client.log_in("alice")
    bob = await demo_client.log_in("bob")
    article = await _article(demo_client)
    row = await models.Article.get(id=from_global_id(article["id"])[1])
    count0, seq0 = row.comment_count, row.comment_seq
    slug = row.slug

    top = (
        await alice.data(
            POST, {"input": {"articleId": article["id"], "body": "  First **take**  "}}
        )
    )["postComment"]
    assert top["errors"] == []
    c = top["comment"]
    assert c["body"] == "First **take**"
    assert c["bodyHtml"] == "<p>First <strong>take</strong></p>"
    assert c["sequence"] == seq0 + 1
    assert c["article"] == {"id": article["id"], "commentCount": count0 + 1}
    assert (c["author"], c["parent"], c["deleted"], c["editedAt"]) == (
        {"username": "alice"},
        None,
        False,
        None,
    )
    assert (c["viewerCanEdit"], c["viewerCanDelete"]) == (True, True)

    reply = (
        await bob.data(
            POST, {"input": {"articleId": article["id"], "body": "A reply", "parentId": c["id"]}}
        )
    )["postComment"]["comment"]
    assert reply["parent"] == {"id": c["id"]}
    assert reply["sequence"] == seq0 + 2
    nested = (
        await alice.data(
            POST, {"input": {"articleId": article["id"], "body": "Deeper", "parentId": reply["id"]}}
        )
    )["postComment"]["comment"]
    assert nested["sequence"] == seq0 + 3

    page = await _article(demo_client, slug)
    assert page["commentCount"] == count0 + 3
    mine = next(n for n in page["comments"]["nodes"] if n["id"] == c["id"])
    assert mine["replyCount"] == 1
    assert [r["id"] for r in mine["replies"]["nodes"]] == [reply["id"]]

    # Bob sees alice's comment but may neither edit nor delete it.
    seen = await bob.data(
        "query($id: ID!) { node(id: $id) { ... on Comment { viewerCanEdit viewerCanDelete } } }",
        {"id": c["id"]},
    )
    assert seen["node"] == {"viewerCanEdit": False, "viewerCanDelete": False}
    before = await _snapshot()
    body = await bob.post(EDIT, {"input": {"commentId": c["id"], "body": "hijack"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] is None  # the payload is non-null (API.md), so the error nulls data
    body = await bob.post(DELETE, {"input": {"commentId": c["id"]}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _snapshot() == before

    edited = (
        await alice.data(EDIT, {"input": {"commentId": c["id"], "body": "Second *thought*"}})
    )["editComment"]["comment"]
    assert edited["body"] == "Second *thought*"
    assert edited["bodyHtml"] == "<p>Second <em>thought</em></p>"
    assert edited["editedAt"] is not None

    # Bob deletes his reply: it keeps its place, alice's nested reply survives.
    deleted = (await bob.data(DELETE, {"input": {"commentId": reply["id"]}}))["deleteComment"]
    assert deleted["comment"] == {"id": reply["id"], "body": "", "bodyHtml": "", "deleted": True}
    page = await _article(demo_client, slug)
    assert page["commentCount"] == count0 + 2
    mine = next(n for n in page["comments"]["nodes"] if n["id"] == c["id"])
    assert mine["replyCount"] == 0
    assert mine["replies"]["totalCount"] == 1
    assert (await models.Comment.get(id=from_global_id(nested["id"])[1])).deleted is False

    # Deleting again changes nothing and succeeds.
    before = await _snapshot()
    again = (await bob.data(DELETE, {"input": {"commentId": reply["id"]}}))["deleteComment"]
    assert again["errors"] == [] and again["comment"]["deleted"] is True
    assert await _snapshot() == before

    # Replies to a deleted comment and edits of it are refused (steps of this thread, not cases:
    # they need the reply deleted above).
    for query, variables in [
        (POST, {"input": {"articleId": article["id"], "body": "x", "parentId": reply["id"]}}),
        (EDIT, {"input": {"commentId": reply["id"], "body": "x"}}),
    ]:
        clock.advance(60)
        data = await bob.data(query, variables)
        payload = next(iter(data.values()))
        assert payload["comment"] is None
        assert payload["errors"][0]["code"] == "NOT_FOUND"
    assert await _snapshot() == before

    # A moderator may delete anyone's comment.
    await models.User.filter(username="bob").update(role=models.Role.MODERATOR)
    deleted = (await bob.data(DELETE, {"input": {"commentId": c["id"]}}))["deleteComment"]
    assert deleted["comment"]["deleted"] is True
    assert (await _article(demo_client, slug))["commentCount"] == count0 + 1


@pytest.mark.parametrize(
    ("body", "field"),
    [("", ["body"]), ("   \n\t ", ["body"]), ("x" * 10_001, ["body"])],
)
async def test_bad_bodies_are_refused_and_change_nothing(
    demo_client: GraphQLClient, body: str, field: list[str]
) -> None:
    alice = await demo_client.log_in("alice")
    article = await _article(demo_client)
    before = await _snapshot()
    data = await alice.data(POST, {"input": {"articleId": article["id"], "body": body}})
    assert data["postComment"]["comment"] is None
    assert [(e["code"], e["field"]) for e in data["postComment"]["errors"]] == [
        ("VALIDATION", field)
    ]
    assert await _snapshot() == before


async def test_a_ten_thousand_character_body_is_accepted(demo_client: GraphQLClient) -> None:
    alice = await demo_client.log_in("alice")
    article = await _article(demo_client)
    data = await alice.data(POST, {"input": {"articleId": article["id"], "body": "y" * 10_000}})
    assert data["postComment"]["errors"] == []
    assert len(data["postComment"]["comment"]["body"]) == 10_000


@dataclass(frozen=True)
class Targets:
    """A demo database, alice's session on it, an article without comments and a comment on
    another article."""

    settings: Settings
    alice: str
    article_id: str
    foreign_comment_id: str


@pytest.fixture(scope="module")
async def targets(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Targets:
    """One demo database per backend for the refusals below rather than one per case (loading the
    demo data takes seconds): each refusal changes nothing, and asserts so."""
    url = await new_database(request, backend, tmp_path_factory.mktemp(backend))
    settings = await prepare_database(url, demo=True)
    async for gql in _client_for(settings):
        alice = await gql.log_in("alice")
        article_id = (await _article(gql))["id"]
        foreign = (
            await models.Comment.filter(deleted=False)
            .exclude(article_id=from_global_id(article_id)[1])
            .order_by("id")
            .first()
        )
        assert foreign is not None
        foreign_id = to_global_id("Comment", foreign.id)
    assert alice.token is not None
    return Targets(settings, alice.token, article_id, foreign_id)


@pytest.fixture
async def on_targets(targets: Targets) -> AsyncIterator[GraphQLClient]:
    """A client of an app on ``targets``' database, with its own rate limits."""
    async for gql in _client_for(targets.settings, MemoryRateLimiter(clock=FakeClock())):
        yield gql


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(
            POST,
            lambda t: {"articleId": to_global_id("Article", 999999), "body": "x"},
            id="post-to-a-missing-article",
        ),
        pytest.param(
            POST,
            lambda t: {
                "articleId": t.article_id,
                "body": "x",
                "parentId": to_global_id("Comment", 999999),
            },
            id="reply-to-a-missing-comment",
        ),
        pytest.param(
            POST,
            lambda t: {"articleId": t.article_id, "body": "x", "parentId": t.foreign_comment_id},
            id="reply-to-a-comment-on-another-article",
        ),
        pytest.param(
            EDIT,
            lambda t: {"commentId": to_global_id("Comment", 999999), "body": "x"},
            id="edit-a-missing-comment",
        ),
        pytest.param(
            DELETE,
            lambda t: {"commentId": to_global_id("Comment", 999999)},
            id="delete-a-missing-comment",
        ),
        pytest.param(
            REPORT,
            lambda t: {"commentId": to_global_id("Comment", 999999), "reason": "spam"},
            id="report-a-missing-comment",
        ),
    ],
)
async def test_missing_targets_are_not_found_and_change_nothing(
    on_targets: GraphQLClient,
    targets: Targets,
    query: str,
    variables: Callable[[Targets], dict[str, Any]],
) -> None:
    alice = on_targets.as_user(targets.alice)
    before = await _snapshot()
    data = await alice.data(query, {"input": variables(targets)})
    payload = next(iter(data.values()))
    assert payload["comment"] is None
    assert payload["errors"][0]["code"] == "NOT_FOUND"
    assert await _snapshot() == before


async def test_malformed_ids_are_bad_input_and_anonymous_posts_unauthenticated(
    on_targets: GraphQLClient, targets: Targets
) -> None:
    alice = on_targets.as_user(targets.alice)
    before = await _snapshot()
    body = await alice.post(POST, {"input": {"articleId": "garbage", "body": "x"}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["data"] is None
    body = await on_targets.post(POST, {"input": {"articleId": targets.article_id, "body": "x"}})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await _snapshot() == before


async def test_reports_once_per_user_and_the_moderation_queue(demo_client: GraphQLClient) -> None:
    alice = await demo_client.log_in("alice")
    bob = await demo_client.log_in("bob")
    admin = await demo_client.log_in("admin")
    target = await models.Comment.filter(deleted=False, report_count=0).order_by("id").first()
    assert target is not None
    gid = to_global_id("Comment", target.id)
    for user in (alice, bob):
        data = await user.data(REPORT, {"input": {"commentId": gid, "reason": "  spam   link "}})
        assert data["reportComment"] == {"comment": {"id": gid}, "errors": []}
    before = await _snapshot()
    data = await alice.data(REPORT, {"input": {"commentId": gid, "reason": "again"}})
    assert data["reportComment"]["errors"][0]["code"] == "VALIDATION"
    data = await alice.data(REPORT, {"input": {"commentId": gid, "reason": " "}})
    assert data["reportComment"]["errors"][0]["field"] == ["reason"]
    assert await _snapshot() == before
    assert (
        await models.CommentReport.get(comment_id=target.id, user__username="alice")
    ).reason == ("spam link")

    queue = await admin.data(
        "{ reportedComments(first: 5) { totalCount nodes { id reportCount } } }"
    )
    assert queue["reportedComments"]["nodes"][0] == {"id": gid, "reportCount": 2}
    assert queue["reportedComments"]["totalCount"] == 1
    body = await alice.post(
        "query($id: ID!) { node(id: $id) { ... on Comment { body reportCount } } }", {"id": gid}
    )
    assert body["data"]["node"] == {"body": target.body, "reportCount": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_comment_rate_limit_with_bursts(demo_client: GraphQLClient, clock: FakeClock) -> None:
    alice = await demo_client.log_in("alice")
    bob = await demo_client.log_in("bob")
    article = await _article(demo_client)
    for i in range(5):
        data = await alice.data(POST, {"input": {"articleId": article["id"], "body": f"burst {i}"}})
        assert data["postComment"]["errors"] == []
    before = await _snapshot()
    data = await alice.data(POST, {"input": {"articleId": article["id"], "body": "one too many"}})
    assert data["postComment"]["comment"] is None
    assert data["postComment"]["errors"][0]["code"] == "RATE_LIMITED"
    assert data["postComment"]["errors"][0]["retryAfterSeconds"] == 12  # 5 a minute
    assert await _snapshot() == before
    # Other users are not affected.
    data = await bob.data(POST, {"input": {"articleId": article["id"], "body": "bob's turn"}})
    assert data["postComment"]["errors"] == []
    clock.advance(12)
    data = await alice.data(POST, {"input": {"articleId": article["id"], "body": "later"}})
    assert data["postComment"]["errors"] == []


async def test_fifty_concurrent_posts_get_sequences_without_gaps(
    fresh_client: GraphQLClient, clock: FakeClock
) -> None:
    from datetime import UTC, datetime

    author = await models.Author.create(slug="w", name="W Riter")
    category = await models.Category.create(slug="c", name="C", path="/", depth=0)
    now = datetime.now(UTC)
    row = await models.Article.create(
        slug="busy",
        title="Busy",
        excerpt="e",
        body="b",
        word_count=1,
        published_at=now,
        updated_at=now,
        author=author,
        category=category,
    )
    gid = to_global_id("Article", row.id)
    users = [await fresh_client.sign_up(f"user{i:02d}") for i in range(10)]

    async def post(i: int, parent_id: str | None = None) -> dict[str, Any]:
        variables: dict[str, Any] = {"articleId": gid, "body": f"comment {i}"}
        if parent_id:
            variables["parentId"] = parent_id
        data = await users[i % 10].data(POST, {"input": variables})
        payload: dict[str, Any] = data["postComment"]
        assert payload["errors"] == [], payload["errors"]
        return payload

    # 50 at once, 5 by each of 10 users (the burst allowance).
    results = await asyncio.gather(*(post(i) for i in range(50)))
    assert sorted(r["comment"]["sequence"] for r in results) == list(range(1, 51))
    row = await models.Article.get(id=row.id)
    assert (row.comment_count, row.comment_seq) == (50, 50)
    assert (await fresh_client.data(ARTICLE, {"slug": "busy"}))["article"]["commentCount"] == 50

    # Then 25 replies to one comment while 20 other comments are deleted, all at once.
    clock.advance(60)
    target = results[0]["comment"]["id"]
    victims = [r["comment"]["id"] for r in results[1:21]]

    async def delete(i: int, comment_id: str) -> None:
        owner = int(
            next(r for r in results if r["comment"]["id"] == comment_id)["comment"]["body"].split()[
                1
            ]
        )
        data = await users[owner % 10].data(DELETE, {"input": {"commentId": comment_id}})
        assert data["deleteComment"]["errors"] == []

    await asyncio.gather(
        *(post(i, target) for i in range(25)),
        *(delete(i, victim) for i, victim in enumerate(victims)),
    )
    row = await models.Article.get(id=row.id)
    assert (row.comment_count, row.comment_seq) == (50 + 25 - 20, 75)
    sequences = await models.Comment.filter(article_id=row.id).values_list("sequence", flat=True)
    assert sorted(sequences) == list(range(1, 76))
    assert (await models.Comment.get(id=from_global_id(target)[1])).reply_count == 25

    # Replies deleted while others are posted to the same parent (row-lock order matters).
    clock.advance(60)
    replies = await models.Comment.filter(parent_id=from_global_id(target)[1]).order_by("id")
    doomed = replies[:10]

    async def delete_reply(reply: models.Comment) -> None:
        author = await models.User.get(id=reply.author_id)
        owner = users[int(author.username.removeprefix("user"))]
        data = await owner.data(DELETE, {"input": {"commentId": to_global_id("Comment", reply.id)}})
        assert data["deleteComment"]["errors"] == []

    await asyncio.gather(*(post(i, target) for i in range(10)), *(delete_reply(r) for r in doomed))
    row = await models.Article.get(id=row.id)
    assert (row.comment_count, row.comment_seq) == (55, 85)
    assert (await models.Comment.get(id=from_global_id(target)[1])).reply_count == 25


LAST_SEQUENCE = """
query($slug: String!) {
  article(slug: $slug) { id commentCount lastCommentSequence }
  articles(first: 100) { nodes { slug lastCommentSequence } }
}
"""


async def test_last_comment_sequence_is_the_resume_point_of_a_read(
    demo_client: GraphQLClient,
) -> None:
    alice = await demo_client.log_in("alice")
    rows = {row.slug: row for row in await models.Article.all()}
    slug = max(rows, key=lambda s: rows[s].comment_seq)
    data = await demo_client.data(LAST_SEQUENCE, {"slug": slug})
    # Every way to an article reads the same counter, the one the write path keeps.
    assert data["article"]["lastCommentSequence"] == rows[slug].comment_seq > 0
    assert {n["slug"]: n["lastCommentSequence"] for n in data["articles"]["nodes"]} == {
        s: rows[s].comment_seq for s in rows if s in {n["slug"] for n in data["articles"]["nodes"]}
    }
    highest = max(c.sequence for c in await models.Comment.filter(article_id=rows[slug].id))
    assert data["article"]["lastCommentSequence"] == highest
    posted = (
        await alice.data(POST, {"input": {"articleId": data["article"]["id"], "body": "Next"}})
    )["postComment"]["comment"]
    after = (await demo_client.data(LAST_SEQUENCE, {"slug": slug}))["article"]
    assert after["lastCommentSequence"] == posted["sequence"] == highest + 1
    assert after["commentCount"] == data["article"]["commentCount"] + 1
