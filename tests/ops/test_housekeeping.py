"""Housekeeping: the purges delete exactly what expired, in batches; each job's slot runs once
per deployment (two schedulers on one database, two server processes on one PostgreSQL);
a failing job is retried at its next slot; the test clock moves every process."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from tortoise import Tortoise
from tortoise.exceptions import DBConnectionError

import clock
import metrics
from accounts.service import purge_sessions, token_hash
from app import create_app
from app.housekeeping import Job, Scheduler, default_jobs, next_slot, slot_start
from db import housekeeping as table
from db import models
from db.config import tortoise_config
from markets.trading import IDEMPOTENCY_TTL, purge_idempotency_keys
from settings import Settings, SettingsError, load_settings
from tests.conftest import (
    GraphQLClient,
    SqlCounter,
    forget_compiled_statements,
    prepare_database,
    with_settings,
)
from tests.services import PostgresServer, create_database, start_app_process

# Every test that moves the clock starts here: on the hour, so slots of an hour start at it.
T0 = datetime(2030, 1, 1, tzinfo=UTC)
HOUR = 3600
ME = "{ me { username } }"
JOBS = ("purge_sessions", "purge_idempotency_keys", "purge_job_runs")
# What the app registers: the purges, then the newsroom's scheduled articles.
APP_JOBS = (*JOBS, "announce_scheduled_articles")


class ClockFile:
    """The test clock's file (AGORA_TEST_CLOCK_FILE): written atomically, as processes read it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, value: datetime | float) -> None:
        """Hold ``value``: a fixed time, or an offset in seconds from the real time."""
        text = value.isoformat() if isinstance(value, datetime) else repr(float(value))
        spare = self.path.with_name(self.path.name + ".new")
        spare.write_text(text)
        os.replace(spare, self.path)

    def move_to(self, value: datetime | float) -> None:
        """Write ``value`` and make this process read it now (not within RECHECK_SECONDS)."""
        self.write(value)
        clock.use_offset_file(str(self.path))


@pytest.fixture
def clock_file(tmp_path: Path) -> Iterator[ClockFile]:
    """A clock file this process follows; the real time again afterwards."""
    yield ClockFile(tmp_path / "clock")
    clock.use_offset_file(None)


def _runs(job: str, outcome: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value("agora_job_runs_total", {"job": job, "outcome": outcome})
        or 0.0
    )


def _rows(job: str) -> float:
    return metrics.REGISTRY.get_sample_value("agora_job_rows_total", {"job": job}) or 0.0


async def _user(name: str) -> models.User:
    return await models.User.create(username=name, display_name=name.title(), created_at=T0)


async def _session(user: models.User, expires_at: datetime) -> str:
    token = secrets.token_urlsafe(16)
    await models.Session.create(
        user_id=user.id,
        token_hash=token_hash(token),
        created_at=expires_at - timedelta(days=30),
        expires_at=expires_at,
    )
    return token


async def _trade(user: models.User) -> models.Trade:
    market = await models.Market.create(
        slug=f"m-{uuid.uuid4().hex[:8]}",
        question="Will the purge keep what it must?",
        description="",
        resolution_criteria="",
        created_at=T0,
        closes_at=T0 + timedelta(days=30),
        liquidity_cents=10_000,
    )
    outcome = await models.Outcome.create(market_id=market.id, position=0, label="Yes")
    return await models.Trade.create(
        market_id=market.id,
        outcome_id=outcome.id,
        user_id=user.id,
        shares_units=10_000,
        amount_cents=50,
        probability_before=0.5,
        probability_after=0.51,
        created_at=T0,
    )


async def _key(user: models.User, trade: models.Trade, key: str, created_at: datetime) -> None:
    await models.IdempotencyKey.create(
        user_id=user.id,
        key=key,
        fingerprint="f" * 64,
        trade_id=trade.id,
        balance_after_cents=0,
        created_at=created_at,
    )


async def _session_ends() -> list[datetime]:
    return [session.expires_at for session in await models.Session.all().order_by("expires_at")]


