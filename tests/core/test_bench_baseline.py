"""The hand-written baseline of ``bench.article_page`` answers exactly what the API answers.

The benchmark refuses to measure when the two disagree, but it runs only under ``make bench``:
a change to what readers see (the newsroom's drafts and scheduled articles) once left the
baseline serving drafts for weeks unnoticed. Here both answer every article page readers can
open, an unknown slug and the home feed, over the same demo database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from bench import handwritten
from bench.article_page import ARTICLE_PAGE, HOME
from db import models
from settings import Settings
from tests.conftest import GraphQLClient, readers_articles


@pytest.fixture
async def baseline(demo_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = handwritten.create_app(demo_settings.database_url)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hw") as http,
    ):
        yield http


async def answer(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    response = await http.post(path, content=json.dumps(body).encode())
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_article_page_and_the_home_feed_agree(
    client: GraphQLClient, baseline: httpx.AsyncClient
) -> None:
    listed = await client.data("{ articles(first: 100) { totalCount nodes { slug } } }")
    slugs = [node["slug"] for node in listed["articles"]["nodes"]]
    assert len(slugs) == listed["articles"]["totalCount"] >= 40
    for slug in [*slugs, "no-such-article"]:
        expected = await client.post(ARTICLE_PAGE, {"slug": slug})
        assert "errors" not in expected, expected
        assert await answer(baseline, "/article-page", {"slug": slug}) == expected, slug
    home = await client.post(HOME)
    assert "errors" not in home, home
    assert await answer(baseline, "/home", {}) == home


async def test_drafts_and_scheduled_articles_are_not_served_by_the_baseline(
    client: GraphQLClient, baseline: httpx.AsyncClient
) -> None:
    visible = {a.slug for a in await readers_articles()}
    hidden = [a.slug for a in await models.Article.all() if a.slug not in visible]
    assert len(hidden) == 3  # the demo's two drafts and its scheduled article
    for slug in hidden:
        assert await answer(baseline, "/article-page", {"slug": slug}) == {
            "data": {"article": None}
        }
    home = await answer(baseline, "/home", {})
    shown = {e["node"]["slug"] for e in home["data"]["latest"]["edges"]}
    assert not shown & set(hidden)
