"""Fixtures: every app test runs on SQLite and again on a real PostgreSQL."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

import logs
from accounts.ratelimit import MemoryRateLimiter
from accounts.service import Accounts
from app import create_app
from app.assets import installed
from db import instrument, models
from db.config import tortoise_config
from db.migrate import apply_migrations
from settings import Settings
from tests.services import (
    LOG_FILES,
    PostgresServer,
    create_database,
    start_postgres,
    unavailable,
)

BACKENDS = ["sqlite", "postgres"]

# -- hypothesis: one profile for the suite ----------------------------------------------------

_IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Explicit @settings in a test (test_lmsr's FAST/THOROUGH, the stateful trading runs) still win;
# this bounds the rest and keeps CI steady: no deadlines (a loaded 2-core runner is not a
# regression), and in CI the same examples every run, with no example database to carry over.
hypothesis_settings.register_profile(
    "agora",
    deadline=None,
    max_examples=50,
    derandomize=_IN_CI,
    **({"database": None} if _IN_CI else {}),
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "agora"))


# -- markers: applied here, by module or test name, rather than in every file --------------------

# Modules (``test_x.py``) or tests (``test_x.py::test_name``, any parametrisation) that take
# seconds; measured with ``pytest --durations``. Names that don't exist (yet) are harmless.
SLOW = (
    "test_trading_stateful.py::test_trading_stateful_sqlite",
    "test_trading_stateful.py::test_trading_stateful_postgres",
    "test_realtime.py",
    "test_scaleout.py",
    "test_interop_graphql_ws.py",
    "test_comments.py::test_fifty_concurrent_posts_get_sequences_without_gaps",
    "test_trading.py::test_many_traders_on_one_market_lose_or_double_nothing",
    "test_string_inputs.py",
    "test_idempotency_race.py",
    "test_password_hashing.py",
    "test_hardening.py::test_http_rate_limits_key_on_the_forwarded_address_behind_a_trusted_proxy",
    "test_hardening.py::test_expensive_fields_are_capped_per_document",
    "test_abuse.py",
    "test_outage.py",
    "test_streams.py",
    "test_readme_http.py",
    "test_schema_fuzz.py",
    "test_ratelimit_redis.py",
    "test_stream_caps_redis.py",
    # Operations: metrics (real processes, uvicorn servers)
    "test_metrics_multiprocess.py",
    "test_metrics_scaleout.py",
    "test_metrics.py::test_sockets_subscriptions_deliveries_and_broker_events_are_counted",
    "test_metrics.py::test_a_replay_ended_by_its_limit_is_counted_so",
    "test_metrics.py::test_an_http_stream_is_counted_while_it_is_open",
    "test_housekeeping.py::test_two_worker_processes_run_each_slot_exactly_once",
    # Operations: app.serve and its graceful shutdown, make services
    "test_drain.py",
    "test_serve_command.py",
    "test_graceful_shutdown.py",
    "test_workers.py",
    "test_devservices.py",
    "test_wire.py",
    "test_make_serve.py",
    # Performance: two worker processes sharing the response cache's versions
    "test_response_cache_workers.py",
    "test_logs.py::test_a_server_process_writes_its_lines_where_the_session_check_reads",
)
# Modules that start PostgreSQL or Redis themselves; besides them, every postgres-backend test
# and every test that asks for one of the SERVICE_FIXTURES is a services test.
SERVICES = (
    "test_scaleout.py",
    "test_abuse.py",
    "test_outage.py",
    "test_ratelimit_redis.py",
    "test_stream_caps_redis.py",
    "test_metrics_scaleout.py",
    "test_housekeeping.py::test_two_worker_processes_run_each_slot_exactly_once",
    # Operations: real processes on PostgreSQL and Redis; make services' own servers
    "test_graceful_shutdown.py",
    "test_workers.py",
    "test_devservices.py",
    # Performance: Redis-backed response cache versions and session revocations
    "test_response_cache_workers.py",
    "test_response_cache.py::test_a_bump_is_not_skipped_by_the_reads_outage_breaker",
    "test_session_cache.py::test_a_revocation_is_in_redis_before_log_out_answers",
    "test_redis_broker_health.py",
)
SERVICE_FIXTURES = {"postgres_server", "redis_server"}
NODE = ("test_interop_graphql_ws.py", "test_graphql_http_audit.py", "test_http_clients.py")
# Tests that drive headless Chromium (through node's playwright-core: node tests too) are the
# ones in tests/browser/ (by folder: tests/http/test_demo_page.py needs no browser).
BROWSER_FOLDER = Path(__file__).resolve().parent / "browser"


def _listed(item: pytest.Item, names: tuple[str, ...]) -> bool:
    module = item.path.name
    test = f"{module}::{getattr(item, 'originalname', item.name)}"
    return module in names or test in names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests ``slow``, ``services``, ``node`` and ``browser`` (``make test-fast`` leaves
    them out)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("backend") == "postgres"
        fixtures = set(getattr(item, "fixturenames", ()))
        if on_postgres or fixtures & SERVICE_FIXTURES or _listed(item, SERVICES):
            item.add_marker(pytest.mark.services)
        in_browser = item.path.parent == BROWSER_FOLDER
        if _listed(item, NODE) or in_browser:
            item.add_marker(pytest.mark.node)
        if in_browser:
            item.add_marker(pytest.mark.browser)
        if _listed(item, SLOW):
            item.add_marker(pytest.mark.slow)


# -- the session's logs: never a password or a token -----------------------------------------------

DEMO_PASSWORD = "demo-password"
# The demo accounts' and the passwords the tests sign up and change to.
PASSWORDS = (DEMO_PASSWORD, "a-good-password", "a-new-password")
# secrets.token_urlsafe(32), as accounts issues session tokens.
TOKEN_LENGTH = 43
_TOKEN_RUN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH},}}")
# What a token issued by a server process looks like (its tokens are unknown here): exactly 43
# URL-safe characters, mixed case (request ids are hex, digests lower-case hex).
_LIKE_A_TOKEN = re.compile(
    rf"(?<![A-Za-z0-9_-])(?=[^\s]*[A-Z])(?=[^\s]*[a-z])[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}(?![A-Za-z0-9_-])"
)


def leaks(
    paths: list[Path],
    tokens: set[str],
    passwords: tuple[str, ...] = PASSWORDS,
    servers: frozenset[Path] = frozenset(),
) -> list[str]:
    """Where ``paths`` hold a password or one of ``tokens`` (in the logs of ``servers``, whose
    tokens this process never saw, anything shaped like one): "file:line: what" for each."""
    found: list[str] = []
    for path in paths:
        if not path.exists():
            continue
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if any(password in line for password in passwords):
                    found.append(f"{path}:{number}: a password")
                if path in servers and _LIKE_A_TOKEN.search(line):
                    found.append(f"{path}:{number}: something shaped like a session token")
                for run in _TOKEN_RUN.findall(line):
                    windows = (
                        run[i : i + TOKEN_LENGTH] for i in range(len(run) - TOKEN_LENGTH + 1)
                    )
                    if any(window in tokens for window in windows):
                        found.append(f"{path}:{number}: a session token")
                        break
    return found


class LogCapture:
    """Every log record of the test session (this process: one xdist worker), formatted as the
    app writes it, in a file (not in memory); the session tokens issued meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tokens: set[str] = set()
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setLevel(logging.DEBUG)
        self.handler.setFormatter(logs.formatter(json_lines=True))
        self.handler.addFilter(logs.TruncatingFilter())

    def paths(self) -> list[Path]:
        """The session's own log and every server log of the session."""
        self.handler.flush()
        return [self.path, *LOG_FILES]

    def leaks(self) -> list[str]:
        """Where the session's logs hold a password or a token."""
        return leaks(self.paths(), self.tokens, servers=frozenset(LOG_FILES))


