"""The benchmark database: a fresh SQLite file, an empty PostgreSQL database given by URL, or a
throwaway PostgreSQL server started from the installed binaries (``initdb``, ``pg_ctl``).

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` system user
(``runuser -u postgres -- …``) in a temporary folder it owns. The app under test migrates and
seeds the database itself (``app.prepare_database``, run from ``--app-root``); the bench reads it
through :class:`Database`, a direct driver connection, never through the project's modules.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness.servers import free_port, python_env

POSTGRES_SCHEMES = ("postgres://", "postgresql://", "asyncpg://")

# The stable entry point of every version of the app: migrate, then load the demo data.
PREPARE = (
    "import asyncio, app; from settings import load_settings; "
    "asyncio.run(app.prepare_database(load_settings()))"
)


class Unavailable(RuntimeError):
    """No database of the kind asked for can be had here (the reason is the message)."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def run_in_app(
    app_root: Path, url: str, args: Sequence[str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python args…`` from ``app_root`` on the database ``url`` (output captured)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=app_root,
        env=python_env(app_root, {"DATABASE_URL": url, "AGORA_ENV": "test"}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def prepare_database(app_root: Path, url: str) -> float:
    """Migrate ``url`` and load the demo data, as the app in ``app_root`` does; seconds taken."""
    began = time.perf_counter()
    done = run_in_app(app_root, url, ["-c", PREPARE])
    if done.returncode != 0:
        raise RuntimeError(
            f"preparing the database from {app_root} failed ({done.returncode}):\n"
            + (done.stdout + done.stderr)[-3000:]
        )
    return time.perf_counter() - began


class Database:
    """A direct connection (aiosqlite, asyncpg) for the bench's own reads; ``?`` placeholders."""

    def __init__(self, url: str, conn: Any) -> None:
        self.url = url
        self.conn = conn
        self.sqlite = is_sqlite(url)

    @classmethod
    async def connect(cls, url: str) -> Database:
        if is_sqlite(url):
            import aiosqlite

            conn: Any = await aiosqlite.connect(url.split("://", 1)[1].split("?", 1)[0])
            conn.row_factory = aiosqlite.Row
        else:
            import asyncpg

            conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
        return cls(url, conn)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self.sqlite:
            rows = await self.conn.execute_fetchall(sql, list(params))
        else:
            numbers = iter(range(1, 10_000))
            sql = re.sub(r"\?", lambda _m: f"${next(numbers)}", sql)
            rows = await self.conn.fetch(sql, *params)
        return [dict(row) for row in rows]

    async def version(self) -> str:
        """ "SQLite 3.x" or "PostgreSQL 16.x"."""
        if self.sqlite:
            return "SQLite " + str((await self.fetch("SELECT sqlite_version() AS v"))[0]["v"])
        rows = await self.fetch("SELECT current_setting('server_version') AS v")
        return "PostgreSQL " + str(rows[0]["v"])

    async def close(self) -> None:
        await self.conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def ensure_empty_postgres(url: str) -> None:
    """Refuse a PostgreSQL database that already has tables: the benchmark needs a fresh one."""
    async with await Database.connect(url) as db:
        rows = await db.fetch(
            "SELECT count(*) AS n FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
    if rows[0]["n"]:
        raise Unavailable(f"the database must be empty, it has {rows[0]['n']} tables: {url}")


# -- a throwaway PostgreSQL server --------------------------------------------------------------


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for version in ("17", "16", "15", "14", "13"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    return None


@dataclass
class PostgresServer:
    """A running throwaway server in ``folder``; ``url(db)`` is a DATABASE_URL on it."""

    port: int
    folder: str
    as_user: str | None = None

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, check=False)

    def stop(self) -> None:
        pg_ctl = _binary("pg_ctl")
        if pg_ctl:
            self.run(pg_ctl, "-D", f"{self.folder}/data", "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Start a throwaway server on a free loopback port, or raise Unavailable with the reason."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise Unavailable("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    as_user = None
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise Unavailable("running as root without runuser: cannot start PostgreSQL")
        as_user = "postgres"
    folder = tempfile.mkdtemp(prefix="agora-bench-pg-")
    server = PostgresServer(free_port(), folder, as_user)
    if as_user:
        shutil.chown(folder, user=as_user)
        os.chmod(folder, 0o700)
    data = f"{folder}/data"
    # LC_CTYPE C.UTF-8: text search folds case beyond ASCII (the collation stays C).
    flags = ["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C"]
    flags += ["--lc-ctype", "C.UTF-8"]
    init = server.run(initdb, "-D", data, *flags)
    if init.returncode != 0:
        server.stop()
        raise Unavailable(f"initdb failed: {init.stderr.strip()[-400:]}")
    options = (
        f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    log = Path(f"{folder}/log")
    start = server.run(pg_ctl, "-D", data, "-o", options, "-l", str(log), "-w", "-t", "60", "start")
    if start.returncode != 0:
        tail = log.read_text(errors="replace")[-400:] if log.exists() else ""
        server.stop()
        raise Unavailable(f"PostgreSQL did not start: {start.stderr.strip()[-300:]} {tail}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return server


async def create_database(server: PostgresServer, name: str) -> str:
    """A fresh, empty database on ``server``; returns its URL."""
    async with await Database.connect(server.url("postgres")) as db:
        await db.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await db.conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)