async def _run_rows() -> list[tuple[str, datetime, str, int]]:
    rows = (
        await models.JobRun.all()
        .order_by("job", "due_at")
        .values_list("job", "due_at", "outcome", "rows")
    )
    return [(job, due, outcome, count) for job, due, outcome, count in rows]


# -- the purges -----------------------------------------------------------------------------------


async def test_the_purges_delete_what_expired_and_keep_the_rest(
    fresh_settings: Settings, fresh_client: GraphQLClient, clock_file: ClockFile
) -> None:
    clock_file.move_to(T0)
    settings = with_settings(fresh_settings, housekeeping_grace_seconds=60)
    grace = timedelta(seconds=60)
    alice = await fresh_client.sign_up("alice")  # expires at T0 + 30 days
    bob = await fresh_client.sign_up("bob")
    bob_id = (await models.User.get(username="bob")).id
    await models.Session.filter(user_id=bob_id).update(expires_at=T0 - timedelta(hours=2))
    carl = await _user("carl")
    await _session(carl, T0 - timedelta(days=1))  # long gone
    await _session(carl, T0 - grace)  # exactly at the end of its grace
    inside_grace = await _session(carl, T0 - grace + timedelta(seconds=1))
    trade = await _trade(carl)
    cutoff = T0 - IDEMPOTENCY_TTL - grace
    await _key(carl, trade, "ancient", T0 - timedelta(days=3))
    await _key(carl, trade, "at-cutoff", cutoff)
    await _key(carl, trade, "in-grace", cutoff + timedelta(seconds=1))
    await _key(carl, trade, "live", T0 - timedelta(hours=1))
    # Expired already: bob's token and the one in its grace authenticate no one before the purge.
    assert (await bob.data(ME))["me"] is None
    assert (await fresh_client.as_user(inside_grace).data(ME))["me"] is None
    ok_before = {job: _runs(job, "ok") for job in JOBS}
    rows_before = _rows("purge_sessions")

    results = await Scheduler(settings, default_jobs(settings)).tick()

    assert [(r.job, r.outcome, r.rows, r.due_at) for r in results] == [
        ("purge_sessions", "ok", 3, T0),
        ("purge_idempotency_keys", "ok", 2, T0),
        ("purge_job_runs", "ok", 0, T0),
    ]
    assert await _session_ends() == [
        T0 - grace + timedelta(seconds=1),
        T0 + timedelta(seconds=settings.session_ttl_seconds),
    ]
    assert await models.Session.filter(token_hash=token_hash(bob.token or "")).count() == 0
    assert sorted(await models.IdempotencyKey.all().values_list("key", flat=True)) == [
        "in-grace",
        "live",
    ]
    assert (await alice.data(ME))["me"] == {"username": "alice"}
    assert (await bob.data(ME))["me"] is None
    assert await _run_rows() == [
        ("purge_idempotency_keys", T0, "ok", 2),
        ("purge_job_runs", T0, "ok", 0),
        ("purge_sessions", T0, "ok", 3),
    ]
    assert {job: _runs(job, "ok") - ok_before[job] for job in JOBS} == dict.fromkeys(JOBS, 1)
    assert _rows("purge_sessions") - rows_before == 3


BUY = """
mutation($input: BuySharesInput!) {
  buyShares(input: $input) { trade { id } balance errors { code } }
}
"""
CREATE = """
mutation($input: CreateMarketInput!) {
  createMarket(input: $input) { market { outcomes { id } } errors { code } }
}
"""


