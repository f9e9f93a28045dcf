"""PostgreSQL reads of one turn of the loop run on one pooled connection (db.pg_reads): fewer
acquires of asyncpg's pool, and nothing else may change. Each statement answers alone (its
rows, or its own error as Tortoise's), a transaction's reads stay its own, every statement
still counts, and a batch holds at most MAX_BATCH statements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from tortoise import Tortoise, connections
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from db import instrument, pg_reads
from db.config import tortoise_config
from db.health import is_database_down
from db.sql import execute, fetch_dicts
from settings import Settings
from tests.conftest import SqlCounter, forget_compiled_statements

# Batching on one pooled connection is PostgreSQL's (SQLite's reads have db.sqlite_reads).
pytestmark = pytest.mark.parametrize("backend", ["postgres"])


@pytest.fixture
async def db(fresh_settings: Settings) -> AsyncIterator[Settings]:
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(fresh_settings))
    instrument.install_for(connections.all())
    await execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    await execute("INSERT INTO t (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    try:
        yield fresh_settings
    finally:
        pg_reads.enabled = True
        await Tortoise.close_connections()


class Batches(list[list[Any]]):
    """Each batch run on one connection (its reads, joined while it waits), in order."""

    def sql(self) -> list[list[str]]:
        return [[read.sql for read in batch] for batch in self]


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> Batches:
    seen = Batches()
    flush = pg_reads._flush

    async def counted(client: Any, batch: list[Any]) -> None:
        seen.append(batch)  # (the list itself: reads join it until the flush takes it)
        await flush(client, batch)

    monkeypatch.setattr(pg_reads, "_flush", counted)
    return seen


@pytest.fixture
def acquires(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per connection taken from the pool."""
    taken: list[int] = []
    client = connections.get("default")
    acquire = client.acquire_connection

    def counted() -> Any:
        taken.append(1)
        return acquire()

    monkeypatch.setattr(client, "acquire_connection", counted)
    return taken


async def test_reads_of_one_turn_share_one_connection(
    db: Settings, batches: Batches, acquires: list[int]
) -> None:
    queries = [f"SELECT name FROM t WHERE id = {i}" for i in (1, 2, 3)]
    rows = await asyncio.gather(*(fetch_dicts(sql) for sql in queries))
    assert rows == [[{"name": "one"}], [{"name": "two"}], [{"name": "three"}]]
    assert batches.sql() == [queries]
    assert len(acquires) == 1
    # One after the other: one connection each.
    batches.clear()
    for sql in queries:
        await fetch_dicts(sql)
    assert batches.sql() == [[sql] for sql in queries]
    assert len(acquires) == 4


async def test_rows_are_what_tortoises_client_gives(db: Settings) -> None:
    sql = (
        "SELECT id, name, name || ? AS tagged, NULL AS absent, id AS id FROM t "
        "WHERE id IN (?, ?) ORDER BY id"
    )
    params = ["!", 1, 3]
    batched = await fetch_dicts(sql, params)
    pg_reads.enabled = False
    direct = await fetch_dicts(sql, params)
    assert (
        batched
        == direct
        == [
            {"id": 1, "name": "one", "tagged": "one!", "absent": None},
            {"id": 3, "name": "three", "tagged": "three!", "absent": None},
        ]
    )


async def test_a_failing_statement_fails_only_its_caller(db: Settings, batches: Batches) -> None:
    good = fetch_dicts("SELECT name FROM t WHERE id = ?", [2])
    bad = fetch_dicts("SELECT name FROM no_such_table")
    also_good = fetch_dicts("SELECT COUNT(*) AS n FROM t")
    results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
    assert len(batches) == 1 and len(batches[0]) == 3
    assert results[0] == [{"name": "two"}]
    assert isinstance(results[1], OperationalError)  # Tortoise's, as from its own client
    assert "no_such_table" in str(results[1])
    assert results[2] == [{"n": 3}]


async def test_an_integrity_error_is_tortoises(db: Settings) -> None:
    # fetch_dicts is for reads, but a statement with RETURNING reaches it too: autocommitted
    # alone, as through Tortoise's client, and refused whole.
    with pytest.raises(IntegrityError):
        await fetch_dicts("INSERT INTO t (id, name) VALUES (4, 'one') RETURNING id")
    assert await fetch_dicts("SELECT COUNT(*) AS n FROM t") == [{"n": 3}]


async def test_a_transactions_reads_are_its_own(db: Settings, batches: Batches) -> None:
    pooled = connections.get("default")
    async with in_transaction() as conn:
        await execute("INSERT INTO t (id, name) VALUES (4, 'four')", conn=conn)
        # Inside the transaction: its own connection, its own writes, never batched.
        assert await fetch_dicts("SELECT name FROM t WHERE id = 4") == [{"name": "four"}]
        assert await fetch_dicts("SELECT COUNT(*) AS n FROM t", conn=conn) == [{"n": 4}]
        # Outside it (another request's read, on the pool), the uncommitted row is not seen.
        assert pg_reads.usable(pooled)
        assert await fetch_dicts("SELECT COUNT(*) AS n FROM t", conn=pooled) == [{"n": 3}]
    assert await fetch_dicts("SELECT name FROM t WHERE id = 4") == [{"name": "four"}]
    assert len(batches) == 2


