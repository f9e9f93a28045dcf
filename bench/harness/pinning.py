"""Where the benchmark's processes run: servers on one core, the load generator on another.

Issue 13's harness: the server under test and its baseline (and PostgreSQL, Redis, the peer)
pinned to the *server* core (0), the load generator (this process, or wrk) to the *client*
core (1), so the two never compete for a core and two servers measured in turn see the same
core's conditions. ``--pin auto`` (every benchmark's common options, ``bench.harness.cli``)
turns it on for the run; the default ``off`` keeps today's behaviour (the scheduler places
everything). With fewer than two usable cores nothing can be separated: the run says so and
goes on unpinned.

Once ``configure`` has been called, every :class:`bench.harness.servers.Server` pins itself
when it starts (``Server.start`` calls :func:`pin_server`), the throwaway PostgreSQL and Redis
of ``bench.harness.cli.run`` are pinned with it, and ``cli.run`` pins its own process (the
in-process load generator) to the client core. A benchmark that starts processes of its own
calls :func:`pin_server` / :func:`pin_pid` / :func:`client_preexec` itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import procfs

MODES = ("off", "auto")


@dataclass(frozen=True)
class Placement:
    """The CPUs servers and the load generator run on (None: wherever the scheduler puts it)."""

    server: frozenset[int] | None = None
    client: frozenset[int] | None = None
    note: str = "not pinned (--pin off)"

    @property
    def pinned(self) -> bool:
        return self.server is not None

    def as_json(self) -> dict[str, Any]:
        """For ``--json``: the CPUs of each side and the note."""
        return {
            "server_cpus": sorted(self.server) if self.server is not None else None,
            "client_cpus": sorted(self.client) if self.client is not None else None,
            "note": self.note,
        }


def plan(mode: str = "auto", usable: set[int] | None = None) -> Placement:
    """The placement ``mode`` asks for on this machine: ``auto`` puts servers on the lowest
    usable CPU and the load generator on the next one; ``off`` (or a single usable CPU, with a
    note saying so) pins nothing."""
    if mode == "off":
        return Placement()
    cpus = sorted(usable if usable is not None else os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Placement(
            note=f"not pinned: only {len(cpus)} usable CPU, the servers and the load generator "
            "share it (figures are lower and noisier than on two cores)"
        )
    server, client = frozenset({cpus[0]}), frozenset({cpus[1]})
    return Placement(
        server,
        client,
        f"servers (and PostgreSQL, Redis) pinned to CPU {cpus[0]}, "
        f"the load generator to CPU {cpus[1]}",
    )


# The placement of this run (``configure``); servers consult it as they start.
_current = Placement()


def configure(mode: str) -> Placement:
    """Set this run's placement from ``--pin``, print its note, pin this process (the load
    generator) to the client CPU; returns it."""
    global _current
    _current = plan(mode)
    if mode != "off":
        print(f"pinning: {_current.note}")
    if _current.client is not None:
        os.sched_setaffinity(0, _current.client)
    return _current


def current() -> Placement:
    """This run's placement (unpinned unless ``configure`` said otherwise)."""
    return _current


def pin_pid(pid: int, placement: Placement | None = None) -> int:
    """Pin ``pid``, its descendants and their threads to the server CPU; threads pinned (0 when
    unpinned, or the process is gone). Processes it forks later inherit it (PostgreSQL's
    backends, uvicorn's workers)."""
    chosen = placement or _current
    if chosen.server is None:
        return 0
    return procfs.pin_tree(pid, set(chosen.server))


def pin_server(server: Any, placement: Placement | None = None) -> None:
    """Pin a started :class:`~bench.harness.servers.Server` to the server CPU (nothing when
    unpinned). Call it right after ``start`` (threads it starts inherit it) and again once it
    is ready (to catch any thread made in between)."""
    chosen = placement or _current
    process = getattr(server, "process", None)
    if chosen.server is not None and process is not None and process.poll() is None:
        procfs.pin_tree(process.pid, set(chosen.server))


def client_preexec(placement: Placement | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that starts a load generator (wrk) on the
    client CPU; None when unpinned."""
    chosen = placement or _current
    if chosen.client is None:
        return None
    cpus = set(chosen.client)

    def preexec() -> None:
        os.sched_setaffinity(0, cpus)

    return preexec


def postmaster_pid(data_folder: str | Path) -> int | None:
    """The pid of the PostgreSQL server of ``data_folder`` (postmaster.pid's first line)."""
    try:
        return int(Path(data_folder, "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
