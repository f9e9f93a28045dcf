"""Hostile clients against one real uvicorn process, while an honest client keeps asking.

Each scenario runs an attack — the item-1 query and its variants, aliased password checks,
concurrent idempotent retries, a replay flood, oversized websocket frames — and meanwhile
another client sends at least 200 plain ``{ stats { articleCount } }`` queries, one after the
other. The attack's own answers must carry their exact codes, and the honest client must not
notice: its p99 stays within max(5 × the quiet p50 measured right before, in the same run,
250 ms), and the server's RSS (``VmRSS`` of the uvicorn process) within its idle RSS + 300 MB.

The server is started the way README's command line starts it (``--no-proxy-headers
--ws-max-size 65536``), on a SQLite file with the demo data (and one 2,000-comment thread
for the replays), once for the module; idle RSS is measured after a warm-up. The honest client
is a process of its own with one kept-alive connection, so that the attack's client-side work
in this process (parsing megabyte answers, thousands of frames) doesn't count as server
latency. Every loop is bounded in count and time, the whole module by MODULE_SECONDS, and only
127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from tortoise import Tortoise
from tortoise.expressions import F
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from api.core.node import to_global_id
from db import models
from db.config import tortoise_config
from tests.conftest import forget_compiled_statements, prepare_database
from tests.services import PostgresServer, create_database, start_app_process

pytestmark = [pytest.mark.slow]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"
TRANSPORT = Subprotocol("graphql-transport-ws")

STATS = "{ stats { articleCount } }"
STATS_ANSWER = {"data": {"stats": {"articleCount": 50}}}

# The whole module, server start-up included, stops by itself within this (CI allows 90 s):
# every wait below is cut to what is left of it.
MODULE_SECONDS = 85.0

# The honest client's budget.
QUIET_QUERIES = 60
BUSY_QUERIES = 200
STATS_SECONDS = 15.0  # a run stops here whatever it has (and then fails the count)
STATS_TIMEOUT = 5.0  # one stats query; a slower one fails the run anyway
P99_FLOOR = 0.250
P50_FACTOR = 5
RSS_HEADROOM = 300 * 1024 * 1024

# Attacks: how long one may take to get going and to wind down once told to stop, and the
# timeout of each of their requests.
ENGAGE_SECONDS = 10.0
WIND_DOWN_SECONDS = 10.0
ATTACK_SECONDS = 30.0
REQUEST_TIMEOUT = 10.0
# A refusal "before execution" comes back at once, even from a busy server.
REFUSAL_SECONDS = 2.0

FLOOD_COMMENTS = 2000
REPLAY_SUBSCRIPTIONS = 100
OVERSIZED_BYTES = 15 * 1024 * 1024
OVERSIZED_PER_ROUND = 10
CLOSE_SECONDS = 3.0


# -- documents -------------------------------------------------------------------------------

ARTICLE_PAGE = (
    "body comments(first: 20) { nodes { body bodyHtml author { username } "
    "replies(first: 10) { nodes { body bodyHtml } } } } relatedArticles(first: 20) { body }"
)


def _aliased(count: int, selection: str) -> str:
    return " ".join(f"a{i}: {selection}" for i in range(count))


# Issue item 1: the article page through nodes(ids:), 30 times over.
ITEM_1 = (
    "query($ids: [ID!]!) { "
    + _aliased(30, "nodes(ids: $ids) { ... on Article { " + ARTICLE_PAGE + " } }")
    + " }"
)
# The same through a named fragment.
ITEM_1_FRAGMENT = (
    "query($ids: [ID!]!) { "
    + _aliased(30, "nodes(ids: $ids) { ...Page }")
    + " } fragment Page on Article { "
    + ARTICLE_PAGE
    + " }"
)
# The related stories of the related stories of … (the sizes from variables).
RELATED = (
    "query($s: String!, $n: Int!) { article(slug: $s) { relatedArticles(first: $n) { "
    "relatedArticles(first: $n) { relatedArticles(first: $n) { relatedArticles(first: $n) "
    "{ body } } } } } }"
)
# One alias over the limit.
TOO_MANY_ALIASES = "{ " + _aliased(31, "stats { articleCount }") + " }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"

LOG_IN = "logIn(input: {username: $u, password: $p}) { token errors { code } }"
CHANGE_PASSWORD = (
    "changePassword(input: {currentPassword: $c, newPassword: $n}) { token errors { code } }"
)
SIGN_UP = (
    "mutation($u: String!, $p: String!) { signUp(input: {username: $u, password: $p, "
    "displayName: $u}) { token errors { code } } }"
)
BUY = (
    "mutation($input: BuySharesInput!) { buyShares(input: $input) { "
    "trade { id amount shares } balance errors { code message } } }"
)
BALANCE = "{ me { balance } }"
REPLAY = (
    "subscription($a: ID!, $after: Int) { commentAdded(articleId: $a, afterSequence: $after) "
    "{ sequence body bodyHtml author { username } } }"
)


def _aliased_mutation(count: int, selection: str, variables: str) -> str:
    return f"mutation({variables}) {{ " + _aliased(count, selection) + " }"


# -- the server ------------------------------------------------------------------------------


def rss_of(pid: int) -> int:
    """Resident set size of process ``pid``, bytes (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class Budget:
    """What is left of the module's time: every wait asks for its share and gets at most it."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, wanted: float) -> float:
        """``wanted`` seconds, or fewer if the module's time is nearly up (then fail)."""
        left = self.deadline - time.monotonic()
        assert left > 0.5, f"the module's {MODULE_SECONDS:.0f} s are used up"
        return min(wanted, left)

    def grace(self, wanted: float) -> float:
        """For clean-up: ``wanted`` seconds or what is left, but never less than one."""
        return max(1.0, min(wanted, self.deadline - time.monotonic()))


@dataclass
class Server:
    """The uvicorn process under attack and what the scenarios need to know about its data."""

    process: subprocess.Popen[bytes]
    url: str
    ws_url: str
    log: Path
    article_id: str  # the item-1 article (demo threads on it)
    outcome_id: str  # an outcome of one of its markets
    stats: StatsClient
    budget: Budget
    flood: Flood | None  # the long thread, where there is one
    idle_rss: int = 0
    figures: list[Figures] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> None:
        code = self.process.poll()
        assert code is None, f"the server exited with {code}:\n{self.log_tail()}"

    def log_tail(self) -> str:
        return _tail(self.log)


@dataclass(frozen=True)
class Flood:
    """The article given FLOOD_COMMENTS more comments for the replays."""

    article_id: str  # global id
    sequences: list[int]  # its live comments' sequences, in order
    start: int  # the sequences after this one are the inserted comments (all by bob)
    comment_count: int


async def _prepare(url: str, flood: bool) -> Flood | None:
    """Migrate, load the demo data and, with ``flood``, add a long thread: FLOOD_COMMENTS
    comments on another article by bulk INSERTs in this process, the article's counters moved
    as the write path moves them (``comment_seq`` to the last sequence, ``comment_count`` by as
    many)."""
    settings = await prepare_database(url, demo=True)
    if not flood:
        return None
    await Tortoise.init(config=tortoise_config(settings))
    try:
        article = await models.Article.exclude(slug=CENTRAL_ASIA).order_by("id").first()
        assert article is not None
        author = await models.User.get(username="bob")
        start, now = article.comment_seq, datetime.now(UTC)
        await models.Comment.bulk_create(
            [
                models.Comment(
                    article_id=article.id,
                    author_id=author.id,
                    sequence=start + n,
                    body=f"Flood comment {n} with **some** markdown",
                    body_html=f"<p>Flood comment {n} with <strong>some</strong> markdown</p>",
                    created_at=now,
                )
                for n in range(1, FLOOD_COMMENTS + 1)
            ],
            batch_size=500,
        )
        await models.Article.filter(id=article.id).update(
            comment_seq=start + FLOOD_COMMENTS, comment_count=F("comment_count") + FLOOD_COMMENTS
        )
        rows = (
            await models.Comment.filter(article_id=article.id, deleted=False)
            .order_by("sequence")
            .values("sequence")
        )
        live = [int(row["sequence"]) for row in rows]
        stored = await models.Article.get(id=article.id)
        # The counters say what the write path would have left: every live comment counted,
        # the last one's sequence handed out.
        assert stored.comment_count == len(live) and stored.comment_seq == live[-1]
        return Flood(to_global_id("Article", article.id), live, start, stored.comment_count)
    finally:
        await Tortoise.close_connections()
        forget_compiled_statements()


def _start(database_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        # The attacks come from one address: limits that would refuse them before they cost
        # anything are lifted, so that the cost itself is what is measured.
        "SIGNUP_RATE_PER_ADDRESS": "100000/1",
        "LOGIN_FAILURE_RATE_PER_ACCOUNT": "100000/1",
        "LOGIN_FAILURE_RATE_PER_ADDRESS": "100000/1",
        "CHANGE_PASSWORD_FAILURE_RATE": "100000/1",
        "COMMENT_RATE": "100000/1",
    }
    return start_app_process(env, log, HOST)


def _tail(log: Path, chars: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


async def _wait_ready(
    process: subprocess.Popen[bytes], address: str, log: Path, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://{address}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the server never got ready:\n{_tail(log)}")


async def _post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, (response.status_code, response.text[:500])
    body: dict[str, Any] = response.json()
    return body


def _data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, json.dumps(body["errors"])[:2000]
    data: dict[str, Any] = body["data"]
    return data


async def _connect(ws_url: str, token: str | None = None) -> ClientConnection:
    ws = await websockets.connect(ws_url, subprotocols=[TRANSPORT], open_timeout=5)
    payload = {"authorization": f"Bearer {token}"} if token else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ack["type"] == "connection_ack", ack
    return ws


async def _close_draining(ws: ClientConnection, seconds: float = 5.0) -> int:
    """Close, reading (and dropping) what the server still sends until its close frame
    arrives: a client that stops reading has its incoming queue fill, stops reading the socket
    and never sees the close. How many messages were dropped."""
    closer = asyncio.create_task(ws.close())
    dropped = 0
    deadline = time.monotonic() + seconds
    with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
            dropped += 1
    await asyncio.wait_for(closer, seconds)
    return dropped


async def _warm_up(server: Server) -> None:
    """One of everything the scenarios do, so that idle RSS is measured after imports, caches,
    pool threads and the first hash rather than before them."""
    await server.stats.run(30, server.budget.left(STATS_SECONDS))
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
        _data(await _post(http, ITEM_1, {"ids": [server.article_id]}))
        bad = await _post(
            http,
            _aliased_mutation(1, LOG_IN, "$u: String!, $p: String!"),
            {"u": "alice", "p": "not-her-password"},
        )
        assert _data(bad)["a0"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]
    ws = await _connect(server.ws_url)
    await ws.close()


@contextlib.asynccontextmanager
async def _serving(
    database_url: str, folder: Path, budget: Budget, flood: Flood | None
) -> AsyncIterator[Server]:
    """A uvicorn process on the prepared database, warmed up, its idle RSS measured."""
    log = folder / "server.log"
    process, address = _start(database_url, log)
    stats: StatsClient | None = None
    try:
        await _wait_ready(process, address, log, budget.left(30))
        stats = StatsClient(f"http://{address}")
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=REQUEST_TIMEOUT) as http:
            article = _data(
                await _post(
                    http,
                    "query($s: String!) { article(slug: $s) { id markets { outcomes { id } } } }",
                    {"s": CENTRAL_ASIA},
                )
            )["article"]
            if flood is not None:
                # The API counts the inserted comments as the write path would have.
                flooded = _data(
                    await _post(
                        http,
                        "query($a: ID!) { node(id: $a) { ... on Article { commentCount } } }",
                        {"a": flood.article_id},
                    )
                )["node"]
                assert flooded == {"commentCount": flood.comment_count}
        served = Server(
            process=process,
            url=f"http://{address}",
            ws_url=f"ws://{address}/graphql",
            log=log,
            article_id=article["id"],
            outcome_id=article["markets"][0]["outcomes"][0]["id"],
            stats=stats,
            budget=budget,
            flood=flood,
        )
        await _warm_up(served)
        await asyncio.sleep(0.5)
        served.idle_rss = rss_of(process.pid)
        yield served
        print("\n" + "\n".join(f.line() for f in served.figures))
    finally:
        if stats is not None:
            stats.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def budget() -> Budget:
    """The module's time, from its first fixture on."""
    return Budget(MODULE_SECONDS)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, budget: Budget) -> AsyncIterator[Server]:
    """The module's server: SQLite, the demo data and one long thread."""
    folder = tmp_path_factory.mktemp("abuse")
    database_url = f"sqlite://{folder}/abuse.sqlite3"
    flood = await _prepare(database_url, flood=True)
    async with _serving(database_url, folder, budget, flood) as served:
        yield served


@pytest.fixture(scope="module")
async def postgres_app_server(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory, budget: Budget
) -> AsyncIterator[Server]:
    """A second server, on a database of the session's PostgreSQL with the demo data (only the
    idempotent retries use it: the rest is not database-specific)."""
    postgres = postgres_server
    database_url = await create_database(postgres, f"agora_abuse_{uuid.uuid4().hex[:10]}")
    await _prepare(database_url, flood=False)
    async with _serving(database_url, tmp_path_factory.mktemp("abuse-pg"), budget, None) as served:
        yield served


# -- measuring -------------------------------------------------------------------------------


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p99(samples: list[float]) -> float:
    if len(samples) < 2:
        return max(samples, default=float("inf"))
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


# The honest client runs in a process of its own: in this one, the attack's client-side work
# (parsing megabyte answers, thousands of frames) would hold the GIL and show up as latency.
# One line in ("COUNT SECONDS"), one JSON line out per run; bounded by SECONDS and its timeout.
_STATS_CLIENT = r"""
import json, sys, time
import httpx
url, query, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with httpx.Client(base_url=url, timeout=float(sys.argv[4])) as http:
    for line in sys.stdin:
        count, seconds = int(line.split()[0]), float(line.split()[1])
        deadline = time.monotonic() + seconds
        latencies, problems = [], []
        while len(latencies) < count and time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                response = http.post("/graphql", json={"query": query})
                if response.status_code != 200 or response.json() != expected:
                    problems.append(f"{response.status_code} {response.text[:300]}")
            except Exception as exc:
                problems.append(repr(exc))
            latencies.append(time.perf_counter() - began)
        print(json.dumps({"latencies": latencies, "problems": problems[:5]}), flush=True)
"""


class StatsClient:
    """Sequential ``{ stats { articleCount } }`` queries on one kept-alive connection, sent from
    a separate process; each run returns the latency of every query, seconds."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _STATS_CLIENT,
                url,
                STATS,
                json.dumps(STATS_ANSWER),
                str(STATS_TIMEOUT),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    async def run(self, count: int, seconds: float) -> list[float]:
        """Up to ``count`` queries (fewer if ``seconds`` run out); all must answer correctly."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{count} {seconds}\n")
        stdin.flush()
        line = await asyncio.wait_for(
            asyncio.to_thread(stdout.readline), seconds + STATS_TIMEOUT + 5
        )
        assert line, f"the stats client exited with {self.process.poll()}"
        answer = json.loads(line)
        assert answer["problems"] == [], answer["problems"]
        latencies: list[float] = answer["latencies"]
        return latencies

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class RssSampler:
    """The largest RSS of a process, sampled every 20 ms on a thread while in the block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.max = max(self.max, rss_of(self.pid))
                self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Control:
    """What an attack is told: set ``engaged`` once its traffic flows; stop when ``stop`` is
    set (or at its own bound, whichever comes first)."""

    seconds: float
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    engaged: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    @property
    def going(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline


@dataclass
class Figures:
    """One scenario's measurements."""

    name: str
    quiet: list[float]
    busy: list[float]
    idle_rss: int
    max_rss: int
    rss_samples: int
    attack_outlasted_stats: bool
    note: str = ""

    @property
    def bound(self) -> float:
        return max(P50_FACTOR * p50(self.quiet), P99_FLOOR)

    def line(self) -> str:
        mib = 1024 * 1024
        return (
            f"[abuse] {self.name}: quiet p50 {p50(self.quiet) * 1000:.1f} ms, "
            f"busy n={len(self.busy)} p50 {p50(self.busy) * 1000:.1f} ms "
            f"p99 {p99(self.busy) * 1000:.1f} ms max {max(self.busy) * 1000:.1f} ms "
            f"(bound {self.bound * 1000:.0f} ms), RSS idle {self.idle_rss / mib:.0f} MiB "
            f"max {self.max_rss / mib:.0f} MiB (+{(self.max_rss - self.idle_rss) / mib:.0f}, "
            f"{self.rss_samples} samples){'; ' + self.note if self.note else ''}"
        )

    def check(self) -> None:
        assert len(self.busy) >= BUSY_QUERIES, self.line()
        assert self.attack_outlasted_stats, f"the attack ended before the stats run: {self.line()}"
        assert p99(self.busy) <= self.bound, self.line()
        assert self.max_rss <= self.idle_rss + RSS_HEADROOM, self.line()


