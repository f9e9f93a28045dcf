"""Servers under test: uvicorn (or any command) in a subprocess on a free loopback port.

The app under test runs from its ``--app-root`` (``cwd`` and ``PYTHONPATH`` set to it, the same
interpreter as the bench); bench's own servers (the baselines) run from this tree, ``BENCH_ROOT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
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

from bench.harness import pinning, procfs

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

# --production (bench.harness.cli): the app's servers run with production logging and metrics
# on, whatever the benchmark's own environment says (issue 13's harness). Baselines (factories
# of bench.*) are left as they are.
PRODUCTION_ENV = {
    "AGORA_ENV": "production",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
    # In production /metrics answers only when told who may read it: the bench, here.
    "METRICS_ALLOW": "127.0.0.1",
    # Tracing stays off whatever this shell says: it is not part of what is measured.
    "OTLP_ENDPOINT": "",
}
# prometheus-client turns to multi-process mode when either is present at all.
PRODUCTION_UNSET = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")
production = False  # set by bench.harness.cli from --production


def production_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with production logging and metrics on (``PRODUCTION_ENV``) and the
    multi-process variables removed."""
    merged = {**env, **PRODUCTION_ENV}
    for name in PRODUCTION_UNSET:
        merged.pop(name, None)
    return merged


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
    """One server process: its command, where it runs, its port and its log file.

    With ``workers`` > 1 the process is a supervisor (``uvicorn --workers N``) whose children
    share its listening socket: CPU and memory are the whole process tree's, and the server is
    ready once every worker answers.
    """

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    workers: int = 1
    serving_at_start: tuple[int, ...] = ()  # the serving processes once ready

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
        # --pin auto: on the server CPU before it starts a thread (they inherit it).
        pinning.pin_server(self)

    def stop(self) -> None:
        """Terminate the process (and only it: a supervisor stops its workers), killing it if it
        lingers, then any of its descendants still alive (a supervisor that had to be killed
        leaves its workers behind)."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        descendants = [(pid, procfs.start_time(pid)) for pid in procfs.process_tree(proc.pid)[1:]]
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        for pid, started in descendants:
            while procfs.start_time(pid) == started and time.monotonic() < deadline:
                time.sleep(0.05)
            if procfs.start_time(pid) == started:  # the same process, not a reused pid
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    async def wait_ready(self, within: float = 60.0) -> None:
        """Poll /healthz until the server answers (with several workers: every worker); fail
        early if its process died."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    response = await client.get(f"{self.base_url}/healthz")
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(
                    f"{self.name} server not ready after {within:.0f}s:\n{self.log_tail()}"
                )
        while self.workers > 1:
            self._check_alive()
            answered = await self._answering_workers()
            if len(answered) >= self.workers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name}: {len(answered)} of {self.workers} workers answer after "
                    f"{within:.0f}s:\n{self.log_tail()}"
                )
            await asyncio.sleep(0.2)
        self.serving_at_start = tuple(self.worker_pids())
        pinning.pin_server(self)  # and any thread or worker made meanwhile

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} server exited with {self.process.returncode}:\n" + self.log_tail()
            )

    async def _answering_workers(self) -> set[int]:
        """Workers that accepted one of a few /healthz requests and answered it.

        A uvicorn worker accepts connections only once its app has started, and the kernel hands
        each connection on the shared socket to one of the workers waiting: a worker holding one
        of these answered connections is serving.
        """
        request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode()
        writers: list[asyncio.StreamWriter] = []
        try:
            for _ in range(4 * self.workers):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writers.append(writer)
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                if not head.startswith(b"HTTP/1.1 200"):
                    return set()
            return {pid for pid, peers in self.connections().items() if peers}
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError):
            return set()
        finally:
            for writer in writers:
                writer.close()

    def worker_pids(self) -> list[int]:
        """The processes that serve: the server process, or a supervisor's workers (its
        children that hold the listening socket: not, say, multiprocessing's resource tracker)."""
        return list(self.connections())

    def connections(self) -> dict[int, list[int]]:
        """Per serving process (one that holds the listening socket; a supervisor does too but
        never accepts): the client ports of the connections it has accepted."""
        if self.process is None:
            return {}
        tree = procfs.process_tree(self.process.pid)
        return procfs.accepted_connections(tree[1:] if self.workers > 1 else tree[:1], self.port)

    def spread(self, clients: set[int] | None = None) -> str:
        """How the accepted connections are spread over the serving processes: "pid 12: 9,
        pid 13: 7"; with ``clients`` (client ports), those counted apart from the others."""
        parts = []
        for pid, peers in sorted(self.connections().items()):
            if clients is None:
                parts.append(f"pid {pid}: {len(peers)}")
            else:
                mine = sum(1 for peer in peers if peer in clients)
                parts.append(f"pid {pid}: {mine} (+{len(peers) - mine} other)")
        return ", ".join(parts) or "none"

    def replaced_workers(self) -> str:
        """ "" if the processes serving now are those that served once ready, else which
        ended (a worker that dies is restarted by its supervisor: a crash, not a figure)."""
        if self.process is None or self.process.poll() is not None:
            return ""  # ended: exit_problem says how
        now = tuple(self.worker_pids())
        if not self.serving_at_start or now == self.serving_at_start:
            return ""
        gone = sorted(set(self.serving_at_start) - set(now))
        new = sorted(set(now) - set(self.serving_at_start))
        return f"{self.name}: serving processes {gone} ended during the run, {new} started"

    def cpu_seconds(self) -> float:
        """User + system CPU time the server (all its processes) has used so far (NaN if
        unknown); a worker that ended counts once its supervisor has reaped it."""
        return procfs.tree_cpu_seconds(self.process.pid) if self.process else float("nan")

    def pin(self, cpus: set[int]) -> None:
        """Run the server (every process and thread, and those it starts later) on ``cpus``
        only: two servers measured against each other share the same core's conditions."""
        if self.process is None or procfs.pin_tree(self.process.pid, cpus) == 0:
            raise RuntimeError(f"{self.name}: no process to pin to CPUs {sorted(cpus)}")

    def rss_kib(self) -> int:
        """The server's resident memory in KiB, summed over its processes (0 if unknown)."""
        return procfs.tree_rss_kib(self.process.pid) if self.process else 0

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
    workers: int = 1,
) -> Server:
    """``uvicorn --factory`` ``factory`` from ``root`` on a free port (not started yet).

    ``env`` adds to this process's environment (DATABASE_URL at least); ``AGORA_ENV=test``
    unless it says otherwise. Targets take turns: idle connections stay open for the next round.
    ``workers`` > 1 adds ``--workers N`` and nothing else to the command line the benchmarks
    have always used for one process, so that two runs differ only in the deployment.
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
        *(["--workers", str(workers)] if workers > 1 else []),
        *options,
    ]
    environment = python_env(root, {"AGORA_ENV": "test", **env}, paths)
    if production and not factory.startswith("bench."):
        environment = production_env(environment)
    log = folder / f"{name}-{port}.log"
    return Server(name, command, root, environment, port, log, workers=workers)


def bench_module_server(name: str, module: str, args: Sequence[str], folder: Path) -> Server:
    """``python -m module args… --port N`` from this tree (a bench baseline, not started yet)."""
    port = free_port()
    command = [sys.executable, "-m", module, *args, "--port", str(port)]
    env = python_env(BENCH_ROOT, {})
    return Server(name, command, BENCH_ROOT, env, port, folder / f"{name}-{port}.log")
