"""What every node test needs: the pinned npm package in ``tests/node``, installed once; a node
script run with a timeout, its result one JSON line; the app under a real uvicorn on loopback.

``tests/node/package.json`` pins every npm package the suite runs (the reference clients and
graphql-http's audit) and ``package-lock.json`` their dependencies; ``npm ci`` installs them into
``tests/node/node_modules`` (git-ignored) the first time a node test runs, or whenever what is
there doesn't match the lock file. A file lock keeps parallel test processes from installing at
once. Without ``node`` or ``npm``, or when ``npm ci`` fails, node tests skip with the reason,
unless ``AGORA_REQUIRE_SERVICES=1``, which makes that a failure (``tests.services.unavailable``).

Every script prints one JSON line on stdout and exits 0, or exits non-zero with what went wrong
on stderr.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from tortoise import Tortoise

from app import create_app
from db.config import tortoise_config
from settings import Settings
from tests.conftest import forget_compiled_statements
from tests.services import free_port, unavailable

NODE_DIR = Path(__file__).resolve().parent / "node"
NPM_CI_TIMEOUT_SECONDS = 300
SCRIPT_TIMEOUT_SECONDS = 60
_LOCK = NODE_DIR / "node_modules.lock"


def node_and_npm() -> tuple[str, str]:
    """The ``node`` and ``npm`` executables, or the test skips (fails when services are
    required)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        unavailable(f"{missing} not installed: cannot run the node tests' npm clients")
    assert node is not None and npm is not None
    return node, npm


def installed() -> bool:
    """Whether ``node_modules`` holds exactly what ``package-lock.json`` locks (the pins of
    ``package.json`` among them)."""
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    pinned: dict[str, str] = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    packages: dict[str, dict[str, Any]] = lock["packages"]
    if lock["packages"][""].get("dependencies") != pinned:
        return False  # package.json changed and the lock file wasn't regenerated
    for path, entry in packages.items():
        if not path:
            continue
        manifest = NODE_DIR / path / "package.json"
        if not manifest.exists():
            if entry.get("optional") or entry.get("peer"):
                continue
            return False
        if json.loads(manifest.read_text()).get("version") != entry.get("version"):
            return False
    return True


def node_tools() -> str:
    """The ``node`` executable, with the pinned packages installed in ``tests/node``.

    Installs them with ``npm ci`` when they aren't there; a file lock makes a second test
    process wait for the first's install rather than run its own.
    """
    node, npm = node_and_npm()
    with _LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not installed():
                _npm_ci(npm)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return node


def _npm_ci(npm: str) -> None:
    try:
        run = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=NPM_CI_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        unavailable(f"`npm ci` in tests/node took over {NPM_CI_TIMEOUT_SECONDS} s")
        return
    if run.returncode != 0 or not installed():
        tail = run.stdout.decode(errors="replace").strip()[-800:]
        unavailable(f"`npm ci` in tests/node failed (exit {run.returncode}): {tail}")


async def run_node(
    node: str, script: str, *args: str, seconds: float = SCRIPT_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Run ``tests/node/<script>``; the JSON object of its last stdout line, or the test fails
    with what it said."""
    process = await asyncio.create_subprocess_exec(
        node,
        script,
        *args,
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{script} ran over {seconds} s", pytrace=False)
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    if process.returncode != 0:
        pytest.fail(
            f"{script} exited {process.returncode}:\n{stderr}\n{stdout}".strip(), pytrace=False
        )
    lines = stdout.strip().splitlines()
    assert lines, f"{script} printed nothing; stderr: {stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
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


async def load_demo_data(settings: Settings) -> int:
    """Load the demo data into ``settings``' migrated, empty database; returns the showcase
    article's (``CENTRAL_ASIA_SLUG``) ``comment_seq``, the last sequence its comments took."""
    from db import models
    from demo.seed import load_demo_data as load
    from demo.specs import CENTRAL_ASIA_SLUG

    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(settings))
    try:
        await load()
        article = await models.Article.get(slug=CENTRAL_ASIA_SLUG)
        return article.comment_seq
    finally:
        await Tortoise.close_connections()