async def measure_while(
    server: Server,
    name: str,
    attack: Callable[[Control], Coroutine[Any, Any, T]],
    wind_down: float = WIND_DOWN_SECONDS,
) -> tuple[T, Figures]:
    """Quiet stats queries, then the attack with ≥ BUSY_QUERIES stats queries sent meanwhile.

    The attack's own failure is raised first (after the figures are printed); then the
    latency and memory bounds are checked.
    """
    server.alive()
    budget = server.budget
    quiet = await server.stats.run(QUIET_QUERIES, budget.left(STATS_SECONDS))
    assert len(quiet) >= 50, quiet
    control = Control(budget.left(ATTACK_SECONDS))
    with RssSampler(server.pid) as rss:
        task = asyncio.create_task(attack(control))
        engaged = asyncio.create_task(control.engaged.wait())
        await asyncio.wait(
            {task, engaged}, timeout=budget.left(ENGAGE_SECONDS), return_when="FIRST_COMPLETED"
        )
        engaged.cancel()
        if task.done():
            task.result()  # raises what went wrong
            raise AssertionError(f"{name}: the attack ended before it engaged")
        if not control.engaged.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise AssertionError(f"{name}: the attack never engaged")
        try:
            busy = await server.stats.run(BUSY_QUERIES, budget.left(STATS_SECONDS))
        finally:
            outlasted = not task.done()
            control.stop.set()
            done, _ = await asyncio.wait({task}, timeout=budget.grace(wind_down))
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise AssertionError(f"{name}: the attack didn't stop within {wind_down} s")
            if task.exception() is not None and sys.exc_info()[0] is not None:
                # The stats run failed too: that is raised; the attack's error goes with it.
                print(f"\n{name}: the attack failed as well: {task.exception()!r}")
    figures = Figures(
        name, quiet, busy, server.idle_rss, rss.max, rss.samples, attack_outlasted_stats=outlasted
    )
    server.figures.append(figures)
    error = task.exception()
    if error is not None:
        figures.note = f"attack failed: {type(error).__name__}"
    print("\n" + figures.line())
    if error is not None:
        raise error
    server.alive()
    figures.check()
    return task.result(), figures


