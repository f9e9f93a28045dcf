"""Closed-loop HTTP load: a list of planned requests from a number of workers, timed.

The load generator shares the machine with the server it measures, so it must cost little:
each request is written as prepared HTTP/1.1 bytes on a keep-alive connection and the answer
read back by Content-Length, about a tenth of what an httpx request costs this process. (With
httpx the load generator saturated a core before the hand-written baseline did, and its rate
was the client's.)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.harness.servers import Server

# (status, body) -> "" if the answer is right, else what is wrong
Check = Callable[[int, bytes], str]


@dataclass(frozen=True)
class Call:
    """One planned request and how to tell a right answer from a wrong one."""

    body: bytes
    headers: dict[str, str]
    check: Check
    tag: Any = None  # what the caller needs to know about it afterwards


@dataclass
class Batch:
    """One timed run of calls against one server: latencies of the successes, failures by kind."""

    name: str
    planned: int
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    succeeded: list[Call] = field(default_factory=list)
    elapsed: float = 0.0
    capped: bool = False  # the time cap stopped it before every call was sent
    unknown: int = 0  # requests cut off at the hard cap: did they take effect?
    server_cpu: float = math.nan  # CPU seconds the server used during the batch
    client_cpu: float = math.nan  # CPU seconds this (load generator) process used

    @property
    def first_failure(self) -> str:
        return next(iter(self.failures), "")


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Connections:
    """Keep-alive HTTP/1.1 connections to one server, kept open from one batch to the next."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.idle: list[Connection] = []

    def request(self, path: str, call: Call) -> bytes:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{self.server.port}"]
        lines += [f"{name}: {value}" for name, value in call.headers.items()]
        lines.append(f"Content-Length: {len(call.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + call.body

    async def take(self) -> Connection:
        if self.idle:
            return self.idle.pop()
        return await asyncio.open_connection("127.0.0.1", self.server.port)

    async def exchange(self, conn: Connection, request: bytes) -> tuple[int, bytes]:
        """Send ``request``, read the answer; the connection goes back to the pool after."""
        reader, writer = conn
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            body = await reader.readexactly(int(fields["content-length"]))
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            body = await _chunked(reader)
        else:
            raise ValueError(f"an answer without Content-Length: {head[0]}")
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append(conn)
        return status, body

    def ports(self) -> set[int]:
        """The local ports of the idle connections (what the server sees as their peers)."""
        return {int(writer.get_extra_info("sockname")[1]) for _, writer in self.idle}

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self.idle.clear()

    async def __aenter__(self) -> Connections:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def run_load(
    pool: Connections, path: str, name: str, calls: list[Call], concurrency: int, time_cap: float
) -> Batch:
    """``calls`` POSTed to ``path`` from ``concurrency`` workers; none sent after ``time_cap`` s."""
    server = pool.server
    batch = Batch(name, len(calls))
    requests = [pool.request(path, call) for call in calls]
    issued = 0
    in_flight = 0
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    start = time.perf_counter()
    deadline = start + time_cap

    async def worker() -> None:
        nonlocal issued, in_flight
        while issued < len(calls) and time.perf_counter() < deadline:
            index = issued
            issued += 1
            in_flight += 1
            began = time.perf_counter()
            try:
                conn = await pool.take()
                try:
                    status, body = await pool.exchange(conn, requests[index])
                except BaseException:
                    conn[1].close()
                    raise
                problem = calls[index].check(status, body)
            except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            finally:
                in_flight -= 1
            ended = time.perf_counter()
            if problem:
                batch.failures[problem] += 1
            else:
                batch.latencies.append(ended - began)
                batch.succeeded.append(calls[index])

    try:
        async with asyncio.timeout(time_cap + 60):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    except TimeoutError:
        batch.unknown = in_flight
        batch.failures["cut off at the hard time cap (outcome unknown)"] += in_flight
    batch.elapsed = time.perf_counter() - start
    batch.capped = issued < len(calls)
    batch.server_cpu = server.cpu_seconds() - server_cpu
    batch.client_cpu = time.process_time() - client_cpu
    return batch