# pytest's own, and what Tortoise.init sets (the same values every time).
_ENVIRONMENT_OF_THE_TOOLS = frozenset({"PYTEST_CURRENT_TEST", "TIMEZONE", "USE_TZ"})


@pytest.fixture(autouse=True)
def environment_unchanged() -> Iterator[None]:
    """Fails a test that leaves ``os.environ`` changed (after monkeypatch has undone its own):
    every server a later test of this worker starts inherits it. A removed metrics folder left
    in ``PROMETHEUS_MULTIPROC_DIR`` once made such a server exit at import, far from the cause."""
    before = dict(os.environ)
    yield
    after = dict(os.environ)
    changed = sorted(
        name
        for name in before.keys() | after.keys()
        if before.get(name) != after.get(name) and name not in _ENVIRONMENT_OF_THE_TOOLS
    )
    if changed:
        for name in changed:
            if name in before:
                os.environ[name] = before[name]
            else:
                os.environ.pop(name, None)
        pytest.fail(f"the test left the environment changed: {', '.join(changed)}")


@pytest.fixture(scope="session", autouse=True)
def log_capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogCapture]:
    """The suite's check that no log line ever carries a password or a token: every record
    (the app's loggers at DEBUG) and every server log, read at the end of the session."""
    capture = LogCapture(tmp_path_factory.mktemp("session-logs") / "records.log")
    root, app_loggers = logging.getLogger(), logging.getLogger("agora")
    level = app_loggers.level
    root.addHandler(capture.handler)
    # uvicorn's loggers stop propagating once a test builds a uvicorn.Config in this process.
    uvicorn_loggers = [
        logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    ]
    for logger in uvicorn_loggers:
        logger.addHandler(capture.handler)
    app_loggers.setLevel(logging.DEBUG)
    issue = Accounts._issue

    async def issuing(self: Accounts, *args: Any, **kwargs: Any) -> Any:
        issued = await issue(self, *args, **kwargs)
        capture.tokens.add(issued.token)
        return issued

    Accounts._issue = issuing  # type: ignore[method-assign]
    try:
        yield capture
    finally:
        Accounts._issue = issue  # type: ignore[method-assign]
        app_loggers.setLevel(level)
        root.removeHandler(capture.handler)
        for logger in uvicorn_loggers:
            logger.removeHandler(capture.handler)
        capture.handler.close()
    found = capture.leaks()
    if found:
        pytest.fail(
            f"{len(found)} log lines carry a secret (the first ones):\n" + "\n".join(found[:20]),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.stop()


async def new_database(request: pytest.FixtureRequest, backend: str, tmp_dir: Any) -> str:
    """An empty database of ``backend``; returns its DATABASE_URL."""
    if backend == "sqlite":
        return f"sqlite://{tmp_dir}/agora-{uuid.uuid4().hex[:8]}.sqlite3"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return await create_database(server, f"agora_test_{uuid.uuid4().hex[:12]}")


def forget_compiled_statements() -> None:
    """Tortoise caches INSERT/UPDATE SQL per connection *name*, not per dialect: a process that
    moves between SQLite and PostgreSQL (only this suite does) must drop the cache each time."""
    EXECUTOR_CACHE.clear()


def suite_settings(url: str) -> Settings:
    """The settings of the apps the suite builds in-process over the database at ``url``
    (``prepare_database`` says why each differs from the default)."""
    return Settings(
        database_url=url,
        env="test",
        housekeeping=False,
        redis_limits_timeout_ms=2000,
        session_cache_ms=0,
        # Each app the suite starts sets the process's collector (gctuning): Python's own
        # threshold keeps the suite's memory as it was (at 20,000, before gctuning collected the
        # young generations ahead of each freeze, a worker grew to 9 GB).
        gc_gen0_threshold=0,
    )


async def prepare_database(url: str, demo: bool) -> Settings:
    """Migrate the database at ``url`` (and load the demo data); returns its settings."""
    forget_compiled_statements()
    # No housekeeping loop in the apps tests build in-process: its first look would add
    # statements to the counted ones (tests/ops/test_housekeeping.py turns it on itself).
    # Redis checks get 2 s, not 250 ms: a loaded CI machine is not a Redis outage (the tests
    # of outages stop Redis, or set their own timeout).
    # No session cache (SESSION_CACHE_MS): tests change sessions in the database behind the
    # app's back and expect the next request to see it; tests/accounts/test_session_cache.py
    # turns it on.
    settings = suite_settings(url)
    await apply_migrations(settings)
    if demo:
        from demo.seed import load_demo_data

        await Tortoise.init(config=tortoise_config(settings))
        try:
            await load_demo_data()
        finally:
            await Tortoise.close_connections()
    return settings


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def demo_settings(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated database with the demo data, shared by the read-only tests of a backend."""
    url = await new_database(request, backend, tmp_path_factory.mktemp(backend))
    return await prepare_database(url, demo=True)


@pytest.fixture
async def fresh_settings(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A migrated, empty database for a test that writes."""
    url = await new_database(request, backend, tmp_path_factory.mktemp(backend))
    return await prepare_database(url, demo=False)


def readers_articles() -> Any:
    """The articles readers see, as the database says (published and live): the demo data's
    drafts and scheduled article are not among them."""
    return models.Article.filter(
        state=models.ArticleState.PUBLISHED, published_at__lte=datetime.now(UTC)
    )


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


SIGN_UP = """
mutation($input: SignUpInput!) {
  signUp(input: $input) { token expiresAt user { id username displayName role }
    errors { code message field retryAfterSeconds } }
}
"""


class GraphQLClient:
    """Sends GraphQL over HTTP the way browsers do."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def as_user(self, token: str | None) -> GraphQLClient:
        """The same client sending ``Authorization: Bearer <token>``."""
        return GraphQLClient(self.http, token)

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        all_headers = dict(headers or {})
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a query that must succeed."""
        body = await self.post(query, variables)
        assert "errors" not in body, json.dumps(body["errors"], indent=1)
        data: dict[str, Any] = body["data"]
        return data

    async def sign_up(
        self, username: str, password: str = "a-good-password", display_name: str = ""
    ) -> GraphQLClient:
        """Sign a new account up; the client logged in as it."""
        data = await self.data(
            SIGN_UP,
            {
                "input": {
                    "username": username,
                    "password": password,
                    "displayName": display_name or username.title(),
                }
            },
        )
        payload = data["signUp"]
        assert payload["errors"] == [], payload["errors"]
        return self.as_user(payload["token"])

    async def log_in(self, username: str, password: str = "demo-password") -> GraphQLClient:
        """A client logged in with an existing account."""
        data = await self.data(
            """mutation($u: String!, $p: String!) { logIn(input: {username: $u, password: $p}) {
                 token errors { code } } }""",
            {"u": username, "p": password},
        )
        assert data["logIn"]["errors"] == [], data
        return self.as_user(data["logIn"]["token"])


async def _client_for(
    settings: Settings, limiter: MemoryRateLimiter | None = None
) -> AsyncIterator[GraphQLClient]:
    forget_compiled_statements()
    app = create_app(settings, limiter=limiter)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield GraphQLClient(http)


@pytest.fixture
async def client(demo_settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A client of an app on the shared demo database."""
    async for gql in _client_for(demo_settings):
        yield gql


@pytest.fixture
def clock() -> FakeClock:
    """The rate limiters' clock in ``fresh_client``'s app."""
    return FakeClock()


@pytest.fixture
async def fresh_client(fresh_settings: Settings, clock: FakeClock) -> AsyncIterator[GraphQLClient]:
    """A client of an app on its own empty database; its rate limits run on ``clock``."""
    async for gql in _client_for(fresh_settings, MemoryRateLimiter(clock=clock)):
        yield gql


async def seed_demo(settings: Settings) -> None:
    """Load the demo data into ``settings``' (migrated, empty) database."""
    from demo.seed import load_demo_data

    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(settings))
    try:
        await load_demo_data()
    finally:
        await Tortoise.close_connections()


@pytest.fixture
async def demo_client(fresh_settings: Settings, clock: FakeClock) -> AsyncIterator[GraphQLClient]:
    """A client of an app on its own database with the demo data (for tests that write)."""
    await seed_demo(fresh_settings)
    async for gql in _client_for(fresh_settings, MemoryRateLimiter(clock=clock)):
        yield gql


def with_settings(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with some values changed."""
    return replace(settings, **changes)


class SqlCounter:
    """Counts the SQL statements sent through the default connection."""

    METHODS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many")

    def __init__(self) -> None:
        self.statements: list[str] = []

    @contextmanager
    def counting(self) -> Iterator[SqlCounter]:
        conn = connections.get("default")
        originals = {name: getattr(conn, name) for name in self.METHODS}
        # Per task, so that concurrent statements all count but one calling another doesn't.
        inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside", default=False)

        def wrap(name: str) -> Any:
            original = originals[name]

            async def counted(query: str, *args: Any, **kwargs: Any) -> Any:
                if inside.get():
                    return await original(query, *args, **kwargs)
                self.statements.append(query)
                token = inside.set(True)
                try:
                    return await original(query, *args, **kwargs)
                finally:
                    inside.reset(token)

            return counted

        for name in self.METHODS:
            setattr(conn, name, wrap(name))
        # Reads batched into one hand-off (db.sqlite_reads) bypass the methods: each is told.
        instrument.observers.append(self.statements.append)
        try:
            yield self
        finally:
            instrument.observers.remove(self.statements.append)
            for name in self.METHODS:
                setattr(conn, name, originals[name])


@pytest.fixture
def vendored() -> None:
    """The browser assets ``make assets`` fetches are installed, or the test skips (fails
    when services are required): pages without them load their scripts from the CDN."""
    if not installed():
        unavailable("the browser assets aren't installed in web/node_modules: run `make assets`")
