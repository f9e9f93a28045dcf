"""CPU time and memory from Linux /proc (NaN or 0 where there is none)."""

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
