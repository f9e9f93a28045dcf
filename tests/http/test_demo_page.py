"""GET /demo without a browser: the page and its config (the slug and every operation of
demo/operations) at each of its addresses, "No such article" for a malformed slug with a 404, a
JSON 404 when DEMO_PAGE is off, only the app's own scripts (the Content-Security-Policy allows no
other), and the operations the page runs valid against the published schema and within the
query limits. (The page itself runs in tests/browser/test_demo_page.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, build_schema, parse, validate

from app.pages import OPERATIONS, operations
from db import models
from demo.specs import CENTRAL_ASIA_SLUG
from settings import Settings
from tests.conftest import GraphQLClient, with_settings
from tests.http.test_protocol import _http

ROOT = Path(__file__).resolve().parents[2]
OTHER_SLUG = "climate-talks-race-to-close-gap-on-adaptation-finance"
CONFIG = re.compile(r'<script type="application/json" id="agora-config">(.*?)</script>', re.S)


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def config_of(html: str) -> dict[str, Any]:
    """The page's config, parsed from its JSON script tag."""
    match = CONFIG.search(html)
    assert match, html[:500]
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def walk(comments: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every comment of these threads, replies (as deep as loaded) after their parent."""
    for comment in comments:
        yield comment
        yield from walk(comment.get("replies", {"nodes": []})["nodes"])


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


@pytest.mark.parametrize(
    ("path", "slug"),
    [
        ("/demo", CENTRAL_ASIA_SLUG),
        (f"/demo/{CENTRAL_ASIA_SLUG}", CENTRAL_ASIA_SLUG),
        (f"/demo?slug={CENTRAL_ASIA_SLUG}", CENTRAL_ASIA_SLUG),
        (f"/demo/{OTHER_SLUG}", OTHER_SLUG),
        # Well formed but nothing's: the page asks, and says "No such article" itself.
        ("/demo?slug=no-such-article", "no-such-article"),
    ],
)
async def test_the_page_and_its_config_at_each_address(
    client: GraphQLClient, path: str, slug: str, vendored: None
) -> None:
    response = await client.http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert "script-src 'self';" in response.headers["content-security-policy"]
    config = config_of(response.text)
    assert config == {
        "url": "/graphql",
        "slug": slug,
        "operations": operations(),
        "maxNodeIds": 100,
    }
    assert "<title>Outpoll</title>" in response.text
    assert "Loading comments..." in response.text


@pytest.mark.parametrize(
    "path",
    ["/demo/Not_A_Slug", "/demo?slug=-dash-first", f"/demo?slug={'a' * 201}", "/demo?slug=%3Cb%3E"],
)
async def test_a_malformed_slug_is_the_page_saying_no_such_article_with_a_404(
    client: GraphQLClient, path: str
) -> None:
    response = await client.http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert config_of(response.text)["slug"] is None
    assert "<b>" not in response.text
    assert "No such article" in response.text  # the page's template for it


async def test_the_page_is_off_with_demo_page_false(demo_settings: Settings) -> None:
    async with _http(with_settings(demo_settings, demo_page=False)) as http:
        for path in ("/demo", f"/demo/{CENTRAL_ASIA_SLUG}"):
            response = await http.get(path)
            assert response.status_code == 404
            assert response.json() == {
                "errors": [
                    {
                        "message": "The demo page is off here (the DEMO_PAGE setting).",
                        "extensions": {"code": "NOT_FOUND"},
                    }
                ]
            }


async def test_the_page_loads_only_the_apps_own_assets(
    client: GraphQLClient, vendored: None
) -> None:
    html = (await client.http.get("/demo")).text
    tags = tags_of(html)
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    # No inline code (the CSP would refuse it): the config is JSON, the rest are files.
    assert [a.get("type") for a in scripts if "src" not in a] == ["application/json"]
    sources = [str(a["src"]) for a in scripts if "src" in a]
    assert sources[0].startswith("/assets/vendor/graphql-ws@")
    assert re.fullmatch(r"/assets/demo\.js\?v=[0-9a-f]{12}", sources[1])
    sheets = [str(a["href"]) for tag, a in tags if tag == "link" and a.get("rel") == "stylesheet"]
    assert len(sheets) == 1 and re.fullmatch(r"/assets/demo\.css\?v=[0-9a-f]{12}", sheets[0])
    assert not [(tag, name) for tag, a in tags for name in a if name.startswith("on")]
    for url in (*sources, *sheets):
        asset = await client.http.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    script = (await client.http.get(sources[1])).text
    assert script == (ROOT / "web" / "demo" / "demo.js").read_text()


def test_every_operation_is_one_named_after_its_file_and_valid() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    for path in sorted(OPERATIONS.glob("*.graphql")):
        document = parse(path.read_text())
        [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        assert operation.name is not None and operation.name.value == path.stem
        assert validate(schema, document) == [], path.name


def test_the_script_runs_only_operations_the_page_is_given() -> None:
    script = (ROOT / "web" / "demo" / "demo.js").read_text()
    used = set(re.findall(r'(?:gql\(|listen\(|changeComment\(entry, )"(\w+)"', script))
    used |= set(re.findall(r'name: selling \? "(\w+)" : "(\w+)"', script)[0])
    assert used == {
        "BuyShares",
        "CommentAdded",
        "CommentUpdated",
        "DeleteComment",
        "DemoArticle",
        "DemoPostComment",
        "DemoRefresh",
        "DemoReplies",
        "EditComment",
        "LogIn",
        "LogOut",
        "Me",
        "OddsUpdated",
        "Quote",
        "SellShares",
        "Stats",
        "Wallet",
    }
    assert used <= operations().keys()


async def test_the_page_queries_run_within_the_limits(client: GraphQLClient) -> None:
    ops = operations()
    article = (await client.data(ops["DemoArticle"], {"slug": CENTRAL_ASIA_SLUG}))["article"]
    assert article["slug"] == CENTRAL_ASIA_SLUG
    # The body comes rendered and sanitised, as stored with it (the page inserts it as HTML).
    stored = await models.ArticleHtml.get(article__slug=CENTRAL_ASIA_SLUG)
    assert article["bodyHtml"] == stored.html and stored.html.startswith("<p>")
    assert [c["name"] for c in article["breadcrumb"]] == [
        "Politics",
        "Diplomacy",
        "Bilateral Relations",
    ]
    threads = article["comments"]["nodes"]
    # Three levels reach every comment of the demo thread (14 visible, 1 deleted).
    everyone = list(walk(threads))
    assert article["commentCount"] == sum(not c["deleted"] for c in everyone) == 14
    assert all(c["replyCount"] == len(c.get("replies", {"nodes": []})["nodes"]) for c in everyone)
    # Anonymous: nobody's comment is the viewer's to change.
    assert not any(c["viewerCanEdit"] or c["viewerCanDelete"] for c in everyone)
    # The page's resume point and count base: the newest comment's sequence.
    assert article["lastCommentSequence"] == max(c["sequence"] for c in everyone)
    # After a reconnect, DemoRefresh reads the same comments by id (100 a request), and the count.
    ids = [c["id"] for c in everyone]
    refresh = await client.data(
        ops["DemoRefresh"], {"slug": CENTRAL_ASIA_SLUG, "ids": (ids * 7)[:100]}
    )
    assert refresh["article"] == {
        "commentCount": 14,
        "lastCommentSequence": article["lastCommentSequence"],
    }
    assert refresh["nodes"][: len(ids)] == [
        {k: c[k] for k in refresh["nodes"][0]} for c in everyone
    ]
    [market] = article["markets"]
    assert len(market["priceHistory"]) > 1 and market["viewerPosition"] == []
    assert (await client.data(ops["DemoArticle"], {"slug": "no-such-article"})) == {"article": None}
    stats = (await client.data(ops["Stats"]))["stats"]
    assert stats["articleCount"] == 50
    outcome = market["outcomes"][0]
    quote = (await client.data(ops["Quote"], {"outcomeId": outcome["id"], "amount": "10"}))["quote"]
    assert quote["amount"] == "10.00" and quote["probabilityBefore"] == outcome["probability"]
    alice = await client.log_in("alice")
    wallet = (await alice.data(ops["Wallet"]))["me"]
    assert wallet["username"] == "alice" and wallet["positions"]["nodes"]
    mine = (await alice.data(ops["DemoArticle"], {"slug": CENTRAL_ASIA_SLUG}))["article"]
    by_alice = [c for c in walk(mine["comments"]["nodes"]) if c["author"]["username"] == "alice"]
    assert by_alice and all(c["viewerCanEdit"] and c["viewerCanDelete"] for c in by_alice)
    # "Show replies" (for threads deeper than DemoArticle reaches) gets the same replies.
    for parent in (c for c in everyone if c["replyCount"]):
        node = (await client.data(ops["DemoReplies"], {"id": parent["id"]}))["node"]
        assert [r["id"] for r in node["replies"]["nodes"]] == [
            r["id"] for r in parent["replies"]["nodes"]
        ]