def _codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def assert_refused(body: dict[str, Any], code: str, limit: str | None = None) -> None:
    """Refused before execution: ``data`` null, one error with ``code`` (and ``limit``)."""
    assert _codes(body) == [code], json.dumps(body)[:1000]
    assert body.get("data") is None, json.dumps(body)[:1000]
    if limit is not None:
        assert body["errors"][0]["extensions"].get("limit") == limit, body["errors"][0]


async def timed(coro: Awaitable[T]) -> tuple[T, float]:
    began = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - began


# -- 1. the item-1 query and its variants ----------------------------------------------------


async def test_item_one_query_and_variants_are_refused_before_execution(server: Server) -> None:
    """30 aliases of the article page over 100 ids are refused (``nodes``) before execution, as
    are the fragment and literal-id forms, nested related stories and a 31st alias; the same
    documents with small variables run. Sent back to back while the stats client asks."""
    few = {"ids": [server.article_id]}
    many = {"ids": [server.article_id] * 100}
    literal_ids = "[" + ", ".join(json.dumps(server.article_id) for _ in range(100)) + "]"
    literal = (
        "{ "
        + _aliased(30, f"nodes(ids: {literal_ids}) {{ ... on Article {{ {ARTICLE_PAGE} }} }}")
        + " }"
    )
    too_many_ids = {"ids": [to_global_id("Tag", i) for i in range(1, 102)]}

    def page_ran(body: dict[str, Any]) -> None:
        data = _data(body)
        assert sorted(data) == sorted(f"a{i}" for i in range(30))
        for answer in data.values():
            assert len(answer) == 1 and answer[0]["body"], answer
            assert answer[0]["comments"]["nodes"], answer[0]["comments"]
            assert answer[0]["relatedArticles"], answer[0]

    def related_ran(body: dict[str, Any]) -> None:
        related = _data(body)["article"]["relatedArticles"]
        assert len(related) == 2 and all(len(r["relatedArticles"]) == 2 for r in related)

    def refused(
        limit: str | None, code: str = "QUERY_TOO_COMPLEX"
    ) -> Callable[[dict[str, Any]], None]:
        return lambda body: assert_refused(body, code, limit)

    # (document, variables, check, whether it must answer at once): small variables first,
    # then the same document text oversized, so a cached validation can't let it through.
    cases: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], None], bool]] = [
        (ITEM_1, few, page_ran, False),
        (ITEM_1, many, refused("nodes"), True),
        (ITEM_1_FRAGMENT, few, page_ran, False),
        (ITEM_1_FRAGMENT, many, refused("nodes"), True),
        (literal, {}, refused("nodes"), True),
        (RELATED, {"s": CENTRAL_ASIA, "n": 2}, related_ran, False),
        (RELATED, {"s": CENTRAL_ASIA, "n": 20}, refused("nodes"), True),
        (TOO_MANY_ALIASES, {}, refused("aliases"), True),
        (NODES, too_many_ids, refused(None, "BAD_USER_INPUT"), True),
    ]

    async def attack(control: Control) -> int:
        rounds = 0
        slowest_refusal = 0.0
        async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
            control.engaged.set()
            while control.going and rounds < 500:
                for query, variables, check, at_once in cases:
                    body, seconds = await timed(_post(http, query, variables))
                    check(body)
                    if at_once:
                        slowest_refusal = max(slowest_refusal, seconds)
                rounds += 1
        assert slowest_refusal < REFUSAL_SECONDS, slowest_refusal
        return rounds

    rounds, figures = await measure_while(server, "item-1 query and variants", attack)
    assert rounds >= 1
    figures.note = f"{rounds} rounds of {len(cases)} documents"


