"""CPU time, memory, process trees and sockets from Linux /proc (NaN or 0 where there is none).

A server of several workers (``uvicorn --workers N``: a supervisor and its spawned children) is
measured as its whole process tree: :func:`tree_cpu_seconds`, :func:`tree_rss_kib`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import os
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """CPU time process ``pid`` (all its threads, ended ones too) has used so far.

    From the process's CPU-time clock (nanoseconds, what the scheduler accounts), else from
    /proc/<pid>/stat's utime + stime, counted in clock ticks (10 ms): too coarse for a batch
    that costs a few dozen ticks.
    """
    clock = _cpu_clock(pid)
    if clock is not None:
        try:
            return time.clock_gettime(clock)
        except OSError:
            pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def _cpu_clock(pid: int) -> int | None:
    """The clock id of ``pid``'s CPU time (clock_getcpuclockid(3)), or None."""
    libc = _libc()
    clock = ctypes.c_int()
    if libc is None or libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        return None
    return clock.value


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces): state is [0]."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def reaped_cpu_seconds(pid: int) -> float:
    """CPU time of the children ``pid`` has waited for (cutime + cstime, in clock ticks).

    When a worker ends and its supervisor reaps it, the kernel adds the worker's CPU time to
    these fields of the supervisor: that is how a tree's sum keeps the CPU of a worker that
    ended during a measurement. (One that has ended and is not reaped yet is missed until then.)
    """
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def start_time(pid: int) -> int:
    """When ``pid`` started (clock ticks after boot): with the pid, names a process (pids are
    reused); -1 if there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None else -1


def children(pid: int) -> list[int]:
    """The direct children of ``pid``.

    From /proc/<pid>/task/*/children where the kernel has it (CONFIG_PROC_CHILDREN), else by
    reading every /proc/*/stat's ppid.
    """
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    try:
        lists = [task / "children" for task in tasks.iterdir()]
    except OSError:
        return []
    if lists and lists[0].exists():
        for path in lists:
            try:
                found.extend(int(child) for child in path.read_text().split())
            except OSError:
                continue  # a thread that ended meanwhile
        return sorted(set(found))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (children before grandchildren); [] if ``pid`` is gone."""
    if start_time(pid) < 0:
        return []
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children(parent)]
        tree.extend(frontier)
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU time used so far by ``pid`` and every descendant, living or reaped (NaN if ``pid`` is
    gone): the processes' CPU clocks plus what each has reaped of its children."""
    tree = process_tree(pid)
    if not tree:
        return math.nan
    total = 0.0
    for member in tree:
        own = cpu_seconds(member)
        if not math.isnan(own):  # else it ended meanwhile: its parent counts it once reaped
            total += own + reaped_cpu_seconds(member)
    return total


def pin_tree(pid: int, cpus: set[int]) -> int:
    """Restrict ``pid``, its descendants and all their threads to ``cpus`` (threads they start
    later inherit it); how many threads were pinned (0: ``pid`` is gone)."""
    pinned = 0
    for member in process_tree(pid):
        try:
            tasks = [int(task.name) for task in Path(f"/proc/{member}/task").iterdir()]
        except OSError:
            continue  # ended meanwhile
        for task in tasks:
            try:
                os.sched_setaffinity(task, cpus)
                pinned += 1
            except OSError:
                continue  # a thread that ended meanwhile
    return pinned


def tree_rss_kib(pid: int) -> int:
    """The sum of VmRSS over ``pid`` and its descendants in KiB (shared pages count in each)."""
    return sum(rss_kib(member) for member in process_tree(pid))


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` has open (empty if it is gone)."""
    inodes = set()
    try:
        entries = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return set()
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


TCP_ESTABLISHED, TCP_LISTEN = "01", "0A"


def tcp_sockets(port: int) -> tuple[set[int], dict[int, int]]:
    """Sockets on local TCP port ``port`` (IPv4): the listening ones' inodes, and the
    established ones' inodes with their peer's port."""
    listening: set[int] = set()
    established: dict[int, int] = {}
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return listening, established
    for line in lines:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        if int(local.rsplit(":", 1)[1], 16) != port or inode == 0:
            continue
        if state == TCP_LISTEN:
            listening.add(inode)
        elif state == TCP_ESTABLISHED:
            established[inode] = int(remote.rsplit(":", 1)[1], 16)
    return listening, established


def accepted_connections(pids: list[int], port: int) -> dict[int, list[int]]:
    """For each of ``pids`` that holds the listening socket of ``port`` (a server process, or
    a worker sharing its supervisor's socket): the peer ports of the connections it accepted."""
    listening, established = tcp_sockets(port)
    found: dict[int, list[int]] = {}
    for pid in pids:
        inodes = socket_inodes(pid)
        if inodes & listening:
            found[pid] = sorted(established[inode] for inode in inodes if inode in established)
    return found


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS) of process ``pid`` in KiB; 0 if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def machine_busy() -> float:
    """CPU seconds every process on the machine has used so far (/proc/stat)."""
    try:
        line = Path("/proc/stat").read_text().split("\n", 1)[0]
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in line.split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
