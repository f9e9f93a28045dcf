"""``make services`` (``python -m app.devservices``): a throwaway PostgreSQL and Redis on loopback,
for trying ``make serve WORKERS=2`` on one machine.

Both run from the installed binaries (``initdb``, ``pg_ctl``, ``createdb``, ``redis-server``) in
one temporary folder, on free ports of 127.0.0.1, in the foreground: the command prints the
``export DATABASE_URL=… REDIS_URL=…`` line to paste into another shell and waits; Ctrl-C or
SIGTERM stops both and deletes the folder, so every run starts empty. PostgreSQL refuses to run
as root: as root it runs as the ``postgres`` system user (``runuser -u postgres --``). It trusts
every local connection, without a password: for trying things, not for data you want to keep.

Only the standard library is used (the same servers as ``tests/services.py`` and
``bench/harness/databases.py`` start for their own purposes; either could start them through
``LocalServices``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

EXIT_MISSING = 2
EXIT_FAILED = 1
# Where Debian's and Ubuntu's packages put the server binaries (not on PATH), newest first.
POSTGRES_DIRS = tuple(Path(f"/usr/lib/postgresql/{v}/bin") for v in range(18, 12, -1))
DATABASE = "agora"
START_TIMEOUT_SECONDS = 60


class Unavailable(Exception):
    """What is missing to start the services, and which package provides it (the message)."""


@dataclass(frozen=True)
class Binaries:
    """The programs the services run; ``runuser`` only when running as root."""

    initdb: str
    pg_ctl: str
    createdb: str
    redis_server: str
    runuser: str | None


def find_binaries(
    which: Callable[[str], str | None] = shutil.which,
    postgres_dirs: Sequence[Path] = POSTGRES_DIRS,
    as_root: bool | None = None,
) -> Binaries:
    """Every binary needed, or Unavailable naming each missing one and its apt package."""
    as_root = os.geteuid() == 0 if as_root is None else as_root

    def postgres(name: str) -> str | None:
        found = which(name)
        if found:
            return found
        for folder in postgres_dirs:
            if (folder / name).is_file():
                return str(folder / name)
        return None

    wanted = {
        "initdb": (postgres("initdb"), "postgresql"),
        "pg_ctl": (postgres("pg_ctl"), "postgresql"),
        "createdb": (postgres("createdb"), "postgresql"),
        "redis-server": (which("redis-server"), "redis-server"),
    }
    if as_root:
        wanted["runuser"] = (which("runuser"), "util-linux")
    missing = [(name, package) for name, (path, package) in wanted.items() if path is None]
    if missing:
        names = ", ".join(name for name, _ in missing)
        packages = " ".join(sorted({package for _, package in missing}))
        raise Unavailable(
            f"agora: cannot start the services: {names} not found (on PATH or in "
            f"/usr/lib/postgresql/*/bin). Install them with: apt-get install {packages}"
        )
    return Binaries(
        initdb=str(wanted["initdb"][0]),
        pg_ctl=str(wanted["pg_ctl"][0]),
        createdb=str(wanted["createdb"][0]),
        redis_server=str(wanted["redis-server"][0]),
        runuser=wanted["runuser"][0] if as_root else None,
    )


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class LocalServices:
    """PostgreSQL and Redis in ``folder`` (created; deleted by ``stop``)."""

    def __init__(self, binaries: Binaries, folder: Path) -> None:
        self.binaries = binaries
        self.folder = folder
        self.postgres_port = free_port()
        self.redis_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.postgres_started = False

    @property
    def database_url(self) -> str:
        """DATABASE_URL of the empty ``agora`` database."""
        return f"postgres://postgres@127.0.0.1:{self.postgres_port}/{DATABASE}"

    @property
    def redis_url(self) -> str:
        """REDIS_URL of the Redis server."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _as_postgres(self) -> list[str]:
        return [self.binaries.runuser, "-u", "postgres", "--"] if self.binaries.runuser else []

    def _run(self, command: list[str], what: str) -> None:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{what} failed: {(done.stderr or done.stdout).strip()[-600:]}")

    def start(self) -> None:
        """Start both (PostgreSQL first, with an empty ``agora`` database); RuntimeError if
        one doesn't come up."""
        data = self.folder / "postgres"
        if self.binaries.runuser:
            # The postgres user owns everything it touches (the folder is 0700).
            shutil.chown(self.folder, user="postgres")
        self._run(
            [
                *self._as_postgres(),
                self.binaries.initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
                # Text search folds case by LC_CTYPE: C folds ASCII only.
                "--lc-ctype",
                "C.UTF-8",
            ],
            "initdb",
        )
        options = (
            f"-p {self.postgres_port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            # A throwaway server: nothing needs to survive a crash.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            [
                *self._as_postgres(),
                self.binaries.pg_ctl,
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(self.folder / "postgres.log"),
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "start",
            ],
            "starting PostgreSQL",
        )
        self.postgres_started = True
        self._run(
            [
                self.binaries.createdb,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.postgres_port),
                "-U",
                "postgres",
                DATABASE,
            ],
            "createdb",
        )
        self.redis = subprocess.Popen(
            [
                self.binaries.redis_server,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own process group: the terminal's Ctrl-C is ours to handle, then we stop it.
            start_new_session=True,
        )
        if not _wait_for_port(self.redis_port, START_TIMEOUT_SECONDS):
            raise RuntimeError("redis-server did not start")

    def failure(self) -> str | None:
        """Why a service stopped by itself, or None while both run."""
        if self.redis is not None and self.redis.poll() is not None:
            return f"redis-server exited (code {self.redis.returncode})"
        pid_file = self.folder / "postgres" / "postmaster.pid"
        try:
            os.kill(int(pid_file.read_text().split("\n", 1)[0]), 0)
        except (OSError, ValueError):
            return "PostgreSQL stopped"
        return None

    def stop(self) -> None:
        """Stop both and delete the folder (whatever was started)."""
        if self.redis is not None:
            self.redis.terminate()
            try:
                self.redis.wait(10)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait()
            self.redis = None
        if self.postgres_started:
            subprocess.run(
                [
                    *self._as_postgres(),
                    self.binaries.pg_ctl,
                    "-D",
                    str(self.folder / "postgres"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                check=False,
            )
            self.postgres_started = False
        shutil.rmtree(self.folder, ignore_errors=True)


def main() -> int:
    """Start both, print how to use them, wait for Ctrl-C or SIGTERM, stop both."""
    try:
        binaries = find_binaries()
    except Unavailable as exc:
        print(exc, file=sys.stderr)
        return EXIT_MISSING
    stop = threading.Event()

    def on_signal(sig: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    services = LocalServices(binaries, Path(tempfile.mkdtemp(prefix="agora-services-")))
    try:
        try:
            services.start()
        except RuntimeError as exc:
            print(f"agora: {exc}", file=sys.stderr)
            return EXIT_FAILED
        print(
            f"# A throwaway PostgreSQL (database {DATABASE!r}) and Redis on 127.0.0.1, in "
            f"{services.folder}\n"
            "# In another shell:\n"
            f"export DATABASE_URL={services.database_url} REDIS_URL={services.redis_url}\n"
            "# make serve WORKERS=2\n"
            "# Ctrl-C (or SIGTERM) here stops both and deletes everything.",
            flush=True,
        )
        while not stop.wait(0.5):
            failure = services.failure()
            if failure is not None:
                print(f"agora: {failure}; stopping", file=sys.stderr)
                return EXIT_FAILED
        return 0
    finally:
        services.stop()
        print(f"# stopped; deleted {services.folder}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