# -- 2. aliased password checks --------------------------------------------------------------


async def test_aliased_hashing_mutations_are_refused_and_a_few_stall_no_one(
    server: Server,
) -> None:
    """30 aliased changePassword or logIn (and 6, one over the limit) are refused with
    ``expensive`` before any hash; several clients each sending 5 aliased failing logIns at once
    get INVALID_CREDENTIALS for every one, and the stats client doesn't notice."""
    name = f"hasher_{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
        signed = _data(await _post(http, SIGN_UP, {"u": name, "p": "the-first-password"}))
        assert signed["signUp"]["errors"] == []
        token = signed["signUp"]["token"]
        change = _aliased_mutation(30, CHANGE_PASSWORD, "$c: String!, $n: String!")
        body, seconds = await timed(
            _post(http, change, {"c": "the-first-password", "n": "another-password"}, token)
        )
        assert_refused(body, "QUERY_TOO_COMPLEX", "expensive")
        assert seconds < REFUSAL_SECONDS
        for count in (30, 6):
            log_in = _aliased_mutation(count, LOG_IN, "$u: String!, $p: String!")
            body, seconds = await timed(_post(http, log_in, {"u": name, "p": "wrong-password"}))
            assert_refused(body, "QUERY_TOO_COMPLEX", "expensive")
            assert seconds < REFUSAL_SECONDS
        # Nothing of the refused documents ran: the session is live, the password unchanged.
        assert _data(await _post(http, BALANCE, token=token))["me"] == {"balance": "1000.00"}
        one = _aliased_mutation(1, LOG_IN, "$u: String!, $p: String!")
        again = _data(await _post(http, one, {"u": name, "p": "the-first-password"}))["a0"]
        assert again["errors"] == [] and again["token"], again

    five = _aliased_mutation(5, LOG_IN, "$u: String!, $p: String!")
    clients = 3
    # Five verifications in a row, queued behind the other clients' on two threads: seconds
    # each on a loaded runner. Slow log-ins are expected; a slow stats client is the failure.
    hashing_timeout = 30.0

    async def attack(control: Control) -> int:
        requests = 0

        async def one_client(n: int) -> None:
            nonlocal requests
            # Existing and missing accounts: both must cost a verification, both are refused.
            username = "alice" if n % 2 == 0 else f"nobody_{n}"
            async with httpx.AsyncClient(base_url=server.url, timeout=hashing_timeout) as http:
                for i in range(200):
                    if not control.going:
                        return
                    sent = asyncio.create_task(
                        _post(http, five, {"u": username, "p": f"guess-{n}-{i}"})
                    )
                    await asyncio.sleep(0.05)  # on its way: the hashing has begun
                    control.engaged.set()
                    body = await sent
                    answers = _data(body)
                    assert answers == {
                        f"a{k}": {"token": None, "errors": [{"code": "INVALID_CREDENTIALS"}]}
                        for k in range(5)
                    }, answers
                    requests += 1
                    # The refusal of a big batch is mixed in: it must stay instant under load.
                    if i % 5 == 0:
                        refused, seconds = await timed(
                            _post(
                                http,
                                _aliased_mutation(30, LOG_IN, "$u: String!, $p: String!"),
                                {"u": username, "p": "x" * 12},
                            )
                        )
                        assert_refused(refused, "QUERY_TOO_COMPLEX", "expensive")
                        assert seconds < REFUSAL_SECONDS, seconds

        await asyncio.gather(*(one_client(n) for n in range(clients)))
        return requests

    requests, figures = await measure_while(
        server, "aliased failing logIns", attack, wind_down=hashing_timeout
    )
    figures.note = f"{requests} requests of 5 failing logIns from {clients} clients"
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
        # The demo password still works (the failures were counted, not held against it).
        good = _aliased_mutation(1, LOG_IN, "$u: String!, $p: String!")
        answer = _data(await _post(http, good, {"u": "alice", "p": "demo-password"}))["a0"]
        assert answer["errors"] == [] and answer["token"]


