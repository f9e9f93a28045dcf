"""PostgreSQL's pooled connections are handed back without asyncpg's reset round trip.

Tortoise takes a pooled connection for every statement, and asyncpg's default release sends
``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;``: a second round trip
per read, 14 % of an article page's CPU (``db.config.keep_session``). That is right only while
nothing leaves session state on a pooled connection; the second test keeps it so.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import asyncpg
from tortoise import Tortoise, connections

from bench.harness.databases import PostgresServer, create_database
from db.config import tortoise_config
from tests.conftest import prepare_database

ROOT = Path(__file__).resolve().parents[2]
# Session state a pooled connection would carry to the next acquirer: session-level advisory
# locks (transaction-level ones end with their transaction), SET without LOCAL, LISTEN,
# cursors held past a transaction, set_config(…, false).
SESSION_STATE = re.compile(
    r"pg_(try_)?advisory_lock(_shared)?\s*\(|\bLISTEN\s|\bDECLARE\s.*\bWITH\s+HOLD\b"
    r"|set_config\s*\([^)]*,\s*false\s*\)|(?-i:[\"']\s*SET\s+(?!LOCAL\b|TRANSACTION\b)\w)",
    re.IGNORECASE,
)
# db.migrate takes its advisory lock on a connection of its own (closed to release it).
OWN_CONNECTIONS = {Path("db/migrate.py")}
SOURCES = ("app", "api", "db", "markets", "comments", "accounts", "news", "realtime", "settings.py")


async def test_a_released_connection_sends_no_reset(postgres_server: PostgresServer) -> None:
    url = await create_database(postgres_server, f"agora_reset_{uuid.uuid4().hex[:12]}")
    settings = await prepare_database(url, demo=False)
    await Tortoise.init(config=tortoise_config(settings))
    try:
        conn = connections.get("default")
        rows = await conn.execute_query_dict("SELECT pg_backend_pid() AS pid")
        pid = rows[0]["pid"]
        # Released by now: the backend's last statement is ours, not asyncpg's reset.
        watcher = await asyncpg.connect(url)
        try:
            last = await watcher.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        finally:
            await watcher.close()
        assert last == "SELECT pg_backend_pid() AS pid"
        # A transaction still ends on release: asyncpg rolls back an open one itself.
        async with conn._pool.acquire() as raw:
            await raw.execute("BEGIN")
        async with conn._pool.acquire() as raw:
            assert not raw.is_in_transaction()
    finally:
        await Tortoise.close_connections()


def test_no_source_leaves_session_state_on_a_pooled_connection() -> None:
    found = []
    for name in SOURCES:
        top = ROOT / name
        for path in [top] if top.is_file() else sorted(top.rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in OWN_CONNECTIONS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if SESSION_STATE.search(line) and not line.lstrip().startswith("#"):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == [], "session state on a pooled connection (see db.config.keep_session)"
    assert SESSION_STATE.search('"SELECT pg_advisory_lock($1)"')
    assert SESSION_STATE.search("await conn.execute('SET statement_timeout = 0')")
    assert not SESSION_STATE.search('"UPDATE markets SET state = ?"')
    assert not SESSION_STATE.search('"SET LOCAL lock_timeout = 1000"')
