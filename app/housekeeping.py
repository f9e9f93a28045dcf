"""Housekeeping: named jobs run at intervals, each due run by one worker of the deployment.

Every worker runs the loop (started by the app's lifespan, cancelled at shut-down); every
``HOUSEKEEPING_INTERVAL_SECONDS`` it looks at each registered :class:`Job` and runs the ones
whose slot is due. Slots are on a grid (multiples of the job's interval since the epoch, so
every worker agrees on them) and live in the database (``housekeeping_jobs``): a worker claims
a slot by moving it on in one transaction (:mod:`db.housekeeping`), so exactly one worker of
the deployment runs each slot, a restarted worker doesn't run a job early, and a worker that
was away for several slots runs the job once, not once per slot missed. Each run is recorded
in ``housekeeping_runs`` (slot, worker, rows, outcome), logged in one line and counted
(``agora_job_runs_total``, ``agora_job_rows_total``).

A job that raises is logged with its traceback, counted as an ``error`` and tried again at its
next slot; the database being down is a warning. Nothing a job does stops the loop.

Later timed jobs (scheduled publishing, say) register here too: a :class:`Job` is a name, an
interval and ``async def run(now) -> rows``. A job should work in bounded batches, as the
purges do (``db.housekeeping.delete_in_batches``), must tolerate a second run overlapping the
first (possible only once a run outlives ``HOUSEKEEPING_LEASE_SECONDS``), and is cancelled at
shut-down wherever it awaits: a lone statement is safe to cancel, but Tortoise's
``in_transaction`` cancelled while it begins keeps its connection (on SQLite, the database's
one lock) for ever, so a job that opens a transaction runs it under ``asyncio.shield``, as the
scheduler does its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import metrics
from accounts.service import purge_sessions
from clock import Clock, now
from db import housekeeping as table
from db.health import is_database_down
from logs import get_logger
from markets.trading import purge_idempotency_keys
from settings import Settings

logger = get_logger("agora")

JobFunction = Callable[[datetime], Awaitable[int]]
"""What a job runs: given the time of its slot's claim, does its work and returns the rows it
removed or changed."""

# Longest wait at shut-down for the loop to wind down (a run is cancelled at its next await,
# a claim or a record being written is let finish), and then for it to end once cancelled.
STOP_SECONDS = 2.0
FORCED_STOP_SECONDS = 0.5


@dataclass(frozen=True)
class Job:
    """A named job run every ``interval_seconds`` by one worker of the deployment."""

    name: str
    interval_seconds: int
    run: JobFunction


@dataclass(frozen=True)
class RunResult:
    """How one run of a job went: ``ok`` (with its rows) or ``error``."""

    job: str
    due_at: datetime
    outcome: str
    rows: int
    duration_seconds: float


def slot_start(moment: datetime, interval_seconds: int) -> datetime:
    """The start of the grid slot ``moment`` falls in (grid: multiples of the interval since
    the epoch, UTC)."""
    epoch = math.floor(moment.timestamp() / interval_seconds) * interval_seconds
    return datetime.fromtimestamp(epoch, UTC)


def next_slot(moment: datetime, interval_seconds: int) -> datetime:
    """The first grid slot after the one ``moment`` falls in."""
    return slot_start(moment, interval_seconds) + timedelta(seconds=interval_seconds)


def worker_name() -> str:
    """How this process is named in the run records: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def default_jobs(settings: Settings) -> list[Job]:
    """The purges every deployment runs: expired sessions, expired idempotency keys, and
    the run records older than ``HOUSEKEEPING_HISTORY_SECONDS``."""
    grace = timedelta(seconds=settings.housekeeping_grace_seconds)
    batch = settings.housekeeping_batch_rows
    every = settings.housekeeping_purge_interval_seconds
    history = timedelta(seconds=settings.housekeeping_history_seconds)

    async def purge_job_runs(moment: datetime) -> int:
        return await table.purge_runs(moment - history, batch)

    return [
        Job("purge_sessions", every, partial(purge_sessions, grace=grace, batch_rows=batch)),
        Job(
            "purge_idempotency_keys",
            every,
            partial(purge_idempotency_keys, grace=grace, batch_rows=batch),
        ),
        Job("purge_job_runs", every, purge_job_runs),
    ]