# -- 3. concurrent idempotent retries --------------------------------------------------------

RETRIES = 10


async def _idempotent_retries(server: Server, name: str) -> None:
    """Each round a new account (1000.00) sends the same keyed buy of 600.00 RETRIES times at
    once: every answer is the same trade with balance 400.00, and the wallet holds 400.00."""

    async def attack(control: Control) -> int:
        rounds = 0
        limits = httpx.Limits(max_connections=RETRIES + 2, max_keepalive_connections=RETRIES + 2)
        async with httpx.AsyncClient(
            base_url=server.url, timeout=REQUEST_TIMEOUT, limits=limits
        ) as http:
            while control.going and rounds < 40:
                username = f"retry_{uuid.uuid4().hex[:10]}"
                signed = _data(await _post(http, SIGN_UP, {"u": username, "p": "a-good-password"}))
                assert signed["signUp"]["errors"] == [], signed
                token = signed["signUp"]["token"]
                buy = {
                    "outcomeId": server.outcome_id,
                    "amount": "600.00",
                    "idempotencyKey": "retry-1",
                }
                control.engaged.set()
                bodies = await asyncio.gather(
                    *(_post(http, BUY, {"input": buy}, token) for _ in range(RETRIES))
                )
                answers = [_data(body)["buyShares"] for body in bodies]
                assert [a["errors"] for a in answers] == [[]] * RETRIES, answers
                assert len({a["trade"]["id"] for a in answers}) == 1, answers
                assert {a["balance"] for a in answers} == {"400.00"}, answers
                wallet = _data(await _post(http, BALANCE, token=token))["me"]
                assert wallet == {"balance": "400.00"}, wallet
                rounds += 1
        return rounds

    rounds, figures = await measure_while(server, name, attack)
    figures.note = f"{rounds} rounds of {RETRIES} retries"


