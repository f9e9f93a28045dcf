"""Every Prometheus metric of the app, in one catalogue (prometheus-client).

Any layer may count here: this module imports nothing of the project. Across
several workers (``make serve``) prometheus-client's multi-process mode is used: the supervisor
sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, every worker writes its values there,
and ``/metrics`` (any worker) sums them (``render``). Gauges of things that live in a process
(open sockets, subscriptions, pool connections) are ``livesum``: a dead worker's share drops out.

Label values a client chooses are bounded: operation names are the first
``METRICS_MAX_OPERATION_NAMES`` distinct ones a process sees, the rest count as ``other``
(``operation_label``), so a hostile client can't create series without end.
"""

from __future__ import annotations

import os
import re
import threading

# prometheus-client turns multi-process mode on when the variable merely exists: set but empty,
# every process would write its value files into its working directory. Empty means unset.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR", None) == "":
    del os.environ["PROMETHEUS_MULTIPROC_DIR"]

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

# -- label bounds -------------------------------------------------------------------------------

OTHER = "other"
# A GraphQL name (the spec's Name), at most 100 characters.
GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
ANONYMOUS = "anonymous"
_names_lock = threading.Lock()
_operation_names: set[str] = set()
max_operation_names = 100  # METRICS_MAX_OPERATION_NAMES; configure() sets it


def configure(max_names: int) -> None:
    """Bound the operation-name label (METRICS_MAX_OPERATION_NAMES)."""
    global max_operation_names
    max_operation_names = max_names


def operation_label(name: str | None) -> str:
    """``name`` as a label value: one of the first ``max_operation_names`` distinct names seen
    by this process, ``anonymous`` for an operation without a name, else ``other``."""
    if not name:
        return ANONYMOUS
    if name in _operation_names:
        return name
    # Only a GraphQL name may become a label: a refused request's operationName is anything
    # the client sent (a lone surrogate in it made every later scrape fail to encode, in every
    # worker reading the same files), and a wasted slot is a name the operator never sees.
    if not GRAPHQL_NAME.fullmatch(name):
        return OTHER
    with _names_lock:
        if len(_operation_names) < max_operation_names:
            _operation_names.add(name)
            return name
    return OTHER


def multiprocess_dir() -> str | None:
    """Where the workers' values are written, in multi-process mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    """The text exposition of every metric: this process's, or every worker's summed."""
    folder = multiprocess_dir()
    if folder:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=folder)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (the supervisor calls it)."""
    if multiprocess_dir():
        _multiprocess.mark_process_dead(pid)


# Not the default registry: the process and platform collectors make no sense summed over
# workers, and tests may build several apps in one process.
REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COUNT_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)

