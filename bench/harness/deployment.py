"""How the app under test is deployed: one process or several workers, its database, its broker.

``--workers N`` starts the app as README's "Running several workers" does, ``uvicorn
app:create_app --factory --workers N`` with DATABASE_URL and REDIS_URL in its environment (the
uvicorn command line, not a serve module of the app: ``--app-root`` may be an older tree).
Several workers need PostgreSQL and Redis: each worker is its own process, so an in-process
broker would never carry one worker's events to another's subscribers, and a SQLite file would
be one writer lock shared by several processes, which is not the deployment being measured.
``--redis`` starts a throwaway ``redis-server`` from the installed binary on a free loopback
port for the run; ``--redis-url`` uses one that runs already.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.harness import procfs
from bench.harness.databases import Unavailable, is_sqlite
from bench.harness.servers import free_port

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers N`` and ``--redis`` / ``--redis-url URL``."""
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn workers of the app (default 1: one process); > 1 needs PostgreSQL and Redis",
    )
    broker = parser.add_mutually_exclusive_group()
    broker.add_argument(
        "--redis",
        action="store_true",
        help="start a throwaway redis-server for the run and give the app its REDIS_URL",
    )
    broker.add_argument("--redis-url", default="", help="the app's REDIS_URL (redis://…)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what is not the deployment README describes (``parser.error`` says why)."""
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.redis_url and not args.redis_url.startswith(REDIS_SCHEMES):
        parser.error("--redis-url must be a redis://, rediss:// or unix:// URL")
    if args.workers == 1:
        return
    if not (getattr(args, "postgres", False) or getattr(args, "database_url", None)):
        parser.error(
            f"--workers {args.workers} needs PostgreSQL (--postgres, or --database-url "
            "postgres://…): the workers are separate processes, and on one SQLite file they "
            "would queue on its single writer lock, which is not the deployment README's "
            '"Running several workers" describes'
        )
    if not (args.redis or args.redis_url):
        parser.error(
            f"--workers {args.workers} needs Redis (--redis starts a throwaway redis-server, "
            "--redis-url redis://… uses yours): without it an event published on one worker "
            "never reaches the subscribers of another"
        )


@dataclass(frozen=True)
class Deployment:
    """The app's workers, database and broker: ``env()`` and ``workers`` are what
    ``servers.uvicorn_server`` takes to start the app so."""

    database_url: str
    redis_url: str = ""
    workers: int = 1

    @classmethod
    def of(cls, args: argparse.Namespace, database_url: str) -> Deployment:
        """The deployment the options ask for (``--redis`` has filled ``args.redis_url``)."""
        return cls(database_url, getattr(args, "redis_url", "") or "", getattr(args, "workers", 1))

    @property
    def database(self) -> str:
        return "SQLite" if is_sqlite(self.database_url) else "PostgreSQL"

    def describe(self) -> str:
        """E.g. "2 uvicorn workers, PostgreSQL, Redis" or "1 process, SQLite, in-process broker"."""
        processes = f"{self.workers} uvicorn workers" if self.workers > 1 else "1 process"
        broker = "Redis" if self.redis_url else "in-process broker"
        return f"{processes}, {self.database}, {broker}"

    def env(self) -> dict[str, str]:
        """What the app's environment gets: DATABASE_URL, and REDIS_URL if there is one."""
        env = {"DATABASE_URL": self.database_url}
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def as_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "database": self.database,
            "broker": "redis" if self.redis_url else "memory",
        }


# -- a throwaway Redis --------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A ``redis-server`` this run started on a loopback port (no persistence)."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cpu_seconds(self) -> float:
        return procfs.cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_redis() -> RedisServer:
    """``redis-server`` on a free loopback port, or raise Unavailable with the reason."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise Unavailable("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--protected-mode", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"redis-server exited with {process.returncode} on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise Unavailable(f"redis-server did not listen on port {port} within 10 s")


@contextmanager
def chosen_redis(args: argparse.Namespace) -> Iterator[RedisServer | None]:
    """With ``--redis``, a throwaway server for the run (its URL put in ``args.redis_url``),
    stopped afterwards; otherwise None (``--redis-url``, if given, is used as it is)."""
    if not getattr(args, "redis", False):
        yield None
        return
    server = start_redis()
    args.redis_url = server.url
    print(f"throwaway Redis on 127.0.0.1:{server.port}")
    try:
        yield server
    finally:
        server.stop()
