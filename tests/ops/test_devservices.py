"""``make services`` (``python -m app.devservices``): a PostgreSQL and a Redis that work, printed
as the lines to paste, gone (processes and folder) after SIGTERM; missing binaries named with
their apt package."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from app.devservices import EXIT_MISSING, Unavailable, find_binaries
from tests.ops.processes import exited
from tests.services import unavailable

ROOT = Path(__file__).resolve().parents[2]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _exists(path: Path) -> bool:
    return path.exists()


async def _redis_ping(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"PING\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    await writer.wait_closed()
    return answer


def _start() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.devservices"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_make_services_starts_both_and_removes_them() -> None:
    try:
        find_binaries()
    except Unavailable as exc:
        unavailable(str(exc))
    process = _start()
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not any("Ctrl-C" in line for line in lines):
            line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 90)
            assert line, f"exited early: {process.stderr.read() if process.stderr else ''}"
            lines.append(line)
        export = next(line for line in lines if line.startswith("export "))
        found = re.fullmatch(
            r"export DATABASE_URL=(postgres://postgres@127\.0\.0\.1:(\d+)/agora) "
            r"REDIS_URL=(redis://127\.0\.0\.1:(\d+)/0)\n",
            export,
        )
        assert found, export
        database_url, pg_port, _, redis_port = found.groups()
        folder = Path(re.findall(r"in (/\S+)", lines[0])[0])
        assert "make serve WORKERS=2" in "".join(lines)

        conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
        try:
            assert await conn.fetchval("SELECT current_database()") == "agora"
            assert (
                await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                == 0
            )
        finally:
            await conn.close()
        assert await _redis_ping(int(redis_port)) == b"+PONG\r\n"
        assert _exists(folder)

        process.send_signal(signal.SIGTERM)
        code, _ = await exited(process, 60)
        assert code == 0
        assert not _answers(int(pg_port)) and not _answers(int(redis_port))
        assert not _exists(folder)
    finally:
        if process.poll() is None:  # a failure above: let it stop its servers all the same
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_missing_binaries_are_named_with_their_packages() -> None:
    with pytest.raises(Unavailable) as refused:
        find_binaries(which=lambda name: None, postgres_dirs=(), as_root=True)
    assert str(refused.value) == (
        "agora: cannot start the services: initdb, pg_ctl, createdb, redis-server, runuser not "
        "found (on PATH or in /usr/lib/postgresql/*/bin). Install them with: apt-get install "
        "postgresql redis-server util-linux"
    )
    only_redis = {"initdb": "/x/initdb", "pg_ctl": "/x/pg_ctl", "createdb": "/x/createdb"}
    with pytest.raises(
        Unavailable, match=r"redis-server not found .* apt-get install redis-server$"
    ):
        find_binaries(which=only_redis.get, postgres_dirs=(), as_root=False)


def test_without_redis_the_command_says_so_and_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.devservices"],
        cwd=ROOT,
        # Nothing on PATH: redis-server (and runuser) can't be found; PostgreSQL's own folder
        # may still hold its binaries.
        env={**os.environ, "PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_MISSING
    assert done.stdout == ""
    assert "redis-server" in done.stderr and "apt-get install" in done.stderr
    assert "redis-server" in done.stderr.split("Install them with: apt-get install ")[1]
