"""Throwaway servers for the tests: PostgreSQL from the installed binaries.

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` system user in a
temporary folder it owns. ``AGORA_TEST_POSTGRES_URL`` points the tests at a server someone else
started instead (``.ci/run`` may). Where no server can be had the tests skip with the reason,
unless ``AGORA_REQUIRE_SERVICES=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("AGORA_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (AGORA_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    """A running PostgreSQL server; ``url(db)`` is a DATABASE_URL for one of its databases."""

    host: str
    port: int
    user: str
    password: str = ""
    folder: str | None = None
    as_user: str | None = None

    def url(self, database: str) -> str:
        auth = f"{self.user}:{self.password}@" if self.password else f"{self.user}@"
        return f"postgres://{auth}{self.host}:{self.port}/{database}"

    def stop(self) -> None:
        if self.folder is None:
            return
        pg_ctl = _binary("pg_ctl")
        if pg_ctl:
            subprocess.run(
                [*self._prefix(), pg_ctl, "-D", f"{self.folder}/data", "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.folder, ignore_errors=True)

    def _prefix(self) -> list[str]:
        return ["runuser", "-u", self.as_user, "--"] if self.as_user else []


def start_postgres() -> PostgresServer:
    """Start a throwaway server, or explain (via ``unavailable``) why there is none."""
    external = os.environ.get("AGORA_TEST_POSTGRES_URL")
    if external:
        from urllib.parse import urlparse

        parsed = urlparse(external)
        return PostgresServer(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password or "",
        )
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    assert initdb and pg_ctl
    as_user = None
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            unavailable("running as root without runuser: cannot start PostgreSQL")
        as_user = "postgres"
    folder = tempfile.mkdtemp(prefix="agora-pg-")
    port = free_port()
    server = PostgresServer("127.0.0.1", port, "postgres", folder=folder, as_user=as_user)
    if as_user:
        shutil.chown(folder, user=as_user)
        os.chmod(folder, 0o700)
    prefix = server._prefix()
    init = subprocess.run(
        [
            *prefix,
            initdb,
            "-D",
            f"{folder}/data",
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
            # Text search folds case by LC_CTYPE: C folds ASCII only ("ТАШКЕНТ" ≠ "Ташкент").
            "--lc-ctype",
            "C.UTF-8",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        server.stop()
        unavailable(f"initdb failed: {init.stderr.strip()[-400:]}")
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    start = subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            f"{folder}/data",
            "-o",
            options,
            "-l",
            f"{folder}/log",
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if start.returncode != 0:
        log = (
            Path(f"{folder}/log").read_text(errors="replace")[-400:]
            if Path(f"{folder}/log").exists()
            else ""
        )
        server.stop()
        unavailable(f"PostgreSQL did not start: {start.stderr.strip()[-300:]} {log}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return server


async def create_database(server: PostgresServer, name: str) -> str:
    """A fresh, empty database on ``server``; returns its URL."""
    import asyncpg

    conn = await asyncpg.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password or None,
        database="postgres",
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name)


@dataclass
class RedisServer:
    """A throwaway redis-server on loopback that a test can stop and start again."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


def start_redis() -> RedisServer:
    """A throwaway Redis, or explain (via ``unavailable``) why there is none."""
    if not shutil.which("redis-server"):
        unavailable("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(free_port())
    server.start()
    return server


ROOT = Path(__file__).resolve().parent.parent
# Every log file a server of this test process wrote: the session's log check reads them too.
LOG_FILES: list[Path] = []


SERVER_LOGS: dict[int, Path] = {}


def start_app_process(
    env: dict[str, str], log: Path | None = None, host: str = "127.0.0.1"
) -> tuple[subprocess.Popen[bytes], str]:
    """The app in its own uvicorn process, started as README's command line starts it (no
    proxy headers, the websocket message limit), on a free port; returns it and "host:port".

    ``env`` adds to this process's environment (DATABASE_URL at least); output goes to ``log``
    (a temporary file when none is given); the session's log check reads it.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-proxy-headers",
        "--ws-max-size",
        "65536",
        "--timeout-graceful-shutdown",
        "10",
    ]
    # REDIS_LIMITS_TIMEOUT_MS: a loaded CI machine is not a Redis outage.
    full_env = {
        **os.environ,
        "AGORA_ENV": "test",
        "REDIS_LIMITS_TIMEOUT_MS": "2000",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    if log is None:
        # Always to a file the session's log check reads (inherited output went unchecked).
        handle, name = tempfile.mkstemp(prefix="agora-server-", suffix=".log")
        os.close(handle)
        log = Path(name)
    LOG_FILES.append(log)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    SERVER_LOGS[process.pid] = log
    return process, f"{host}:{port}"


def server_log_tail(process: subprocess.Popen[bytes], lines: int = 40) -> str:
    """The last ``lines`` of what a process from ``start_app_process`` wrote (for a failure's
    message: why a server never became ready)."""
    log = SERVER_LOGS.get(process.pid)
    if log is None or not log.exists():
        return "(no log)"
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(empty log)"
