"""Closed-loop HTTP load: a list of planned requests from a number of workers, timed."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness.servers import Server


@dataclass(frozen=True)
class Call:
    """One planned request and how to tell a right answer ("" from ``check``) from a wrong one."""

    body: bytes
    headers: dict[str, str]
    check: Callable[[httpx.Response], str]
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


async def run_load(
    client: httpx.AsyncClient,
    server: Server,
    path: str,
    name: str,
    calls: list[Call],
    concurrency: int,
    time_cap: float,
) -> Batch:
    """``calls`` POSTed to ``path`` from ``concurrency`` workers; none sent after ``time_cap`` s."""
    url = server.base_url + path
    batch = Batch(name, len(calls))
    issued = 0
    in_flight = 0
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    start = time.perf_counter()
    deadline = start + time_cap

    async def worker() -> None:
        nonlocal issued, in_flight
        while issued < len(calls) and time.perf_counter() < deadline:
            call = calls[issued]
            issued += 1
            in_flight += 1
            began = time.perf_counter()
            try:
                response = await client.post(url, content=call.body, headers=call.headers)
                problem = call.check(response)
            except (httpx.HTTPError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            finally:
                in_flight -= 1
            ended = time.perf_counter()
            if problem:
                batch.failures[problem] += 1
            else:
                batch.latencies.append(ended - began)
                batch.succeeded.append(call)

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


def pooled_client(concurrency: int, timeout: float = 30.0) -> httpx.AsyncClient:
    """An HTTP client keeping ``concurrency`` connections open (no proxy from the environment)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)
