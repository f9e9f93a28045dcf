"""SQLite reads of one turn of the loop sent to the connection's thread together
(db.sqlite_reads): fewer hand-offs, and nothing else may change. Each statement answers alone
(its rows, or its own error), a transaction's reads stay its own, a read waits for a
transaction in progress, and every statement still counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tortoise import Tortoise, connections
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from db import instrument, sqlite_reads
from db.config import tortoise_config
from db.sql import execute, fetch_dicts
from settings import Settings
from tests.conftest import SqlCounter, forget_compiled_statements

# Batching is SQLite's alone (asyncpg has no thread to hand statements to): parametrized
# rather than skipped (a skip fails CI's required services).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


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
        sqlite_reads.enabled = True
        await Tortoise.close_connections()


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The statements of each batched hand-off to the connection's thread, in order."""
    batches: list[list[str]] = []
    run = sqlite_reads._run

    def counted(conn: Any, reads: list[Any]) -> Any:
        batches.append([read.sql for read in reads])
        return run(conn, reads)

    monkeypatch.setattr(sqlite_reads, "_run", counted)
    return batches


async def test_reads_of_one_turn_go_in_one_hand_off(
    db: Settings, hand_offs: list[list[str]]
) -> None:
    queries = [f"SELECT name FROM t WHERE id = {i}" for i in (1, 2, 3)]
    rows = await asyncio.gather(*(fetch_dicts(sql) for sql in queries))
    assert rows == [[{"name": "one"}], [{"name": "two"}], [{"name": "three"}]]
    assert hand_offs == [queries]
    # One after the other: one hand-off each.
    hand_offs.clear()
    for sql in queries:
        await fetch_dicts(sql)
    assert hand_offs == [[sql] for sql in queries]


async def test_rows_are_what_tortoises_client_gives(db: Settings) -> None:
    sql = (
        "SELECT id, name, name || ? AS tagged, NULL AS absent FROM t WHERE id IN (?, ?) ORDER BY id"
    )
    params = ["!", 1, 3]
    batched = await fetch_dicts(sql, params)
    direct = await connections.get("default").execute_query_dict(sql, params)
    assert (
        batched
        == direct
        == [
            {"id": 1, "name": "one", "tagged": "one!", "absent": None},
            {"id": 3, "name": "three", "tagged": "three!", "absent": None},
        ]
    )


async def test_repeated_column_names_read_as_tortoises_dicts_do(db: Settings) -> None:
    # (``a.*`` beside a joined table's columns: the same name twice; Tortoise's dict of a row
    # takes the first column of a name, its letters compared without case, and so must the
    # batched read's.)
    sql = (
        "SELECT id, name, 7 AS name, x'00ff' AS raw, 1.5 AS ID, 'é' AS É, "
        '3 AS "Aé", 4 AS "aé" FROM t WHERE id = 2'
    )
    batched = await fetch_dicts(sql)
    direct = await connections.get("default").execute_query_dict(sql)
    expected = {"id": 2, "name": "two", "raw": b"\x00\xff", "ID": 2, "É": "é", "Aé": 3, "aé": 4}
    assert batched == direct == [expected]
    assert [list(row) for row in batched] == [list(row) for row in direct]


async def test_a_failing_statement_fails_only_its_caller(
    db: Settings, hand_offs: list[list[str]]
) -> None:
    good = fetch_dicts("SELECT name FROM t WHERE id = ?", [2])
    bad = fetch_dicts("SELECT name FROM no_such_table")
    also_good = fetch_dicts("SELECT COUNT(*) AS n FROM t")
    results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
    assert len(hand_offs) == 1 and len(hand_offs[0]) == 3
    assert results[0] == [{"name": "two"}]
    assert isinstance(results[1], OperationalError)  # Tortoise's, as from its own client
    assert "no_such_table" in str(results[1])
    assert results[2] == [{"n": 3}]


async def test_an_integrity_error_is_tortoises(db: Settings) -> None:
    # fetch_dicts is for reads, but a statement with RETURNING reaches it too.
    with pytest.raises(IntegrityError):
        await fetch_dicts("INSERT INTO t (id, name) VALUES (4, 'one') RETURNING id")
    assert await fetch_dicts("SELECT COUNT(*) AS n FROM t") == [{"n": 3}]


async def test_nul_in_a_statement_is_rewritten_as_tortoises_client_does(db: Settings) -> None:
    assert await fetch_dicts("SELECT 'a\x00b' AS s") == [{"s": "a\x00b"}]


