"""Every README shell block that calls ``curl`` runs, as written, against a live server on a fresh
demo database, and prints what its ``# …`` comment lines say it prints (an ellipsis ends what
is compared): Explore's query and subscription, the log-in, a persisted-query GET, an SSE
subscription with ``curl -N``, a request id echoed, /metrics.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from settings import Settings
from tests.conftest import seed_demo
from tests.realtime.test_realtime import Live, serving
from tests.services import unavailable

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_blocks() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    return [textwrap_dedent(b) for b in blocks if "curl " in b]


def textwrap_dedent(block: str) -> str:
    import textwrap

    return textwrap.dedent(block)


def expected_lines(block: str) -> list[str]:
    """What the block's comments say it prints: JSON results, SSE lines, a response header,
    a metric's HELP line."""
    shown = []
    for line in block.splitlines():
        text = line.strip()
        if text.startswith(("# {", "# event:", "# data:", "# x-request-id:", "# # HELP ")):
            shown.append(text[2:].split("…", 1)[0])
    return shown


@pytest.fixture
async def live(fresh_settings: Settings) -> AsyncIterator[Live]:
    settings = replace(fresh_settings, comment_rate="1000/1")
    await seed_demo(settings)
    async with serving(settings) as server:
        yield server


def test_the_readme_has_the_http_examples() -> None:
    blocks = curl_blocks()
    assert len(blocks) == 7
    assert any("curl -N" in b and "text/event-stream" in b for b in blocks)
    assert any("persistedQuery" in b and "-G" in b for b in blocks)
    assert all(expected_lines(b) for b in blocks)


@pytest.mark.parametrize("index", range(7))
async def test_readme_curl_examples_print_what_they_show(live: Live, index: int) -> None:
    if shutil.which("curl") is None or shutil.which("sha256sum") is None:
        unavailable("curl or sha256sum not installed: cannot run README's examples")
    block = curl_blocks()[index].replace("http://127.0.0.1:8000", live.url)
    # A stream never ends by itself: curl gives up after a few seconds, having printed it.
    script = 'curl() { command curl --max-time 4 "$@"; }\n' + block
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    output = out.decode()
    for expected in expected_lines(block):
        assert expected in output, (expected, output, err.decode())