async def test_concurrent_idempotent_retries_return_one_trade(server: Server) -> None:
    """Ten identical keyed buys at once from a new account: one trade, ten identical answers."""
    await _idempotent_retries(server, "concurrent idempotent retries (sqlite)")


async def test_concurrent_idempotent_retries_return_one_trade_on_postgres(
    postgres_app_server: Server,
) -> None:
    """The same on PostgreSQL, where the retries really run in parallel transactions."""
    await _idempotent_retries(postgres_app_server, "concurrent idempotent retries (postgres)")


# -- 4. replay floods ------------------------------------------------------------------------


async def test_a_replay_flood_on_one_socket_stalls_no_one(server: Server) -> None:
    """One socket subscribes 100 times to a 2,000-comment thread, each with afterSequence i, and
    reads as fast as it can: every subscription gets its comments in order, none twice, no
    error, while the stats client stays fast."""
    flood = server.flood
    assert flood is not None
    sequences = flood.sequences
    assert len(sequences) >= FLOOD_COMMENTS
    expected = {f"r{i}": [s for s in sequences if s > i] for i in range(REPLAY_SUBSCRIPTIONS)}

    async def attack(control: Control) -> tuple[dict[str, int], int | None]:
        got: dict[str, int] = dict.fromkeys(expected, 0)  # how many each has had so far
        ws = await _connect(server.ws_url)
        try:
            for i in range(REPLAY_SUBSCRIPTIONS):
                message = {
                    "id": f"r{i}",
                    "type": "subscribe",
                    "payload": {
                        "query": REPLAY,
                        "variables": {"a": flood.article_id, "after": i},
                    },
                }
                await ws.send(json.dumps(message))
            total = sum(len(v) for v in expected.values())
            received = 0
            while control.going and received < total:
                try:
                    raw = await asyncio.wait_for(ws.recv(), 1.0)
                except TimeoutError:
                    continue  # the server may pause between pages; stop is checked above
                message = json.loads(raw)
                if message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                    continue
                assert message["type"] == "next", message
                sub_id = message["id"]
                comment = message["payload"]["data"]["commentAdded"]
                n = got[sub_id]
                assert comment["sequence"] == expected[sub_id][n], (sub_id, n, comment)
                if comment["sequence"] > flood.start:
                    assert comment["author"] == {"username": "bob"}, comment
                assert comment["body"] and comment["bodyHtml"], comment
                got[sub_id] = n + 1
                received += 1
                if received == 1:
                    control.engaged.set()
        finally:
            await _close_draining(ws)
        return got, ws.close_code

    (got, close_code), figures = await measure_while(
        server, "replay flood (100 subscriptions)", attack
    )
    delivered = sum(got.values())
    figures.note = f"{delivered} replayed frames to {sum(1 for v in got.values() if v)} subs"
    assert delivered >= FLOOD_COMMENTS, got  # it really flooded
    assert close_code == 1000  # and the close handshake completed mid-flood


