"""The housekeeping scheduler's tables: claiming a job's due slot exactly once, recording each
run, and deleting rows in bounded batches.

A claim is one short transaction. On PostgreSQL it first takes a transaction-level advisory
lock named after the job (``pg_try_advisory_xact_lock``: a worker that doesn't get it skips the
job at once instead of queueing behind the row lock), then moves the job's ``next_run_at`` past
the due slot in one conditional ``UPDATE``, and records the run, all in the same transaction:
whichever worker commits first owns the slot, every other finds nothing due, and a restarted
worker finds the slot it already ran in the past. Why not a session-level lock: Tortoise runs
each statement on any connection of asyncpg's pool, and the pool's reset on release
(``pg_advisory_unlock_all()``) would drop the lock as soon as the statement that took it was
done. The lock lives and dies with the transaction; the slot lives in the row. On SQLite (one
process) the transaction's first statement, the ``UPDATE``, takes the database's write lock,
which is all the exclusion there is to have.

A claimed run holds a lease (``lease_until``) until it is recorded as finished, so no other
worker starts the same job while it runs; a worker that died mid-run holds it no longer than
the lease.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from db.sql import connection, execute, fetch_dicts, is_postgres

# Advisory lock keys are one 64-bit number per job, in the namespace of this name, so they
# can't collide with another application's locks on the same database by accident.
LOCK_NAMESPACE = "agora.housekeeping"
# Longest recorded error of a failed run (the column's size).
ERROR_MAX_CHARS = 300


def lock_key(job: str) -> int:
    """The advisory lock key of ``job``: a signed 64-bit number, the same in every worker."""
    digest = hashlib.sha256(f"{LOCK_NAMESPACE}:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def as_datetime(value: Any) -> datetime:
    """A timestamp column's value as a datetime (SQLite hands back its ISO text)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@dataclass(frozen=True)
class Claim:
    """A slot this worker owns: the job, the slot's due time, its run record and its start."""

    job: str
    due_at: datetime
    run_id: int
    started_at: datetime


async def ensure_jobs(names: Sequence[str], first_due_at: datetime) -> None:
    """A schedule row for each job that has none yet, due at ``first_due_at``."""
    for name in names:
        await execute(
            "INSERT INTO housekeeping_jobs (name, next_run_at) VALUES (?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, first_due_at),
        )


async def claim(
    job: str, now: datetime, next_run_at: datetime, lease_until: datetime, worker: str
) -> Claim | None:
    """Claim ``job``'s due slot for this worker, or None: not due, running elsewhere, or
    another worker is claiming it right now.

    In one transaction: the advisory lock (PostgreSQL), the slot moved on to ``next_run_at``
    with the lease taken, and the run recorded as ``running``.
    """
    async with in_transaction() as conn:
        if is_postgres(conn):
            locked = await fetch_dicts(
                "SELECT pg_try_advisory_xact_lock(?) AS locked", (lock_key(job),), conn
            )
            if not locked[0]["locked"]:
                return None
        # SET's right-hand sides read the row as it was: last_due_at gets the slot being claimed.
        rows = await fetch_dicts(
            "UPDATE housekeeping_jobs SET last_due_at = next_run_at, next_run_at = ?, "
            "lease_until = ? WHERE name = ? AND next_run_at <= ? "
            "AND (lease_until IS NULL OR lease_until <= ?) RETURNING last_due_at",
            (next_run_at, lease_until, job, now, now),
            conn,
        )
        if not rows:
            return None
        due_at = as_datetime(rows[0]["last_due_at"])
        run = await fetch_dicts(
            "INSERT INTO housekeeping_runs (job, due_at, started_at, outcome, rows, worker, error) "
            "VALUES (?, ?, ?, 'running', 0, ?, '') RETURNING id",
            (job, due_at, now, worker[:100]),
            conn,
        )
    return Claim(job, due_at, int(run[0]["id"]), now)


async def finish(
    claimed: Claim, finished_at: datetime, outcome: str, rows: int, error: str = ""
) -> None:
    """Record how a claimed run ended and give up its lease (unless the lease ran out and
    another worker has claimed a later slot since: that lease is the other worker's)."""
    async with in_transaction() as conn:
        await execute(
            "UPDATE housekeeping_runs SET finished_at = ?, outcome = ?, rows = ?, error = ? "
            "WHERE id = ?",
            (finished_at, outcome, rows, error[:ERROR_MAX_CHARS], claimed.run_id),
            conn,
        )
        await execute(
            "UPDATE housekeeping_jobs SET lease_until = NULL WHERE name = ? AND last_due_at = ?",
            (claimed.job, claimed.due_at),
            conn,
        )


async def delete_in_batches(table: str, where: str, params: Sequence[Any], batch_rows: int) -> int:
    """Delete the rows of ``table`` matching ``where`` (SQL with ``?`` placeholders, written by
    the caller, never from input), at most ``batch_rows`` per statement; the rows deleted.

    Each statement is its own short transaction and the event loop is yielded to between
    them, so a purge of a large backlog never holds a lock for long (on SQLite, the one
    writer). On PostgreSQL rows that a transaction has locked (a trade replacing its expired
    idempotency key) are skipped, not waited for: the next run gets them.
    """
    total = 0
    while True:
        conn = connection()
        skip_locked = " FOR UPDATE SKIP LOCKED" if is_postgres(conn) else ""
        deleted = await execute(
            f"DELETE FROM {table} WHERE id IN "
            f"(SELECT id FROM {table} WHERE {where} LIMIT ?{skip_locked})",
            (*params, batch_rows),
            conn,
        )
        total += deleted
        if deleted < batch_rows:
            return total
        await asyncio.sleep(0)


async def purge_runs(before: datetime, batch_rows: int) -> int:
    """Delete the records of runs started before ``before``; the rows deleted."""
    return await delete_in_batches("housekeeping_runs", "started_at < ?", (before,), batch_rows)