# -- HTTP ---------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "agora_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "agora_http_request_duration_seconds",
    "Time to answer an HTTP request (a stream: until it ends), by route template.",
    ["route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)

# -- GraphQL operations (HTTP and websocket) ------------------------------------------------------

OPERATIONS = Counter(
    "agora_graphql_operations_total",
    "GraphQL operations run, by operation name (bounded), type and outcome (ok or error code).",
    ["operation", "type", "outcome"],
    registry=REGISTRY,
)
OPERATION_DURATION = Histogram(
    "agora_graphql_operation_duration_seconds",
    "Time to run a GraphQL query or mutation, by operation name (bounded) and type.",
    ["operation", "type"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
OPERATION_SQL = Histogram(
    "agora_graphql_sql_statements",
    "SQL statements one GraphQL operation sent, by operation name (bounded) and type.",
    ["operation", "type"],
    buckets=COUNT_BUCKETS,
    registry=REGISTRY,
)

# -- real time ----------------------------------------------------------------------------------

WEBSOCKETS_OPEN = Gauge(
    "agora_websockets_open",
    "Open websocket connections.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
HTTP_STREAMS_OPEN = Gauge(
    "agora_http_streams_open",
    "Open HTTP subscription streams, by protocol (sse, multipart).",
    ["protocol"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "agora_subscriptions_active",
    "Active subscriptions, by root field.",
    ["field"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
SUBSCRIPTION_GROUPS = Gauge(
    "agora_subscription_groups",
    "Shared groups (one execution per event for identical subscriptions), by root field.",
    ["field"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "agora_subscription_deliveries_total",
    "Frames handed to subscribers, by root field.",
    ["field"],
    registry=REGISTRY,
)
COALESCED = Counter(
    "agora_subscription_coalesced_frames_total",
    "Frames replaced by a newer one before a slow subscriber took them, by root field.",
    ["field"],
    registry=REGISTRY,
)
OVERFLOWS = Counter(
    "agora_subscription_overflows_total",
    "Subscriptions ended because their subscriber fell too far behind, by root field.",
    ["field"],
    registry=REGISTRY,
)
REPLAYS = Counter(
    "agora_subscription_replays_total",
    "afterSequence replays run, by outcome (ok, or the error code that ended them).",
    ["outcome"],
    registry=REGISTRY,
)
REPLAYED_EVENTS = Counter(
    "agora_subscription_replayed_events_total",
    "Events sent from the database by afterSequence replays and gap fills.",
    registry=REGISTRY,
)

# -- broker -------------------------------------------------------------------------------------

BROKER_PUBLISHED = Counter(
    "agora_broker_published_total",
    "Events published to the broker, by channel kind (comments, market, session, ...).",
    ["kind"],
    registry=REGISTRY,
)
BROKER_DELIVERED = Counter(
    "agora_broker_delivered_total",
    "Events received from the broker by this process, by channel kind.",
    ["kind"],
    registry=REGISTRY,
)
BROKER_LAG = Histogram(
    "agora_broker_lag_seconds",
    "Time from an event's publication to its arrival in a process, by channel kind.",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)

# -- markets and accounts -------------------------------------------------------------------------

TRADES = Counter(
    "agora_trades_total",
    "Trades committed, by side (buy, sell).",
    ["side"],
    registry=REGISTRY,
)
SETTLEMENTS = Counter(
    "agora_settlements_total",
    "Markets settled, by kind (resolved, cancelled).",
    ["kind"],
    registry=REGISTRY,
)
REFUSALS = Counter(
    "agora_refusals_total",
    "Business refusals (UserError codes) of mutations, by mutation field and code.",
    ["field", "code"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "agora_rate_limit_refusals_total",
    "Requests refused by a rate limit, by rule.",
    ["rule"],
    registry=REGISTRY,
)
RATE_LIMIT_FALLBACKS = Counter(
    "agora_rate_limit_fallbacks_total",
    "Rate-limit checks answered by the per-process limiter because Redis was unreachable.",
    registry=REGISTRY,
)

# -- database -----------------------------------------------------------------------------------

DB_POOL_IN_USE = Gauge(
    "agora_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_SIZE = Gauge(
    "agora_db_pool_connections",
    "Database connections open in the pool.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
SQL_STATEMENTS = Counter(
    "agora_sql_statements_total",
    "SQL statements sent, whatever sent them.",
    registry=REGISTRY,
)

# -- housekeeping ---------------------------------------------------------------------------------

JOB_RUNS = Counter(
    "agora_job_runs_total",
    "Scheduled housekeeping jobs run by this deployment, by job and outcome (ok, error).",
    ["job", "outcome"],
    registry=REGISTRY,
)
JOB_ROWS = Counter(
    "agora_job_rows_total",
    "Rows removed or changed by housekeeping jobs, by job.",
    ["job"],
    registry=REGISTRY,
)

# -- recording: what the HTTP middleware and the websocket endpoint call per request and operation

# Label children by their values: ``labels()`` costs ~2 µs a call, a dict lookup ~50 ns. Every
# key is bounded (route templates, known methods, statuses; operation names as the labels bound
# them, types, codes).
_requests: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_operations: dict[
    tuple[str | None, str | None, str | None], tuple[Counter, Histogram | None, Histogram | None]
] = {}
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"))
TIMED_TYPES = frozenset(("query", "mutation"))


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered: ``route`` a template (or ``other``), any method a client
    invents counted as ``other``."""
    if method not in HTTP_METHODS:
        method = OTHER
    key = (route, method, status)
    children = _requests.get(key)
    if children is None:
        children = _requests[key] = (
            HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_DURATION.labels(route),
        )
    children[0].inc()
    children[1].observe(seconds)


def record_operation(
    name: str | None, kind: str | None, outcome: str | None, seconds: float, sql: int
) -> None:
    """One GraphQL operation done (HTTP or websocket; each of a batch): counted by bounded name,
    type and outcome (``ok`` or its error code); a query's or mutation's time and statements."""
    key = (name, kind, outcome)
    children = _operations.get(key)
    if children is None:
        label, kind_label = operation_label(name), kind or "unknown"
        timed = kind_label in TIMED_TYPES
        children = (
            OPERATIONS.labels(label, kind_label, outcome or "ok"),
            OPERATION_DURATION.labels(label, kind_label) if timed else None,
            OPERATION_SQL.labels(label, kind_label) if timed else None,
        )
        # Keyed by the name as sent: only names within the label bound are kept (past it,
        # every new name would take a key of its own).
        if label != OTHER:
            _operations[key] = children
    children[0].inc()
    if children[1] is not None and children[2] is not None:
        children[1].observe(seconds)
        children[2].observe(sql)


# -- response cache -----------------------------------------------------------------------------

RESPONSE_CACHE = Counter(
    "agora_response_cache_total",
    "Anonymous queries by what the response cache did: hit, miss (executed and kept) or bypass.",
    ["result"],
    registry=REGISTRY,
)
RESPONSE_CACHE_BYTES = Gauge(
    "agora_response_cache_bytes",
    "Bytes of answers the response cache keeps.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
RESPONSE_CACHE_BUMP_FAILURES = Counter(
    "agora_response_cache_bump_failures_total",
    "Version bumps that failed (the worker bypassed its cache until versions were renewed).",
    registry=REGISTRY,
)
