"""logs.py and db.instrument on their own: the line format, bounds, LOG_FORMAT, statement
counting; and the suite's own check that no log line carries a password or a token."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.contextvars import bound_contextvars
from tortoise import Tortoise, connections
from tortoise.transactions import in_transaction

import logs
import metrics
from db import instrument
from db.config import tortoise_config
from db.sql import to_dialect
from settings import Settings, SettingsError, load_settings
from tests.conftest import DEMO_PASSWORD, GraphQLClient, LogCapture, leaks

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured as production configures it, written here; put back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    uvicorn = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    access_disabled = logging.getLogger("uvicorn.access").disabled
    out = io.StringIO()
    logs.configure_logging(Settings(env="production"), out)
    yield out
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, (old, propagate) in uvicorn.items():
        logging.getLogger(name).handlers[:] = old
        logging.getLogger(name).propagate = propagate
    logging.getLogger("uvicorn.access").disabled = access_disabled
    logs.install_log_filters(Settings())


def test_production_writes_request_lines_directly_as_logging_would(
    stream: io.StringIO,
) -> None:
    root = logging.getLogger()
    access = logs.get_logger("agora.access")
    others = [handler for handler in root.handlers if handler is not logs._direct_handler]
    fields = {"status": 200, "route": "/graphql", "operation": "x" * 500, "viewer_id": None}
    # With another handler on the way (pytest's, here), the line goes through logging.
    assert others and logs._direct(access, logging.INFO) is None
    logs.emit(access, "request", fields, "via-logging")
    for handler in others:
        root.removeHandler(handler)
    try:
        # Production: the one handler only, written to directly.
        assert logs._direct(access, logging.INFO) is logs._direct_handler
        logs.emit(access, "request", fields, "direct")
    finally:
        for handler in others:
            root.addHandler(handler)
    via_logging, direct = _lines(stream)
    assert via_logging.pop("timestamp") and direct.pop("timestamp")
    assert via_logging.pop("request_id") == "via-logging"
    assert direct.pop("request_id") == "direct"
    assert direct == via_logging
    assert direct["operation"] == "x" * 300 + "…[200 more characters]"


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_every_logger_writes_one_json_object_a_line_with_the_bound_request_id(
    stream: io.StringIO,
) -> None:
    with bound_contextvars(request_id="req-1"):
        logs.get_logger("agora").warning("a %s message", "formatted")
        logging.getLogger("uvicorn.error").error("uvicorn says\nthis")
        logs.get_structured("agora.test").info("structured", answer=42)
        logs.emit(logs.get_logger("agora.access"), "request", {"status": 200})
    logs.get_logger("agora").warning("outside a request")
    lines = _lines(stream)
    assert [(line["logger"], line["event"], line.get("request_id")) for line in lines] == [
        ("agora", "a formatted message", "req-1"),
        ("uvicorn.error", "uvicorn says\nthis", "req-1"),
        ("agora.test", "structured", "req-1"),
        ("agora.access", "request", "req-1"),
        ("agora", "outside a request", None),
    ]
    assert [line["level"] for line in lines] == ["warning", "error", "info", "info", "warning"]
    assert lines[2]["answer"] == 42 and lines[3]["status"] == 200
    for line in lines:
        assert TIMESTAMP.fullmatch(line["timestamp"]), line
        assert list(line)[:4] == ["timestamp", "level", "logger", "event"]
    assert len(stream.getvalue().splitlines()) == 5  # the newline inside stayed escaped


def test_values_are_cut_and_surrogates_escaped_in_every_kind_of_line(stream: io.StringIO) -> None:
    huge = "x" * 100_000
    logs.emit(logs.get_logger("agora.access"), "request", {"operation": huge + "\ud800"})
    logs.get_structured("agora.test").info("structured", value=huge)
    logs.get_logger("agora").warning("%s", huge)
    text = stream.getvalue()
    assert len(text) < 5_000
    lines = _lines(stream)
    assert lines[0]["operation"] == "x" * 300 + "…[99701 more characters]"
    assert lines[1]["value"] == "x" * 300 + "…[99700 more characters]"
    assert lines[2]["event"] == "x" * 2400 + "…[97600 more characters]"
    # Every value a line may hold is written as JSON (NaN and infinities, which aren't, as null).
    values = {"n": None, "t": True, "f": 1.5, "nan": float("nan"), "list": [1, "x"], "q": 'é"\n'}
    logs.emit(logs.get_logger("agora.access"), "request", {**values, "big": 10**30})
    assert _lines(stream)[-1] | {"timestamp": ""} == {
        "timestamp": "",
        "level": "info",
        "logger": "agora.access",
        "event": "request",
        **values,
        "nan": None,
        "big": 10**30,
    }
    # A lone surrogate never reaches an encoder: it is written as its escape.
    logs.emit(logs.get_logger("agora.access"), "request", {"operation": "a\ud800b"})
    assert _lines(stream)[-1]["operation"] == "a\\ud800b"


def test_a_traceback_is_bounded_and_in_its_line(stream: io.StringIO) -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise ValueError("y" * 10_000)
        deep(n - 1)

    try:
        deep(200)
    except ValueError as exc:
        logs.get_logger("agora").error("it failed", exc_info=exc)
        logs.get_structured("agora.test").exception("it failed again")
    lines = _lines(stream)
    assert len(lines) == 2
    for line in lines:
        assert line["level"] == "error"
        assert "ValueError" in line["exception"]
        assert len(line["exception"].splitlines()) <= logs.TRACEBACK_MAX_LINES
        assert len(line["exception"]) < 30_000


def test_uvicorns_access_log_is_off_and_its_records_go_through_the_one_handler(
    stream: io.StringIO,
) -> None:
    assert logging.getLogger("uvicorn.access").disabled
    assert logging.getLogger("uvicorn.error").handlers == []
    from app import uvicorn_options

    options = uvicorn_options(Settings())
    assert options["access_log"] is False and options["log_config"] is None


def test_the_console_format_for_people(stream: io.StringIO) -> None:
    out = io.StringIO()
    logs.configure_logging(Settings(env="development"), out)
    with bound_contextvars(request_id="req-2"):
        logs.emit(logs.get_logger("agora.access"), "request", {"route": "/graphql", "sql": 3})
    line = out.getvalue()
    assert line.count("\n") == 1
    assert "request" in line and "route=/graphql" in line and "sql=3" in line
    assert "request_id=req-2" in line and "\x1b[" not in line  # no colours off a terminal
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.parametrize(
    ("env", "value", "json_lines"),
    [
        ("production", "", True),
        ("development", "", False),
        ("test", "", False),
        ("production", "console", False),
        ("development", "json", True),
        ("development", "JSON", True),
    ],
)
def test_log_format_defaults_by_environment(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, json_lines: bool
) -> None:
    monkeypatch.setenv("AGORA_ENV", env)
    monkeypatch.setenv("LOG_FORMAT", value)
    assert load_settings().log_json is json_lines


def test_bad_observability_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings()
    monkeypatch.delenv("LOG_FORMAT")
    monkeypatch.setenv("METRICS_MAX_OPERATION_NAMES", "0")
    with pytest.raises(SettingsError, match="METRICS_MAX_OPERATION_NAMES"):
        load_settings()
    monkeypatch.setenv("METRICS_MAX_OPERATION_NAMES", "7")
    assert load_settings().metrics_max_operation_names == 7
    assert Settings().metrics_max_operation_names == 100


# -- SQL statements ---------------------------------------------------------------------------------


class _Client:
    """A client class with statement methods, one calling another (as a subclass might)."""

    async def execute_query(self, query: str) -> str:
        await asyncio.sleep(0)
        return query

    async def execute_query_dict(self, query: str) -> str:
        return await self.execute_query(query)

    async def execute_insert(self, query: str) -> str:
        return query


class _Transaction(_Client):
    async def execute_insert(self, query: str) -> str:
        return await super().execute_insert(query)


def _sql_total() -> float:
    return metrics.REGISTRY.get_sample_value("agora_sql_statements_total") or 0.0


async def test_statements_count_once_per_record_and_never_mix() -> None:
    instrument.install(_Client)
    # A method calling another one marks its task as inside a statement; a leaf is counted as
    # it is called.
    assert instrument.may_nest(_Client.execute_query_dict)
    assert instrument.may_nest(_Transaction.execute_insert)
    assert not instrument.may_nest(_Client.execute_query)
    instrument.install(_Client)  # idempotent: the lifespan of every app calls it
    client, nested = _Client(), _Transaction()

    async def request(statements: int) -> int:
        with instrument.counting() as counted:
            await asyncio.gather(*(client.execute_query("SELECT 1") for _ in range(statements)))
            await client.execute_query_dict("SELECT 2")  # calls execute_query: one statement
            await nested.execute_insert("INSERT")  # calls its parent's: one statement
            return counted.count

    before = _sql_total()
    counts = await asyncio.gather(*(request(n) for n in (1, 5, 9)))
    assert counts == [3, 7, 11]
    assert _sql_total() - before == 21
    # Outside any record, or after it closed (a task it left running), straight to the metric.
    await client.execute_query("SELECT 3")

    async def later() -> None:
        await asyncio.sleep(0)
        await client.execute_query("SELECT 4")

    with instrument.counting() as counted:
        late = asyncio.create_task(later())
    await late
    assert counted.count == 0
    assert _sql_total() - before == 23


async def test_tortoise_statements_in_and_out_of_transactions_are_counted(
    fresh_settings: Settings,
) -> None:
    await Tortoise.init(config=tortoise_config(fresh_settings))
    try:
        instrument.install_for(connections.all())
        conn = connections.get("default")
        insert = to_dialect("INSERT INTO t VALUES (?)", conn)
        with instrument.counting() as counted:
            await conn.execute_script("CREATE TABLE t (x INTEGER)")
            await conn.execute_query(insert, [1])
            async with in_transaction() as transaction:
                await transaction.execute_query(insert, [2])
                await transaction.execute_many(insert, [[3], [4]])
                await transaction.execute_query_dict("SELECT x FROM t")
            rows = await conn.execute_query_dict("SELECT count(*) AS n FROM t")
        assert rows == [{"n": 4}]
        assert counted.count == 6
    finally:
        await Tortoise.close_connections()


# -- the suite's check -----------------------------------------------------------------------------


def test_the_session_check_finds_the_password_and_tokens(tmp_path: Path) -> None:
    token = "T" * 20 + "_-" + "k" * 21  # 43 characters, as accounts issues them
    other = "Q" * 43
    log = tmp_path / "server.log"
    log.write_text(
        "\n".join(
            [
                '{"event": "request", "status": 200}',
                '{"event": "logIn failed", "variables": {"p": "' + DEMO_PASSWORD + '"}}',
                f"INFO Authorization: Bearer {token}",
                f"a longer run carrying it: xx{token}yy",
                f"a token nobody issued: {other}",
            ]
        )
        + "\n"
    )
    assert leaks([log], {token}) == [
        f"{log}:2: a password",
        f"{log}:3: a session token",
        f"{log}:4: a session token",
    ]
    assert leaks([log], set(), passwords=("not there",)) == []
    assert leaks([tmp_path / "missing.log"], {token}) == []
    # A server process's log: its tokens are unknown here, so anything shaped like one counts
    # (43 URL-safe characters, mixed case); hex ids and digests don't.
    server = tmp_path / "server.log"
    server.write_text(
        f'{{"request_id": "{"ab12" * 8}", "sha256": "{"0f" * 32}"}}\n'
        f"Bearer {secrets.token_urlsafe(32)}\n"
        "signed up with a-good-password\n"
    )
    assert leaks([server], set(), servers=frozenset({server})) == [
        f"{server}:2: something shaped like a session token",
        f"{server}:3: a password",
    ]


async def test_the_session_capture_sees_the_apps_lines_and_every_issued_token(
    log_capture: LogCapture, fresh_client: GraphQLClient
) -> None:
    alice = await fresh_client.sign_up("capture", "a-good-password")
    assert alice.token in log_capture.tokens
    response = await fresh_client.http.post(
        "/graphql", json={"query": "{ stats { articleCount } }"}, headers={"X-Request-ID": "cap-1"}
    )
    assert response.status_code == 200
    log_capture.handler.flush()
    text = log_capture.path.read_text()
    assert '"request_id": "cap-1"' in text
    # And the check would catch a token that reached a line (not written to the real log).
    probe = log_capture.path.parent / "probe.log"
    probe.write_text(f"leaked {alice.token}\n")
    assert leaks([probe], log_capture.tokens) == [f"{probe}:1: a session token"]
    assert log_capture.leaks() == []


async def test_a_server_process_writes_its_lines_where_the_session_check_reads(
    tmp_path: Path,
) -> None:
    """uvicorn's command line (README's multi-worker command, the tests' servers) leaves
    logging unconfigured: the app writes its lines in LOG_FORMAT itself, uvicorn's with them,
    into the log the session check reads."""
    from tests.conftest import prepare_database
    from tests.services import LOG_FILES, start_app_process

    settings = await prepare_database(f"sqlite://{tmp_path}/server.sqlite3", demo=False)
    log = tmp_path / "server.log"
    process, address = start_app_process(
        {"DATABASE_URL": settings.database_url, "LOG_FORMAT": "json"}, log
    )
    try:
        assert log in LOG_FILES
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            response = await http.post(
                "/graphql?password=hunter2",
                json={"query": "{ stats { articleCount } }"},
                headers={"X-Request-ID": "proc-1"},
            )
            assert response.headers["x-request-id"] == "proc-1"
    finally:
        process.terminate()
        process.wait(10)
    # Every line is the app's format (uvicorn's too: --log-level warning leaves it none here).
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    requests = [line for line in lines if line.get("request_id") == "proc-1"]
    assert [(line["route"], line["status"], line["operation_type"]) for line in requests] == [
        ("/graphql", 200, "query")
    ]
    assert "hunter2" not in log.read_text()  # no access line with the query string


def test_log_level_debug_never_writes_statements_with_their_parameters() -> None:
    """At DEBUG, tortoise, aiosqlite and asyncpg log every statement with its parameters
    (variables, argon2 hashes): those loggers stay at INFO whatever LOG_LEVEL says."""
    stream = io.StringIO()
    previous = logging.getLogger().level
    logs.configure_logging(replace(Settings(), log_level="DEBUG", env="production"), stream)
    try:
        for name in ("tortoise.db_client", "aiosqlite", "asyncpg"):
            logging.getLogger(name).debug("INSERT INTO users VALUES (?): ['$argon2id$secret']")
        logging.getLogger("agora").debug("the app's own debug line")
        text = stream.getvalue()
        assert "argon2id" not in text
        assert "the app's own debug line" in text
    finally:
        for name in ("tortoise.db_client", "aiosqlite", "asyncpg"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        root = logging.getLogger()
        root.setLevel(previous)
        for handler in list(root.handlers):
            if getattr(handler, "stream", None) is stream:
                root.removeHandler(handler)


async def test_request_lines_on_a_loop_are_written_in_order_in_batches_and_never_lost(
    stream: io.StringIO,
) -> None:
    """On the event loop the request lines wait in the handler (one write for many lines):
    written before any other record, on the flush timer, on flush() and at the size bound."""
    root = logging.getLogger()
    access = logs.get_logger("agora.access")
    others = [handler for handler in root.handlers if handler is not logs._direct_handler]
    for handler in others:
        root.removeHandler(handler)
    try:
        for n in range(3):
            logs.emit(access, "request", {"n": n}, "batched")
        assert stream.getvalue() == ""  # waiting for the timer
        logs.get_logger("agora").warning("another record")
        assert [(line["event"], line.get("n")) for line in _lines(stream)] == [
            ("request", 0),
            ("request", 1),
            ("request", 2),
            ("another record", None),
        ]
        logs.emit(access, "request", {"n": 3}, "batched")
        await asyncio.sleep(logs.FLUSH_SECONDS * 4)
        assert _lines(stream)[-1]["n"] == 3  # the timer wrote it
        logs.emit(access, "request", {"n": 4}, "batched")
        assert logs._direct_handler is not None
        logs._direct_handler.flush()  # as logging.shutdown does at exit
        assert _lines(stream)[-1]["n"] == 4
        written = len(_lines(stream))
        for n in range(logs.FLUSH_CHARS // 200 + 1):  # more than FLUSH_CHARS in all
            logs.emit(access, "request", {"n": n, "big": "x" * 200}, "batched")
        assert len(_lines(stream)) > written  # the size bound wrote them, no timer needed
        logs._direct_handler.flush()
        assert _lines(stream)[-1]["n"] == logs.FLUSH_CHARS // 200
    finally:
        for handler in others:
            root.addHandler(handler)


def test_request_ids_are_32_hex_digits_unique_and_new_per_process() -> None:
    from app import observe

    ids = [observe.new_request_id() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert len(set(ids)) == 1000
    prefix = observe._ids.prefix
    assert {value[:16] for value in ids} == {prefix}
    observe._ids.reseed()  # what a forked child does
    assert observe._ids.prefix != prefix
    assert observe.new_request_id()[:16] == observe._ids.prefix
