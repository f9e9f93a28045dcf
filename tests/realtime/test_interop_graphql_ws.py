"""The reference client (npm ``graphql-ws``) against our graphql-transport-ws server.

The app runs under a real uvicorn server on loopback; ``tests/realtime/interop/client.mjs`` subscribes to
``commentAdded`` and ``oddsUpdated``, posts a comment and buys shares over HTTP, waits for both
live messages, runs a query over the socket and prints what it received as one JSON line.

Needs ``node`` and ``npm``: the first run installs the pinned client with ``npm ci`` into
``tests/realtime/interop/node_modules`` (git-ignored). Without them the test skips, unless
``AGORA_REQUIRE_SERVICES=1``, which makes that a failure.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tortoise import Tortoise

from app import create_app
from db import models
from db.config import tortoise_config
from demo.seed import load_demo_data
from demo.specs import CENTRAL_ASIA_SLUG
from settings import Settings
from tests.conftest import GraphQLClient, forget_compiled_statements
from tests.services import free_port, unavailable

INTEROP = Path(__file__).parent / "interop"
NPM_CI_TIMEOUT_SECONDS = 300
CLIENT_TIMEOUT_SECONDS = 60
COMMENT_BODY = "Checked with the reference graphql-ws client: **live** and in order."


def _node_and_npm() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        unavailable(f"{missing} not installed: cannot run the graphql-ws reference client")
    assert node is not None and npm is not None
    return node, npm


def _installed() -> bool:
    """Whether node_modules holds exactly the versions package.json pins."""
    pinned: dict[str, str] = json.loads((INTEROP / "package.json").read_text())["dependencies"]
    for name, version in pinned.items():
        manifest = INTEROP / "node_modules" / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


async def _npm_ci(npm: str) -> None:
    """Install the pinned client from package-lock.json, unless it is there already."""
    if _installed():
        return
    process = await asyncio.create_subprocess_exec(
        npm,
        "ci",
        "--no-audit",
        "--no-fund",
        cwd=INTEROP,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), NPM_CI_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        unavailable(f"`npm ci` in tests/realtime/interop took over {NPM_CI_TIMEOUT_SECONDS} s")
    if process.returncode != 0 or not _installed():
        tail = output.decode(errors="replace").strip()[-800:]
        unavailable(
            f"`npm ci` in tests/realtime/interop failed (exit {process.returncode}): {tail}"
        )


@asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[str]:
    """The app under a real uvicorn server on loopback; yields ``host:port``."""
    forget_compiled_statements()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped it
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def _run_client(node: str, *args: str) -> dict[str, Any]:
    """Run client.mjs; its JSON line, or the test fails with what it said."""
    process = await asyncio.create_subprocess_exec(
        node,
        "client.mjs",
        *args,
        cwd=INTEROP,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"client.mjs ran over {CLIENT_TIMEOUT_SECONDS} s", pytrace=False)
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    if process.returncode != 0:
        pytest.fail(
            f"client.mjs exited {process.returncode}:\n{stderr}\n{stdout}".strip(), pytrace=False
        )
    lines = stdout.strip().splitlines()
    assert lines, f"client.mjs printed nothing; stderr: {stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def _load_demo_data(settings: Settings) -> tuple[int, int]:
    """Load the demo data; the showcase article's (id, comment_seq)."""
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(settings))
    try:
        await load_demo_data()
        article = await models.Article.get(slug=CENTRAL_ASIA_SLUG)
        return article.id, article.comment_seq
    finally:
        await Tortoise.close_connections()


ARTICLE = """
query($slug: String!) {
  article(slug: $slug) { id markets { id odds: outcomes { id } } }
  stats { articleCount }
}
"""


async def test_reference_graphql_ws_client_gets_live_comments_odds_and_query_results(
    fresh_settings: Settings,
) -> None:
    node, npm = _node_and_npm()
    await _npm_ci(npm)
    _, comment_seq = await _load_demo_data(fresh_settings)

    async with _served(fresh_settings) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as http:
            alice = await GraphQLClient(http).log_in("alice")
            assert alice.token
            before = await alice.data(ARTICLE, {"slug": CENTRAL_ASIA_SLUG})
        article = before["article"]
        market = article["markets"][0]
        outcome_id = market["odds"][0]["id"]

        seen = await _run_client(
            node,
            f"ws://{address}/graphql",
            alice.token,
            article["id"],
            market["id"],
            f"http://{address}/graphql",
            outcome_id,
            COMMENT_BODY,
        )

    # commentAdded: the comment just posted, with the article's next sequence.
    assert seen["posted"]["sequence"] == comment_seq + 1
    assert seen["comment"] == {
        "id": seen["posted"]["id"],
        "sequence": comment_seq + 1,
        "body": COMMENT_BODY,
        "author": {"username": "alice"},
    }
    # oddsUpdated: the odds at once (no trade), then the trade's update with the next seq.
    first, live = seen["oddsFirst"], seen["oddsLive"]
    assert first["market"] == {"id": market["id"]}
    assert first["lastTrade"] is None
    assert isinstance(first["seq"], int)
    assert live["seq"] == first["seq"] + 1
    assert live["lastTrade"] == {
        "amount": "5.00",
        "shares": seen["trade"]["shares"],
        "outcome": {"id": outcome_id},
        "user": {"username": "alice"},
    }
    assert seen["trade"]["amount"] == "5.00"
    assert [o["id"] for o in live["outcomes"]] == [o["id"] for o in market["odds"]]
    assert live["outcomes"] != first["outcomes"]  # buying moved the probabilities
    assert seen["oddsMessages"] == 2
    # A query over the socket: one `next` with the same result as over HTTP, then `complete`.
    assert seen["query"] == {"data": {"stats": before["stats"]}}
    # The protocol as the reference client saw it.
    trace = seen["trace"]
    assert trace["connected"] == {"payload": None}
    received = trace["received"]
    assert received[0] == "connection_ack"
    assert sorted({m.split(":")[0] for m in received}) == ["complete", "connection_ack", "next"]
    completed = [m.split(":", 1)[1] for m in received if m.startswith("complete:")]
    assert len(completed) == 1  # only the query: the subscriptions were ended by the client
    assert received[-2:] == [f"next:{completed[0]}", f"complete:{completed[0]}"]
    assert trace["closed"] == {"code": 1000, "reason": "Normal Closure"}
