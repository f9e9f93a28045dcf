"""``articlePublished`` over a real websocket, and the scheduler telling subscribers of a
scheduled article once, at its time, whichever worker runs the slot."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import clock
from app.housekeeping import Job, Scheduler
from db import models
from domain_events import Event
from news.events import ArticleChanged
from news.service import ArticleFields, Newsroom
from settings import Settings
from tests.conftest import seed_demo
from tests.news.test_newsroom import CREATE, PUBLISH, ClockFile, draft_input, ok
from tests.realtime.test_realtime import Live, next_payload, recv, serving, subscribe

PUBLISHED = """subscription($c: String, $t: String) {
  articlePublished(categorySlug: $c, tagSlug: $t) { slug status category { slug } }
}"""


@pytest.fixture
async def live(fresh_settings: Settings) -> AsyncIterator[Live]:
    await seed_demo(fresh_settings)
    async with serving(fresh_settings) as server:
        yield server


@pytest.fixture
def clock_file(tmp_path: Path) -> Iterator[ClockFile]:
    yield ClockFile(tmp_path / "clock")
    clock.use_offset_file(None)


async def _token(live: Live, username: str) -> str:
    data = await live.gql(
        'mutation($u: String!) { logIn(input: {username: $u, password: "demo-password"}) '
        "{ token } }",
        {"u": username},
    )
    token: str = data["logIn"]["token"]
    return token


async def _draft(live: Live, token: str, **change: Any) -> dict[str, Any]:
    data = await live.gql(CREATE, {"input": {**await draft_input(), **change}}, token)
    return ok(data["createArticle"])


async def _quiet(ws: Any, seconds: float = 0.5) -> bool:
    """Whether nothing but pings arrives for ``seconds``."""
    with contextlib.suppress(TimeoutError):
        while True:
            message = json.loads(await recv(ws, seconds))
            if message["type"] != "ping":
                return False
    return True


async def test_articles_are_told_as_they_go_live_narrowed_by_category_and_tag(
    live: Live,
) -> None:
    editor = await _token(live, "editor")
    everything, politics, azerbaijan = [await live.connect() for _ in range(3)]
    try:
        await subscribe(everything, PUBLISHED, {})
        await subscribe(politics, PUBLISHED, {"c": "politics"})
        await subscribe(azerbaijan, PUBLISHED, {"t": "azerbaijan"})
        await asyncio.sleep(0.2)

        # A draft is told to nobody; publishing it tells all three (it is in Politics' subtree
        # and tagged azerbaijan).
        first = await _draft(live, editor)
        assert await _quiet(everything, 0.3)
        published = await live.gql(PUBLISH, {"input": {"articleId": first["id"]}}, editor)
        expected = {
            "slug": ok(published["publishArticle"])["slug"],
            "status": "PUBLISHED",
            "category": {"slug": "bilateral-relations"},
        }
        for ws in (everything, politics, azerbaijan):
            assert (await next_payload(ws))["data"]["articlePublished"] == expected

        # Elsewhere and untagged: only the unfiltered subscription hears of it.
        other = await _draft(live, editor, categorySlug="technology", tagSlugs=[])
        other = ok(
            (await live.gql(PUBLISH, {"input": {"articleId": other["id"]}}, editor))[
                "publishArticle"
            ]
        )
        told = await next_payload(everything)
        assert told["data"]["articlePublished"]["slug"] == other["slug"]
        assert await _quiet(politics) and await _quiet(azerbaijan)
    finally:
        for ws in (everything, politics, azerbaijan):
            await ws.close()


async def test_unknown_or_malformed_filters_are_refused(live: Live) -> None:
    ws = await live.connect()
    try:
        for sub_id, variables, code in (
            ("1", {"c": "no-such-category"}, "NOT_FOUND"),
            ("2", {"t": "no-such-tag"}, "NOT_FOUND"),
            ("3", {"t": "x" * 121}, "BAD_USER_INPUT"),
        ):
            await subscribe(ws, PUBLISHED, variables, sub_id)
            message = json.loads(await recv(ws))
            while message["type"] == "ping":
                message = json.loads(await recv(ws))
            assert message["type"] == "error" and message["id"] == sub_id, message
            assert [e["extensions"]["code"] for e in message["payload"]] == [code], message
    finally:
        await ws.close()


async def test_a_scheduled_article_is_told_once_at_its_time(
    live: Live, clock_file: ClockFile
) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    clock_file.move_to(start)
    editor = await _token(live, "editor")
    ws = await live.connect()
    try:
        await subscribe(ws, PUBLISHED, {"c": "politics"})
        await asyncio.sleep(0.2)
        draft = await _draft(live, editor)
        at = start + timedelta(hours=1)
        scheduled = await live.gql(
            PUBLISH, {"input": {"articleId": draft["id"], "publishAt": at.isoformat()}}, editor
        )
        slug = ok(scheduled["publishArticle"])["slug"]
        assert ok(scheduled["publishArticle"])["status"] == "SCHEDULED"
        scheduler: Scheduler = live.app.state.scheduler
        await scheduler.tick()
        assert await _quiet(ws)

        clock_file.move_to(at + timedelta(seconds=30))
        await scheduler.tick()
        told = await next_payload(ws)
        assert told["data"]["articlePublished"]["slug"] == slug
        # Its slot is done: later looks tell nothing again.
        clock_file.move_to(at + timedelta(minutes=5))
        await scheduler.tick()
        assert await _quiet(ws)
    finally:
        await ws.close()


async def test_two_workers_tell_a_scheduled_article_once(
    fresh_settings: Settings, fresh_client: Any
) -> None:
    await models.User.create(username="writer", display_name="Writer", role=models.Role.AUTHOR)
    await models.Category.create(slug="world", name="World", path="/1/")
    told: list[Event] = []

    async def record(event: Event) -> None:
        told.append(event)

    start = datetime(2030, 1, 1, tzinfo=UTC)
    moment = start
    newsroom = Newsroom(replace(fresh_settings), publish=record, clock=lambda: moment)
    writer = await models.User.get(username="writer")
    article = await newsroom.create(
        writer, ArticleFields(title="Later", body="Soon.", category_slug="world")
    )
    await newsroom.publish(writer, article.id, start + timedelta(minutes=10))
    assert [e.kind for e in told if isinstance(e, ArticleChanged)] == ["created", "scheduled"]
    told.clear()

    workers = [
        Scheduler(
            fresh_settings,
            [Job("announce_scheduled_articles", 10, newsroom.announce_due)],
            clock=lambda: moment,
            worker=name,
        )
        for name in "ab"
    ]
    for step in range(120):  # 20 minutes of looks, both workers at once every 10 s
        moment = start + timedelta(seconds=10 * step + 1)
        await asyncio.gather(*(worker.tick() for worker in workers))
    assert told == [ArticleChanged("live", article.id, start + timedelta(minutes=10))]
    stored = await models.Article.get(id=article.id)
    assert stored.announced_at is not None
    runs = await models.JobRun.filter(job="announce_scheduled_articles", rows=1).count()
    assert runs == 1
