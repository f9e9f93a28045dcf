"""What the browser tests share: headless Debian Chromium driven by playwright-core (pinned in
``tests/node``), the app under a real uvicorn with the demo data, and a folder for screenshots.

Chromium comes from Debian (``.ci/run`` installs it); ``AGORA_CHROMIUM`` names another binary.
Without it, or without the assets ``make assets`` fetches into ``web/node_modules``, the tests
skip with the reason (a failure under ``AGORA_REQUIRE_SERVICES=1``). Every request the pages
make to another host than the app's is blocked and reported, so a page that reaches for a CDN
fails its test.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.assets import installed
from demo.specs import CENTRAL_ASIA_SLUG
from tests.conftest import GraphQLClient, prepare_database, with_settings
from tests.nodetools import load_demo_data, node_tools, run_node, served
from tests.services import unavailable

# Screenshots of every run, for a person to look at (git-ignored).
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
BROWSER_SCRIPT_SECONDS = 90

ARTICLE = """
query($slug: String!) {
  article(slug: $slug) {
    id title commentCount
    markets { id outcomes { id label probability } }
  }
}
"""


def chromium() -> str:
    """The Chromium binary, or the test skips (fails when services are required)."""
    found = os.environ.get("AGORA_CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if not found:
        unavailable("chromium not installed (apt-get install chromium): cannot run browser tests")
    assert found
    return found


@dataclass
class Site:
    """The app on loopback with the demo data; runs browser scripts against it."""

    origin: str
    node: str
    chromium: str
    http: httpx.AsyncClient
    alice: GraphQLClient
    bob: GraphQLClient
    article: dict[str, Any]

    @property
    def market(self) -> dict[str, Any]:
        market: dict[str, Any] = self.article["markets"][0]
        return market

    async def run(self, script: str, **options: Any) -> dict[str, Any]:
        """Run ``tests/node/<script>`` with the origin, Chromium and ``options`` as its JSON."""
        argument = {
            "origin": self.origin,
            "executablePath": self.chromium,
            "screenshots": str(SCREENSHOTS),
            **options,
        }
        return await run_node(
            self.node, script, json.dumps(argument), seconds=BROWSER_SCRIPT_SECONDS
        )


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """The demo site served for one browser test, in a database of its own."""
    if not installed():
        unavailable("the browser assets aren't installed in web/node_modules: run `make assets`")
    async with open_site(tmp_path) as opened:
        yield opened


@asynccontextmanager
async def open_site(tmp_path: Path, **changes: Any) -> AsyncIterator[Site]:
    """The demo site on loopback, its settings changed by ``changes``."""
    executable = chromium()
    node = node_tools()
    SCREENSHOTS.mkdir(exist_ok=True)
    settings = with_settings(
        await prepare_database(f"sqlite://{tmp_path}/agora.sqlite3", demo=False),
        env="development",
        **changes,
    )
    await load_demo_data(settings)
    async with (
        served(settings) as address,
        httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as http,
    ):
        alice = await GraphQLClient(http).log_in("alice")
        bob = await GraphQLClient(http).log_in("bob")
        data = await alice.data(ARTICLE, {"slug": CENTRAL_ASIA_SLUG})
        yield Site(f"http://{address}", node, executable, http, alice, bob, data["article"])