async def test_a_retry_within_a_day_replays_after_a_purge_and_the_key_goes_when_it_expires(
    fresh_client: GraphQLClient, clock_file: ClockFile
) -> None:
    clock_file.move_to(T0)
    admin = await fresh_client.sign_up("boss")
    await models.User.filter(username="boss").update(role=models.Role.ADMIN)
    created = await admin.data(
        CREATE,
        {
            "input": {
                "question": "Will a retry a day later trade twice?",
                "description": "A market made by a test.",
                "resolutionCriteria": "Resolves by the test's decision.",
                "outcomes": ["Yes", "No"],
                "closesAt": (T0 + timedelta(days=30)).isoformat(),
                "liquidity": "100.00",
            }
        },
    )
    yes = created["createMarket"]["market"]["outcomes"][0]["id"]
    bob = await fresh_client.sign_up("bob")
    order = {"input": {"outcomeId": yes, "amount": "10.00", "idempotencyKey": "order-1"}}
    first = (await bob.data(BUY, order))["buyShares"]
    assert first["errors"] == []

    # A second before the key expires: the purge leaves it, and the retry is the replay.
    clock_file.move_to(T0 + IDEMPOTENCY_TTL - timedelta(seconds=1))
    assert await purge_idempotency_keys(clock.now(), grace=timedelta(0), batch_rows=10) == 0
    assert (await bob.data(BUY, order))["buyShares"] == first
    assert await models.Trade.all().count() == 1

    # Expired: the purge takes it, and the same key is a new order (as it would be unpurged).
    clock_file.move_to(T0 + IDEMPOTENCY_TTL)
    assert await purge_idempotency_keys(clock.now(), grace=timedelta(0), batch_rows=10) == 1
    again = (await bob.data(BUY, order))["buyShares"]
    assert again["errors"] == [] and again["trade"]["id"] != first["trade"]["id"]
    assert await models.Trade.all().count() == 2


async def test_a_purge_deletes_in_batches_of_the_setting(fresh_client: GraphQLClient) -> None:
    carl = await _user("carl")
    for _ in range(10):
        await _session(carl, T0 - timedelta(days=1))
    live = await _session(carl, T0 + timedelta(seconds=1))
    counter = SqlCounter()
    with counter.counting():
        deleted = await purge_sessions(T0, grace=timedelta(0), batch_rows=3)
    assert deleted == 10
    # 3 + 3 + 3 + 1: the short batch says there is no more.
    deletes = [s for s in counter.statements if s.startswith("DELETE FROM sessions")]
    assert len(deletes) == 4, counter.statements
    assert all("LIMIT" in s for s in deletes)
    assert await models.Session.filter(token_hash=token_hash(live)).count() == 1
    assert await models.Session.all().count() == 1


# -- the schedule ---------------------------------------------------------------------------------


