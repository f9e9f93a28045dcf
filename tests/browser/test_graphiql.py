"""GraphiQL in headless Chromium, from the app's own assets with every other host blocked: it
renders with its four tabs, runs the article-page tab and shows the article, and its
subscription tab (over the websocket) shows a comment the test posts over HTTP meanwhile.
Without the assets, and with the CDN out of reach, the page says why rather than stay blank."""

from __future__ import annotations

from pathlib import Path

from app.assets import CDN, VENDOR, locked_versions
from demo.specs import CENTRAL_ASIA_SLUG
from tests.browser.conftest import SCREENSHOTS, Site, open_site


async def test_graphiql_runs_the_article_page_and_a_live_subscription(site: Site) -> None:
    body = "Seen live in GraphiQL's subscription tab"
    seen = await site.run(
        "browser_graphiql.mjs", token=site.alice.token, articleId=site.article["id"], body=body
    )
    assert seen["steps"] == ["rendered", "queried", "subscribed"]
    assert seen["notice"] == 0  # the assets are local: no CDN notice
    assert seen["tabs"] == ["ArticlePage", "CommentAdded", "LogIn", "BuyShares"]
    assert seen["explorer"][0] == "Explorer"
    assert seen["article"]["slug"] == CENTRAL_ASIA_SLUG
    assert seen["article"]["title"] == site.article["title"]
    assert seen["article"]["commentCount"] == site.article["commentCount"]
    assert seen["article"]["bodyHtml"].startswith("<p>")
    assert seen["posted"]["errors"] == []
    live = seen["live"]
    assert live["id"] == seen["posted"]["comment"]["id"]
    assert live["sequence"] == seen["posted"]["comment"]["sequence"]
    assert live["body"] == body
    assert live["author"]["username"] == "alice"
    assert seen["blocked"] == []
    assert seen["problems"] == []
    for name in ("graphiql-article-page.png", "graphiql-subscription.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000


async def test_without_its_assets_or_the_cdn_graphiql_says_why(tmp_path: Path) -> None:
    async with open_site(tmp_path, assets_dir=str(tmp_path / "not-installed")) as site:
        seen = await site.run("browser_graphiql_offline.mjs")
    assert "no local copy of this page's scripts" in seen["notice"]
    assert "make assets" in seen["notice"]
    assert seen["message"] == (
        "GraphiQL could not load its scripts (React, ReactDOM, GraphiQL, "
        "GraphiQLPluginExplorer, graphqlWs): run `make assets` on the server, or check the "
        "network."
    )
    versions = locked_versions()
    assert seen["blocked"] == sorted(
        f"{CDN}/{vendor.package}@{versions[vendor.package]}/{vendor.file}"
        for vendor in VENDOR.values()
    )
    # What the browser says of each blocked file, and nothing else.
    assert all("net::ERR_BLOCKED_BY_CLIENT" in problem for problem in seen["problems"])