class Scheduler:
    """The housekeeping loop of one worker: :meth:`start` in the lifespan, :meth:`stop` at
    shut-down; :meth:`tick` is one look (tests call it directly)."""

    def __init__(
        self,
        settings: Settings,
        jobs: Iterable[Job] = (),
        *,
        clock: Clock = now,
        worker: str | None = None,
    ) -> None:
        self.settings = settings
        # The test clock file moves it in every process (clock.use_offset_file).
        self.clock = clock
        self.worker = worker or worker_name()
        self._jobs: dict[str, Job] = {}
        # Jobs whose schedule row is known to exist (created on the first look that reaches
        # the database).
        self._ensured: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        # Set by stop(): the loop ends after its current step.
        self._stopping = False
        # Whether the loop is where cancelling it is safe (asleep, or in a job's run).
        self._interruptible = False
        for job in jobs:
            self.register(job)

    @property
    def jobs(self) -> list[Job]:
        """The registered jobs, in the order they run within a look."""
        return list(self._jobs.values())

    def register(self, job: Job) -> None:
        """Run ``job`` from the next look on; names are unique."""
        if job.name in self._jobs:
            raise ValueError(f"a housekeeping job named {job.name!r} is registered already")
        if not 1 <= len(job.name) <= 64:
            raise ValueError("a housekeeping job's name is 1 to 64 characters long")
        if job.interval_seconds < 1:
            raise ValueError("a housekeeping job's interval is at least a second")
        self._jobs[job.name] = job

    def start(self) -> None:
        """Start the loop (unless HOUSEKEEPING is off): the first look is at once."""
        if not self.settings.housekeeping or self._task is not None:
            return
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="housekeeping")

    async def stop(self) -> None:
        """End the loop within :data:`STOP_SECONDS`: a sleep or a job's run is cancelled at
        once (the run recorded as ``cancelled``); a claim or a record being written (a short
        transaction, which Tortoise can't have cancelled while it begins without leaking its
        connection) is let finish, and the loop ends after it."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if self._interruptible:
            task.cancel()
        await asyncio.wait({task}, timeout=STOP_SECONDS)
        if not task.done():
            # The database doesn't answer: stop waiting (the shielded step ends by itself, with
            # its statement timeout; a slot it claimed is free again when its lease runs out).
            logger.warning("housekeeping: the loop didn't stop within %s s", STOP_SECONDS)
            task.cancel()
            await asyncio.wait({task}, timeout=FORCED_STOP_SECONDS)

    @contextlib.contextmanager
    def _cancellable(self) -> Iterator[None]:
        """Within this block :meth:`stop` cancels the loop rather than waiting for it."""
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    async def _loop(self) -> None:
        # Often enough for the most frequent job (scheduled articles: every few seconds).
        interval = min(
            [self.settings.housekeeping_interval_seconds]
            + [job.interval_seconds for job in self._jobs.values()]
        )
        while not self._stopping:
            await self.tick()
            if self._stopping:
                return
            with self._cancellable():
                await asyncio.sleep(interval)

    async def tick(self) -> list[RunResult]:
        """One look: each due job claimed and, if this worker got it, run. Never raises (but
        for cancellation): failures are logged and counted."""
        results: list[RunResult] = []
        for job in self.jobs:
            if self._stopping:
                break
            try:
                # Shielded: see stop().
                claimed = await asyncio.shield(self._claim(job))
            except Exception as exc:
                if is_database_down(exc):
                    logger.warning(
                        "housekeeping: the database is down, %s not checked: %s", job.name, exc
                    )
                    # The other jobs would find it down too: try again at the next look.
                    return results
                logger.exception("housekeeping: checking job %s failed", job.name)
                continue
            if claimed is None:
                continue
            if self._stopping:
                # Claimed as the worker stops: not run, its lease given back at once (the slot
                # is skipped: the next one does its work).
                await self._record(claimed, "cancelled", 0, "")
                break
            results.append(await self._run(job, claimed))
        return results

    async def _claim(self, job: Job) -> table.Claim | None:
        moment = self.clock()
        if job.name not in self._ensured:
            await table.ensure_jobs([job.name], slot_start(moment, job.interval_seconds))
            self._ensured.add(job.name)
        lease = timedelta(seconds=self.settings.housekeeping_lease_seconds)
        return await table.claim(
            job.name,
            moment,
            next_slot(moment, job.interval_seconds),
            moment + lease,
            self.worker,
        )

    async def _run(self, job: Job, claimed: table.Claim) -> RunResult:
        started = time.perf_counter()
        try:
            with self._cancellable():
                rows = await job.run(claimed.started_at)
        except asyncio.CancelledError:
            # Shut-down: the run says so and gives its lease back (if the database answers in
            # time; if not, the lease runs out by itself).
            await self._record(claimed, "cancelled", 0, "")
            raise
        except Exception as exc:
            duration = time.perf_counter() - started
            fields = {"job": job.name, "rows": 0, "duration_seconds": round(duration, 6)}
            if is_database_down(exc):
                logger.warning(
                    "housekeeping %s failed after %.3f s, the database is down (%s); "
                    "it runs again at its next slot",
                    job.name,
                    duration,
                    exc,
                    extra=fields,
                )
            else:
                logger.error(
                    "housekeeping %s failed after %.3f s; it runs again at its next slot",
                    job.name,
                    duration,
                    exc_info=exc,
                    extra=fields,
                )
            metrics.JOB_RUNS.labels(job.name, "error").inc()
            await self._record(claimed, "error", 0, f"{type(exc).__name__}: {exc}")
            return RunResult(job.name, claimed.due_at, "error", 0, duration)
        duration = time.perf_counter() - started
        metrics.JOB_RUNS.labels(job.name, "ok").inc()
        metrics.JOB_ROWS.labels(job.name).inc(rows)
        # A run that changed nothing (most looks of a frequent job) is a debug line.
        (logger.info if rows else logger.debug)(
            "housekeeping %s: %d rows in %.3f s (slot %s)",
            job.name,
            rows,
            duration,
            claimed.due_at.isoformat(),
            extra={"job": job.name, "rows": rows, "duration_seconds": round(duration, 6)},
        )
        await self._record(claimed, "ok", rows, "")
        return RunResult(job.name, claimed.due_at, "ok", rows, duration)

    async def _record(self, claimed: table.Claim, outcome: str, rows: int, error: str) -> None:
        """The run's record and the lease given back; a failure here only delays the job's
        next slot until the lease runs out, so it is logged, not raised."""
        try:
            # Shielded: see stop().
            await asyncio.shield(table.finish(claimed, self.clock(), outcome, rows, error))
        except Exception as exc:
            if is_database_down(exc):
                logger.warning(
                    "housekeeping: the run of %s couldn't be recorded, the database is down",
                    claimed.job,
                )
            else:
                logger.exception("housekeeping: recording the run of %s failed", claimed.job)