class Moment:
    """A clock a test sets by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _counting(calls: list[datetime], rows: int = 0) -> Callable[[datetime], Awaitable[int]]:
    async def run(now: datetime) -> int:
        calls.append(now)
        return rows

    return run


async def _schedule() -> dict[str, tuple[datetime, datetime | None]]:
    rows = await models.JobState.all().values_list("name", "next_run_at", "lease_until")
    return {name: (next_run, lease) for name, next_run, lease in rows}


async def test_a_failing_job_is_logged_counted_and_retried_at_its_next_slot(
    fresh_settings: Settings, fresh_client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    failures = [RuntimeError("boom")]
    flaky_calls: list[datetime] = []

    async def flaky(now: datetime) -> int:
        flaky_calls.append(now)
        if failures:
            raise failures.pop()
        return 5

    steady_calls: list[datetime] = []
    moment = Moment(T0 + timedelta(seconds=10))
    scheduler = Scheduler(
        fresh_settings,
        [Job("flaky", 60, flaky), Job("steady", 60, _counting(steady_calls, 2))],
        clock=moment,
    )
    errors_before, ok_before = _runs("flaky", "error"), _runs("flaky", "ok")
    with caplog.at_level(logging.INFO, logger="agora"):
        first = await scheduler.tick()
    assert [(r.job, r.outcome, r.rows) for r in first] == [
        ("flaky", "error", 0),
        ("steady", "ok", 2),
    ]
    failed = [r for r in caplog.records if r.name == "agora" and r.levelno == logging.ERROR]
    assert len(failed) == 1 and "flaky" in failed[0].getMessage()
    assert failed[0].exc_info is not None and str(failed[0].exc_info[1]) == "boom"
    assert _runs("flaky", "error") - errors_before == 1
    record = await models.JobRun.get(job="flaky")
    assert (record.outcome, record.rows, record.error) == ("error", 0, "RuntimeError: boom")
    assert record.finished_at == moment.at

    # Not before its next slot, however often the loop looks.
    moment.at = T0 + timedelta(seconds=59)
    assert await scheduler.tick() == []
    assert await _schedule() == {
        "flaky": (T0 + timedelta(seconds=60), None),
        "steady": (T0 + timedelta(seconds=60), None),
    }
    moment.at = T0 + timedelta(seconds=60)
    assert [(r.job, r.outcome, r.rows) for r in await scheduler.tick()] == [
        ("flaky", "ok", 5),
        ("steady", "ok", 2),
    ]
    assert flaky_calls == [T0 + timedelta(seconds=10), T0 + timedelta(seconds=60)]
    assert _runs("flaky", "ok") - ok_before == 1
    assert await _schedule() == {
        "flaky": (T0 + timedelta(seconds=120), None),
        "steady": (T0 + timedelta(seconds=120), None),
    }


async def test_the_database_down_during_a_job_is_a_warning_without_a_traceback(
    fresh_settings: Settings, fresh_client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def unreachable(now: datetime) -> int:
        raise DBConnectionError("connection refused")

    errors_before = _runs("unreachable", "error")
    scheduler = Scheduler(fresh_settings, [Job("unreachable", 60, unreachable)], clock=Moment(T0))
    with caplog.at_level(logging.INFO, logger="agora"):
        results = await scheduler.tick()
    assert [(r.job, r.outcome) for r in results] == [("unreachable", "error")]
    logged = [r for r in caplog.records if r.name == "agora"]
    assert [(r.levelno, r.exc_info) for r in logged] == [(logging.WARNING, None)]
    assert "database is down" in logged[0].getMessage()
    assert _runs("unreachable", "error") - errors_before == 1


async def test_the_loop_survives_a_job_that_always_fails(
    fresh_settings: Settings, fresh_client: GraphQLClient
) -> None:
    calls: list[datetime] = []
    again = asyncio.Event()

    async def always_fails(now: datetime) -> int:
        calls.append(now)
        if len(calls) == 2:
            again.set()
        raise ValueError("never works")

    settings = with_settings(fresh_settings, housekeeping=True, housekeeping_interval_seconds=1)
    # Slots of a second: every look of the loop (a second apart) finds the job due again.
    scheduler = Scheduler(settings, [Job("always_fails", 1, always_fails)])
    scheduler.start()
    try:
        await asyncio.wait_for(again.wait(), 15)
    finally:
        started = time.monotonic()
        await scheduler.stop()
        assert time.monotonic() - started < 1
    outcomes = await models.JobRun.filter(job="always_fails").values_list("outcome", flat=True)
    assert set(outcomes) == {"error"} and len(outcomes) >= 2


async def test_a_restarted_worker_does_not_run_a_job_before_its_next_slot(
    fresh_settings: Settings, fresh_client: GraphQLClient
) -> None:
    calls: list[datetime] = []
    job = Job("hourly", HOUR, _counting(calls))
    moment = Moment(T0 + timedelta(minutes=10))
    assert [r.due_at for r in await Scheduler(fresh_settings, [job], clock=moment).tick()] == [T0]
    # A new process (the same database) half an hour on, then at the next slot.
    restarted = Scheduler(fresh_settings, [job], clock=moment)
    moment.at = T0 + timedelta(minutes=59, seconds=59)
    assert await restarted.tick() == []
    moment.at = T0 + timedelta(hours=1)
    assert [r.due_at for r in await restarted.tick()] == [T0 + timedelta(hours=1)]
    # Away for a day: the job runs once, not once per slot missed, and the grid holds.
    moment.at = T0 + timedelta(hours=25, minutes=30)
    assert [r.due_at for r in await restarted.tick()] == [T0 + timedelta(hours=2)]
    assert await restarted.tick() == []
    assert await _schedule() == {"hourly": (T0 + timedelta(hours=26), None)}
    assert len(calls) == 3


def test_slots_are_on_a_grid_every_worker_agrees_on() -> None:
    at = T0 + timedelta(minutes=59, seconds=59, microseconds=999_999)
    assert slot_start(at, HOUR) == T0
    assert next_slot(at, HOUR) == T0 + timedelta(hours=1)
    assert next_slot(T0, HOUR) == T0 + timedelta(hours=1)
    assert next_slot(T0 + timedelta(seconds=7), 5) == T0 + timedelta(seconds=10)


def test_job_names_are_unique() -> None:
    scheduler = Scheduler(Settings(), [Job("a", 60, _counting([]))])
    with pytest.raises(ValueError, match="registered already"):
        scheduler.register(Job("a", 30, _counting([])))
    with pytest.raises(ValueError, match="at least a second"):
        scheduler.register(Job("b", 0, _counting([])))
    assert [job.name for job in scheduler.jobs] == ["a"]


async def test_two_schedulers_on_one_database_run_each_slot_once(
    fresh_settings: Settings, fresh_client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, datetime]] = []

    def job(worker: str) -> Job:
        async def run(now: datetime) -> int:
            calls.append((worker, now))
            await asyncio.sleep(0.01)  # a run that takes a while, with the other looking
            return 1

        return Job("shared", 60, run)

    moment = Moment(T0)
    workers = [Scheduler(fresh_settings, [job(name)], clock=moment, worker=name) for name in "ab"]
    with caplog.at_level(logging.WARNING, logger="agora"):
        for slot in range(6):
            moment.at = T0 + timedelta(seconds=60 * slot + 1)
            results = await asyncio.gather(*(worker.tick() for worker in workers))
            assert sorted(len(r) for r in results) == [0, 1], (slot, results)
    # The loser found nothing due (not a second run refused by the unique slot index).
    assert [r.getMessage() for r in caplog.records if r.name == "agora"] == []
    assert len(calls) == 6
    runs = (
        await models.JobRun.filter(job="shared")
        .order_by("due_at")
        .values_list("due_at", "worker", "outcome")
    )
    assert [due for due, _, _ in runs] == [T0 + timedelta(seconds=60 * s) for s in range(6)]
    assert {worker for _, worker, _ in runs} <= {"a", "b"}
    assert {outcome for _, _, outcome in runs} == {"ok"}


async def test_a_run_holds_its_job_until_it_ends_or_its_lease_runs_out(
    fresh_settings: Settings, fresh_client: GraphQLClient
) -> None:
    settings = with_settings(fresh_settings, housekeeping_lease_seconds=2 * HOUR)
    calls: list[datetime] = []
    moment = Moment(T0)
    scheduler = Scheduler(settings, [Job("hourly", HOUR, _counting(calls))], clock=moment)
    await table.ensure_jobs(["hourly"], T0)
    # Another worker claimed the slot at T0 and died mid-run: its lease lasts two hours.
    dead = await table.claim("hourly", T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), "x")
    assert dead is not None
    moment.at = T0 + timedelta(hours=1, minutes=30)  # due, but held
    assert await scheduler.tick() == []
    moment.at = T0 + timedelta(hours=2)
    assert [r.due_at for r in await scheduler.tick()] == [T0 + timedelta(hours=1)]
    # The dead worker's record stays "running"; its late finish doesn't free the new lease.
    assert (await models.JobRun.get(id=dead.run_id)).outcome == "running"
    assert await _schedule() == {"hourly": (T0 + timedelta(hours=3), None)}


# PostgreSQL's advisory locks (SQLite's one writer serialises claims by itself).
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_advisory_lock_keeps_a_second_worker_off_a_job_being_claimed(
    fresh_settings: Settings, fresh_client: GraphQLClient
) -> None:
    calls: list[datetime] = []
    scheduler = Scheduler(fresh_settings, [Job("locked", 60, _counting(calls))], clock=Moment(T0))
    other = await asyncpg.connect(fresh_settings.database_url)
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.execute("SELECT pg_advisory_xact_lock($1)", table.lock_key("locked"))
        assert await scheduler.tick() == []
        await transaction.rollback()
    finally:
        await other.close()
    assert [r.job for r in await scheduler.tick()] == ["locked"]
    assert len(calls) == 1


# -- the app --------------------------------------------------------------------------------------


async def test_the_app_runs_the_purges_at_start_and_stops_a_run_at_shut_down_at_once(
    fresh_settings: Settings,
) -> None:
    forget_compiled_statements()
    app = create_app(with_settings(fresh_settings, housekeeping=True))
    started = asyncio.Event()

    async def blocks(now: datetime) -> int:
        started.set()
        await asyncio.Event().wait()
        return 0

    # Registered after the purges: it starts once they are done and recorded.
    app.state.scheduler.register(Job("blocks", HOUR, blocks))
    manager = LifespanManager(app)
    await manager.__aenter__()
    try:
        await asyncio.wait_for(started.wait(), 15)
        done = await models.JobRun.all().order_by("id").values_list("job", "outcome")
        assert done == [*((job, "ok") for job in APP_JOBS), ("blocks", "running")]
    finally:
        stopping = time.monotonic()
        await manager.__aexit__(None, None, None)
        stopped_in = time.monotonic() - stopping
    assert stopped_in < 2
    # The record says how it ended (read after a reconnection: the app's connections closed).
    await Tortoise.init(config=tortoise_config(app.state.settings))
    try:
        assert (await models.JobRun.get(job="blocks")).outcome == "cancelled"
        assert (await models.JobState.get(name="blocks")).lease_until is None
    finally:
        await Tortoise.close_connections()


def test_housekeeping_is_on_by_default_and_each_setting_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().housekeeping is True
    for name, value in {
        "HOUSEKEEPING": "off",
        "HOUSEKEEPING_INTERVAL_SECONDS": "5",
        "HOUSEKEEPING_PURGE_INTERVAL_SECONDS": "600",
        "HOUSEKEEPING_BATCH_ROWS": "50",
        "HOUSEKEEPING_GRACE_SECONDS": "0",
        "HOUSEKEEPING_LEASE_SECONDS": "60",
        "HOUSEKEEPING_HISTORY_SECONDS": "86400",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert (
        settings.housekeeping,
        settings.housekeeping_interval_seconds,
        settings.housekeeping_purge_interval_seconds,
        settings.housekeeping_batch_rows,
        settings.housekeeping_grace_seconds,
        settings.housekeeping_lease_seconds,
        settings.housekeeping_history_seconds,
    ) == (False, 5, 600, 50, 0, 60, 86400)
    monkeypatch.setenv("HOUSEKEEPING_BATCH_ROWS", "0")
    with pytest.raises(SettingsError, match="HOUSEKEEPING_BATCH_ROWS must be at least 1"):
        load_settings()


# -- the test clock -------------------------------------------------------------------------------


def test_the_clock_file_holds_an_offset_or_a_fixed_time(clock_file: ClockFile) -> None:
    clock_file.move_to(T0)
    assert clock.now() == T0
    clock_file.move_to(-3600)
    before = datetime.now(UTC)
    moved = clock.now()
    after = datetime.now(UTC)
    assert before - timedelta(hours=1) <= moved <= after - timedelta(hours=1)
    clock.use_offset_file(None)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)


def test_a_changed_clock_file_is_read_within_the_recheck_interval(clock_file: ClockFile) -> None:
    clock_file.move_to(T0)
    clock_file.write(T0 + timedelta(days=1))
    deadline = time.monotonic() + 5
    while clock.now() == T0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert clock.now() == T0 + timedelta(days=1)
    # A file caught half-written keeps the time it said last; a missing one is no offset.
    clock_file.path.write_text("2030-01-0")
    time.sleep(clock.RECHECK_SECONDS * 2)
    assert clock.now() == T0 + timedelta(days=1)
    clock_file.path.unlink()
    time.sleep(clock.RECHECK_SECONDS * 2)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)


def test_a_clock_file_that_says_nothing_usable_is_refused(clock_file: ClockFile) -> None:
    clock_file.path.write_text("tomorrow")
    with pytest.raises(ValueError):
        clock.use_offset_file(str(clock_file.path))
    clock_file.path.write_text("2030-01-01T00:00:00")
    with pytest.raises(ValueError, match="zone"):
        clock.use_offset_file(str(clock_file.path))


def test_the_clock_file_is_refused_outside_tests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGORA_TEST_CLOCK_FILE", str(tmp_path / "clock"))
    monkeypatch.setenv("AGORA_ENV", "test")
    assert load_settings().test_clock_file == str(tmp_path / "clock")
    monkeypatch.setenv("AGORA_ENV", "production")
    with pytest.raises(SettingsError, match="AGORA_TEST_CLOCK_FILE"):
        load_settings()


# -- two server processes -------------------------------------------------------------------------


async def _wait_ready(address: str) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"http://{address}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{address} never became ready")


async def _finished_runs(db: asyncpg.Connection) -> list[tuple[str, datetime, str, int, str]]:
    rows = await db.fetch(
        "SELECT job, due_at, outcome, rows, worker FROM housekeeping_runs "
        "WHERE finished_at IS NOT NULL ORDER BY job, due_at"
    )
    return [(r["job"], r["due_at"], r["outcome"], r["rows"], r["worker"]) for r in rows]


async def _wait_for_runs(db: asyncpg.Connection, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(await _finished_runs(db)) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} finished runs: {await _finished_runs(db)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def test_two_worker_processes_run_each_slot_exactly_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    slots = 4
    url = await create_database(postgres_server, f"agora_jobs_{uuid.uuid4().hex[:10]}")
    settings = await prepare_database(url, demo=False)
    # k + 1 sessions expire in the hour before slot k: slot k's purge removes exactly them.
    await Tortoise.init(config=tortoise_config(settings))
    try:
        carl = await _user("carl")
        for k in range(slots):
            for _ in range(k + 1):
                await _session(carl, T0 + timedelta(hours=k, seconds=-1))
        await _session(carl, T0 + timedelta(hours=slots, seconds=1))
    finally:
        await Tortoise.close_connections()
    # Half a minute into the first slot, the clock standing still between the test's moves.
    clocks = ClockFile(tmp_path / "clock")
    clocks.write(T0 + timedelta(seconds=30))
    env = {
        "DATABASE_URL": url,
        "AGORA_TEST_CLOCK_FILE": str(clocks.path),
        "HOUSEKEEPING_INTERVAL_SECONDS": "1",
        "HOUSEKEEPING_PURGE_INTERVAL_SECONDS": str(HOUR),
        "HOUSEKEEPING_GRACE_SECONDS": "0",
        # Hourly too, so every job's slots are the hours the test walks.
        "ARTICLE_PUBLISH_INTERVAL_SECONDS": str(HOUR),
    }
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    workers = [start_app_process(env, log) for log in logs]
    pids = [process.pid for process, _ in workers]
    db = await asyncpg.connect(url)
    try:
        for _, address in workers:
            await _wait_ready(address)
        await _wait_for_runs(db, len(APP_JOBS))
        for k in range(1, slots):
            clocks.write(T0 + timedelta(hours=k, seconds=30))
            await _wait_for_runs(db, len(APP_JOBS) * (k + 1))
        # A worker restarted on the same clock runs nothing early: after its first looks (and
        # the other's), the record is the same.
        _stop(workers[0][0])
        workers[0] = start_app_process(env, tmp_path / "a2.log")
        pids.append(workers[0][0].pid)
        await _wait_ready(workers[0][1])
        await asyncio.sleep(3)  # three looks of each worker, any of which could run a job twice
        runs = await _finished_runs(db)
        remaining = await db.fetchval("SELECT COUNT(*) FROM sessions")
        running = await db.fetchval(
            "SELECT COUNT(*) FROM housekeeping_runs WHERE finished_at IS NULL"
        )
    finally:
        await db.close()
        for process, _ in workers:
            _stop(process)
    due = [T0 + timedelta(hours=k) for k in range(slots)]
    assert [(job, at, outcome) for job, at, outcome, _, _ in runs] == [
        (job, at, "ok") for job in sorted(APP_JOBS) for at in due
    ]
    purged = [rows for job, _, _, rows, _ in runs if job == "purge_sessions"]
    assert purged == [1, 2, 3, 4]
    assert remaining == 1 and running == 0
    # Run by the server processes (host:pid), whichever won each slot.
    assert {int(worker.rsplit(":", 1)[1]) for *_, worker in runs} <= set(pids)
    for log in [*logs, tmp_path / "a2.log"]:
        lines = log.read_text().splitlines()
        assert not [
            line
            for line in lines
            if "Traceback" in line
            or ("housekeeping" in line and ("failed" in line or "down" in line or "didn't" in line))
        ], lines