async def test_a_transactions_reads_are_its_own(db: Settings, hand_offs: list[list[str]]) -> None:
    async with in_transaction() as conn:
        await execute("INSERT INTO t (id, name) VALUES (4, 'four')", conn=conn)
        # Inside the transaction: its own connection, its own writes, never batched.
        assert await fetch_dicts("SELECT name FROM t WHERE id = 4") == [{"name": "four"}]
        assert await fetch_dicts("SELECT COUNT(*) AS n FROM t", conn=conn) == [{"n": 4}]
    assert hand_offs == []
    assert await fetch_dicts("SELECT name FROM t WHERE id = 4") == [{"name": "four"}]
    assert len(hand_offs) == 1


async def test_a_read_waits_for_a_transaction_in_progress(db: Settings) -> None:
    inside = asyncio.Event()
    finish = asyncio.Event()

    async def writer() -> None:
        async with in_transaction() as conn:
            await execute("INSERT INTO t (id, name) VALUES (5, 'five')", conn=conn)
            inside.set()
            await finish.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    read = asyncio.create_task(fetch_dicts("SELECT COUNT(*) AS n FROM t"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not read.done()  # the connection lock is the transaction's
    finish.set()
    await task
    # It ran after the COMMIT: it sees the row (never the uncommitted state, never a gap).
    assert await read == [{"n": 4}]


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
    db: Settings, hand_offs: list[list[str]]
) -> None:
    async def one_request(ids: list[int]) -> int:
        with instrument.counting() as statements:
            await asyncio.gather(
                *(fetch_dicts("SELECT name FROM t WHERE id = ?", [i]) for i in ids)
            )
            return statements.count

    counts = await asyncio.gather(one_request([1, 2]), one_request([3]))
    assert counts == [2, 1]
    assert len(hand_offs) == 1 and len(hand_offs[0]) == 3
    # The tests' own counter sees them too.
    with SqlCounter().counting() as counter:
        await fetch_dicts("SELECT 1 AS one")
    assert counter.statements == ["SELECT 1 AS one"]


async def test_off_every_statement_goes_through_tortoise(
    db: Settings, hand_offs: list[list[str]]
) -> None:
    sqlite_reads.enabled = False
    rows = await asyncio.gather(*(fetch_dicts(f"SELECT {i} AS n") for i in range(3)))
    assert rows == [[{"n": 0}], [{"n": 1}], [{"n": 2}]]
    assert hand_offs == []


async def test_the_setting_reaches_the_app(fresh_settings: Settings) -> None:
    from dataclasses import replace

    from asgi_lifespan import LifespanManager

    from app import create_app

    try:
        async with LifespanManager(create_app(replace(fresh_settings, sqlite_batch_reads=False))):
            assert sqlite_reads.enabled is False
        async with LifespanManager(create_app(fresh_settings)):
            assert sqlite_reads.enabled is True
    finally:
        sqlite_reads.enabled = True


async def test_more_reads_than_a_batch_holds_go_in_several(
    db: Settings, hand_offs: list[list[str]]
) -> None:
    count = sqlite_reads.MAX_BATCH + 5
    rows = await asyncio.gather(*(fetch_dicts(f"SELECT {i} AS n") for i in range(count)))
    assert rows == [[{"n": i}] for i in range(count)]
    assert [len(batch) for batch in hand_offs] == [sqlite_reads.MAX_BATCH, 5]


async def test_a_locked_database_is_an_outage_as_from_tortoise(db: Settings) -> None:
    # Another process holding the file past the busy timeout (SQLite says "database is
    # locked"): the read's error must be seen as the database being down (a 503 with
    # Retry-After), as Tortoise's own error for it is.
    import sqlite3

    from db.health import is_database_down

    class Locked:
        row_factory: Any = None

        def cursor(self) -> Locked:
            return self

        def execute(self, sql: str, params: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

    read = sqlite_reads.Read("SELECT 1", [], asyncio.get_running_loop().create_future())
    [(ok, error)] = sqlite_reads._run(Locked(), [read])  # type: ignore[arg-type]
    assert not ok and isinstance(error, OperationalError)
    assert is_database_down(error)
    try:
        await connections.get("default").execute_query_dict("SELECT * FROM no_such_table")
    except OperationalError as tortoises:
        # The same shape as Tortoise's: its error chained to SQLite's.
        assert isinstance(tortoises.__cause__ or tortoises.__context__, sqlite3.OperationalError)
        assert isinstance(error.__cause__, sqlite3.OperationalError)
