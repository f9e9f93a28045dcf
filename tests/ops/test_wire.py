"""A request uvicorn's parser can't read (a URL over 80 KiB, a malformed request line, a header
too long) is refused before the app sees it: by every start path of the app, with a JSON 400 and
a code like every other refusal, never uvicorn's plain text."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from app.wire import MESSAGE
from tests.ops.processes import exited, start_serve, stop
from tests.realtime.test_scaleout import _wait_ready


@pytest.fixture
async def served(server: tuple[Any, str]) -> str:
    """The address of ``server``."""
    return server[1]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Any, str]]:
    """``python -m app.serve`` (one worker) on a new SQLite file, production mode (no seeding):
    its process and address."""
    process, address = start_serve(
        {
            "DATABASE_URL": f"sqlite://{tmp_path / 'agora.sqlite3'}",
            "AGORA_ENV": "production",
            "WORKERS": "1",
        },
        tmp_path / "serve.log",
    )
    try:
        await _wait_ready(address)
        yield process, address
        process.send_signal(signal.SIGTERM)
        assert (await exited(process, 15, tmp_path / "serve.log"))[0] == 0
    finally:
        stop(process)


async def _raw(address: str, request: bytes) -> tuple[bytes, dict[str, str], Any]:
    """Send ``request`` as it is; the status line, headers and JSON body answered."""
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # the server closes the connection
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {
        name.decode().lower(): value.decode()
        for name, _, value in (line.partition(b": ") for line in lines)
    }
    return status, headers, json.loads(body)


REFUSED = {"data": None, "errors": [{"message": MESSAGE, "extensions": {"code": "BAD_USER_INPUT"}}]}


async def test_unreadable_requests_are_refused_in_json(served: str) -> None:
    # A GET whose query string is over llhttp's limit (a long document: send it in a POST).
    url = "/graphql?query=" + quote("{ __typename }" + " " * 30_000)
    async with httpx.AsyncClient(base_url=f"http://{served}") as http:
        small = await http.get("/graphql?query=" + quote("{ __typename }" + " " * 1_000))
        assert small.json() == {"data": {"__typename": "Query"}}
    for request in (
        f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /graphql HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
    ):
        status, headers, body = await _raw(served, request)
        assert status == b"HTTP/1.1 400 Bad Request", request[:40]
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        assert body == REFUSED
    # A long header the parser takes reaches the app, which answers in JSON too.
    status, headers, body = await _raw(
        served, b"GET /graphql HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    )
    assert status.startswith(b"HTTP/1.1 4") and headers["content-type"] == "application/json"
    assert body["errors"][0]["extensions"]["code"]
    # The server is unharmed.
    async with httpx.AsyncClient(base_url=f"http://{served}") as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_one_server_ignores_sighup_as_the_supervisor_does(server: tuple[Any, str]) -> None:
    """A closed terminal (SIGHUP) is no reason to stop without draining; the fixture's SIGTERM
    still ends it cleanly."""
    process, address = server
    os.kill(process.pid, signal.SIGHUP)
    await asyncio.sleep(0.5)
    assert process.poll() is None
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        assert (await http.get("/healthz")).status_code == 200
