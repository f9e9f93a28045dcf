"""Servers under test: uvicorn (or any command) in a subprocess on a free loopback port.

The app under test runs from its ``--app-root`` (``cwd`` and ``PYTHONPATH`` set to it, the same
interpreter as the bench); bench's own servers (the baselines) run from this tree, ``BENCH_ROOT``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import procfs

# The repository this bench lives in (the default --app-root; where the baselines always run).
BENCH_ROOT = Path(__file__).resolve().parents[2]

# The server's logging where a benchmark reads the log: agora.* at INFO (trade retries),
# everything else at WARNING.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {"agora": {"level": "INFO"}},
}
RETRY_LINE = re.compile(r"retrying a trade after (\w+)")
LOUD_WORDS = ("WARNING", "ERROR", "CRITICAL", "Traceback", "Exception")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_env(root: Path, extra: dict[str, str], paths: Sequence[Path] = ()) -> dict[str, str]:
    """This process's environment plus ``extra``, importing from ``root`` (then ``paths``) only."""
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in (root, *paths))
    return env


@dataclass
class Server:
    """One server process: its command, where it runs, its port and its log file."""

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | str:
        return self.process.pid if self.process is not None else "?"

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        """Terminate the process (and only it), killing it if it lingers."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    async def wait_ready(self, within: float = 60.0) -> None:
        """Poll /healthz until the server answers; fail early if its process died."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} server exited with {self.process.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    response = await client.get(f"{self.base_url}/healthz")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} server not ready after {within:.0f}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (NaN if unknown)."""
        return procfs.cpu_seconds(self.process.pid) if self.process else float("nan")

    def rss_kib(self) -> int:
        """The server process's resident memory in KiB (0 if unknown)."""
        return procfs.rss_kib(self.process.pid) if self.process else 0

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def trade_retries(self) -> Counter[str]:
        """agora.trading's retries by cause (SQLite's busy database, a serialization failure)."""
        return Counter(match.group(1) for match in RETRY_LINE.finditer(self.log_text()))

    def loud_lines(self) -> list[str]:
        """Warnings, errors and tracebacks in the log (trade retries aside)."""
        return [
            line
            for line in self.log_text().splitlines()
            if any(word in line for word in LOUD_WORDS) and not RETRY_LINE.search(line)
        ]

    def exit_problem(self) -> str:
        """What went wrong if the process ended other than by our terminate, else ""."""
        if self.process is None or self.process.returncode in (0, -15, None):
            return ""
        return f"{self.name} server exit status {self.process.returncode}:\n{self.log_tail()}"


def log_config_options(folder: Path) -> list[str]:
    """uvicorn options for LOG_CONFIG (written into ``folder``)."""
    path = folder / "logging.json"
    path.write_text(json.dumps(LOG_CONFIG))
    return ["--log-config", str(path)]


def uvicorn_server(
    name: str,
    factory: str,
    root: Path,
    folder: Path,
    env: dict[str, str],
    options: Sequence[str] = (),
    paths: Sequence[Path] = (),
) -> Server:
    """``uvicorn --factory`` ``factory`` from ``root`` on a free port (not started yet).

    ``env`` adds to this process's environment (DATABASE_URL at least); ``AGORA_ENV=test``
    unless it says otherwise. Targets take turns: idle connections stay open for the next round.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "600",
        *options,
    ]
    environment = python_env(root, {"AGORA_ENV": "test", **env}, paths)
    return Server(name, command, root, environment, port, folder / f"{name}-{port}.log")


def bench_module_server(name: str, module: str, args: Sequence[str], folder: Path) -> Server:
    """``python -m module args… --port N`` from this tree (a bench baseline, not started yet)."""
    port = free_port()
    command = [sys.executable, "-m", module, *args, "--port", str(port)]
    env = python_env(BENCH_ROOT, {})
    return Server(name, command, BENCH_ROOT, env, port, folder / f"{name}-{port}.log")