async def test_a_cancelled_reader_leaves_the_others_their_rows(db: Settings) -> None:
    first = asyncio.ensure_future(fetch_dicts("SELECT name FROM t WHERE id = 1"))
    second = asyncio.ensure_future(fetch_dicts("SELECT name FROM t WHERE id = 2"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == [{"name": "two"}]
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await fetch_dicts("SELECT COUNT(*) AS n FROM t") == [{"n": 3}]


async def test_batched_statements_count_in_each_callers_record(
    db: Settings, batches: Batches
) -> None:
    async def one_request(ids: list[int]) -> int:
        with instrument.counting() as statements:
            await asyncio.gather(
                *(fetch_dicts("SELECT name FROM t WHERE id = ?", [i]) for i in ids)
            )
            return statements.count

    counts = await asyncio.gather(one_request([1, 2]), one_request([3]))
    assert counts == [2, 1]
    assert len(batches) == 1 and len(batches[0]) == 3
    with SqlCounter().counting() as counter:
        await fetch_dicts("SELECT 1 AS one")
    assert counter.statements == ["SELECT 1 AS one"]


async def test_a_batch_holds_at_most_max_batch_statements(
    db: Settings, batches: Batches, acquires: list[int]
) -> None:
    count = pg_reads.MAX_BATCH * 2 + 3
    rows = await asyncio.gather(*(fetch_dicts(f"SELECT {i} AS n") for i in range(count)))
    assert rows == [[{"n": i}] for i in range(count)]
    assert sorted(len(batch) for batch in batches) == [3, pg_reads.MAX_BATCH, pg_reads.MAX_BATCH]
    assert len(acquires) == 3


async def test_a_statement_timing_out_holds_back_no_batch_mate(fresh_settings: Settings) -> None:
    # One after the other, each statement of a batch behind one that timed out would wait a
    # timeout of its own in turn. After a timeout the rest run at once, each on a connection of
    # its own: answered if only one statement was slow, failed within one more timeout (not one
    # each) if the database went silent. (DB_TIMEOUT_SECONDS 1: a statement gets 0.5 s.)
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(replace(fresh_settings, db_timeout_seconds=1)))
    instrument.install_for(connections.all())
    loop = asyncio.get_running_loop()
    try:
        with instrument.counting() as statements:
            started = loop.time()
            answers: list[Any] = await asyncio.gather(
                fetch_dicts("SELECT pg_sleep(5) AS slept"),
                fetch_dicts("SELECT 1 AS one"),
                fetch_dicts("SELECT 2 AS two"),
                return_exceptions=True,
            )
            assert loop.time() - started < 1.4
        slow, one, two = answers
        assert isinstance(slow, TimeoutError) and is_database_down(slow)
        assert (one, two) == ([{"one": 1}], [{"two": 2}])
        assert statements.count == 3  # each counted once, however it ran

        started = loop.time()
        silent = await asyncio.gather(
            *(fetch_dicts(f"SELECT pg_sleep(5), {i} AS n") for i in range(4)),
            return_exceptions=True,
        )
        assert loop.time() - started < 1.4  # two timeouts, not four
        assert all(isinstance(error, TimeoutError) for error in silent), silent
        # The pool's connections are usable again afterwards.
        assert await fetch_dicts("SELECT 3 AS three") == [{"three": 3}]
    finally:
        await Tortoise.close_connections()


async def test_every_read_of_a_batch_answers_within_the_deadline(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Against a silent database the reads behind a statement that timed out need connections
    # of their own, and a new one waits asyncpg's whole connect timeout (DB_TIMEOUT_SECONDS):
    # the outage test saw 4 s for an answer due within 2. Here that connect hangs for 30 s;
    # the batch's deadline (DB_TIMEOUT_SECONDS from its flush) still answers everyone.
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(replace(fresh_settings, db_timeout_seconds=1)))
    instrument.install_for(connections.all())
    alone = pg_reads._alone

    async def hanging_connect(client: Any, read: Any) -> None:
        await asyncio.sleep(30)
        await alone(client, read)

    monkeypatch.setattr(pg_reads, "_alone", hanging_connect)
    monkeypatch.setattr(pg_reads, "deadline_seconds", 1)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        answers = await asyncio.wait_for(
            asyncio.gather(
                fetch_dicts("SELECT pg_sleep(5) AS slept"),
                fetch_dicts("SELECT 1 AS one"),
                fetch_dicts("SELECT 2 AS two"),
                return_exceptions=True,
            ),
            10,
        )
        assert loop.time() - started < 1.4
        assert all(isinstance(a, TimeoutError) and is_database_down(a) for a in answers), answers
        # A batch that answers in time is untouched by its timer.
        monkeypatch.setattr(pg_reads, "_alone", alone)
        assert await fetch_dicts("SELECT 3 AS three") == [{"three": 3}]
        await asyncio.sleep(1.2)  # past the deadline of that batch: nothing is settled twice
        assert await fetch_dicts("SELECT 4 AS four") == [{"four": 4}]
    finally:
        await Tortoise.close_connections()


async def test_off_every_statement_goes_through_tortoise(db: Settings, batches: Batches) -> None:
    pg_reads.enabled = False
    rows = await asyncio.gather(*(fetch_dicts(f"SELECT {i} AS n") for i in range(3)))
    assert rows == [[{"n": 0}], [{"n": 1}], [{"n": 2}]]
    assert batches == []


async def test_the_setting_reaches_the_app(fresh_settings: Settings) -> None:
    from app import create_app

    try:
        async with LifespanManager(create_app(replace(fresh_settings, postgres_batch_reads=False))):
            assert pg_reads.enabled is False
        async with LifespanManager(create_app(replace(fresh_settings, db_timeout_seconds=7))):
            assert pg_reads.enabled is True
            assert pg_reads.deadline_seconds == 7
    finally:
        pg_reads.enabled = True