# -- 5. oversized frames ---------------------------------------------------------------------


async def test_oversized_frames_are_closed_with_1009_at_once(server: Server) -> None:
    """Rounds of ten sockets, each sending one 15 MB message at once: each is closed with 1009
    within seconds, and the server doesn't buffer them (RSS stays bounded)."""
    frame = '{"type":"ping","payload":"' + "x" * OVERSIZED_BYTES + '"}'

    async def one(results: list[tuple[int | None, float]]) -> None:
        ws = await _connect(server.ws_url)
        began = time.perf_counter()
        try:
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.send(frame), CLOSE_SECONDS)
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), CLOSE_SECONDS)
        except TimeoutError:
            pass
        finally:
            seconds = time.perf_counter() - began
            results.append((ws.close_code, seconds))
            await ws.close()

    async def attack(control: Control) -> list[tuple[int | None, float]]:
        results: list[tuple[int | None, float]] = []
        rounds = 0
        control.engaged.set()
        while control.going and rounds < 20:
            await asyncio.gather(*(one(results) for _ in range(OVERSIZED_PER_ROUND)))
            rounds += 1
        return results

    results, figures = await measure_while(server, "oversized frames (15 MB)", attack)
    figures.note = (
        f"{len(results)} frames, slowest close {max(s for _, s in results) * 1000:.0f} ms"
    )
    assert len(results) >= OVERSIZED_PER_ROUND
    assert [code for code, _ in results] == [1009] * len(results), results
    assert max(seconds for _, seconds in results) < CLOSE_SECONDS, results
