"""All configuration, read once from the environment.

Every limit the API enforces is a named setting with a default here; README's configuration
table lists them. Nothing else in the project reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


def _str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_rate(text: str) -> tuple[int, float]:
    """ "COUNT/SECONDS" → (COUNT, SECONDS); both positive."""
    count, sep, seconds = text.partition("/")
    try:
        parsed = (int(count), float(seconds))
    except ValueError as exc:
        raise SettingsError(f"a rate is COUNT/SECONDS like 5/60, got {text!r}") from exc
    if not sep or parsed[0] < 1 or parsed[1] <= 0:
        raise SettingsError(f"a rate is COUNT/SECONDS like 5/60, both positive, got {text!r}")
    return parsed


def _rate(name: str, default: str) -> str:
    value = _str(name, default)
    parse_rate(value)
    return value


# Operations: metrics. The shortest METRICS_TOKEN accepted.
METRICS_TOKEN_MIN_LENGTH = 16

# The local development servers' usual origins (React, Vite, webpack and the like).
DEV_ORIGINS = tuple(
    f"http://{host}:{port}" for port in (3000, 5173, 8080) for host in ("localhost", "127.0.0.1")
)


@dataclass(frozen=True)
class Settings:
    """The whole configuration. Build with :func:`load_settings`; tests use ``replace``."""

    # Environment: "development" loads demo data into an empty database; "production" never does.
    env: str = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite://agora.sqlite3"
    db_pool_size: int = 10
    # A database that doesn't answer within this many seconds is down: HTTP 503
    db_timeout_seconds: int = 5
    # Retry-After on a 503 while the database is down
    retry_after_seconds: int = 5
    # Proxies whose X-Forwarded-For is believed (addresses or CIDR ranges); none by default
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "INFO"
    # Longest logged value (an input echoed in an error message, say), characters
    log_value_max_chars: int = 300
    # Browser origins allowed by CORS and at the websocket handshake (production: none unless set)
    cors_origins: tuple[str, ...] = DEV_ORIGINS
    # Debugging aids, on in development and off in production unless set: GraphiQL at GET
    # /graphql, introspection (and GET /schema.graphql), "Did you mean …" in validation errors,
    # the /demo page
    graphiql: bool = True
    introspection: bool = True
    field_suggestions: bool = True
    demo_page: bool = True
    # Where the pages' vendor assets are installed (empty: web/node_modules, where `make assets`
    # puts them); without them the pages load them from a CDN
    assets_dir: str = ""
    # HTTP
    max_body_bytes: int = 1024 * 1024
    # Operations in one batched request (an array body)
    max_batch_operations: int = 10
    # Automatic persisted queries: on, with this many documents kept (LRU; shared through
    # Redis when REDIS_URL is set)
    persisted_queries: bool = True
    persisted_query_cache_size: int = 1000
    # Trusted documents: a JSON file mapping sha256 hashes to documents; when set, only those run
    trusted_documents: str = ""
    # Cache-Control max-age of anonymous GET query responses (0: no-cache, revalidate by ETag)
    http_cache_max_age_seconds: int = 0
    # Subscriptions over HTTP (SSE, multipart): open streams per client address, per viewer,
    # per process; a heartbeat after this many idle seconds
    http_streams_per_address: int = 20
    http_streams_per_viewer: int = 10
    http_streams_per_process: int = 10_000
    http_stream_heartbeat_seconds: int = 10
    # Pagination
    default_page_size: int = 20
    max_page_size: int = 100
    max_node_ids: int = 100
    max_related_articles: int = 20
    # Query limits, all refused before execution with QUERY_TOO_COMPLEX
    max_query_depth: int = 12
    max_query_tokens: int = 5000
    max_query_aliases: int = 30
    max_query_nodes: int = 50_000
    # Field selections in one document, fragments counted once: graphql-core's validation is
    # quadratic in repeated fields and recurses on them, so this is checked before it runs
    max_query_fields: int = 5000
    # Longest query text (values belong in variables): parsing is linear but not free
    max_query_chars: int = 131_072
    # Fields declared expensive (password hashing, trades, settlements) in one document
    max_expensive_fields: int = 5
    # One bound during execution: rows loaded for one response, and its encoded size
    max_response_objects: int = 100_000
    max_response_bytes: int = 16 * 1024 * 1024
    # Caches
    parser_cache_size: int = 256
    validation_cache_size: int = 256
    # Markets
    min_market_liquidity_cents: int = 1000
    # Accounts
    session_ttl_seconds: int = 30 * 24 * 3600
    password_min_length: int = 8
    password_max_length: int = 256
    signup_grant_cents: int = 100_000
    # Password hashing runs off the event loop on this many threads; at most this many
    # hashes wait for one (more: RATE_LIMITED, retry in a second)
    password_hash_workers: int = 2
    password_hash_queue: int = 64
    # Comments
    comment_max_length: int = 10_000
    # Articles (Markdown, characters)
    article_body_max_length: int = 100_000
    # How often (seconds) the scheduler looks for scheduled articles whose time came, to tell
    # articlePublished subscribers (readers see them at their time regardless)
    article_publish_interval_seconds: int = 10
    report_reason_max_length: int = 500
    # Real time
    redis_url: str = ""
    ws_init_timeout_seconds: int = 10
    ws_max_subscriptions: int = 100
    ws_max_message_bytes: int = 65_536
    ws_queue_length: int = 256
    ws_ping_interval_seconds: int = 20
    ws_replay_limit: int = 10_000
    # Replays (afterSequence) read this many comments at a time, run at most this many at once
    # per connection and per process; the rest wait their turn
    ws_replay_page_size: int = 200
    ws_replays_per_connection: int = 2
    ws_replays_per_process: int = 8
    # Rate limits, "COUNT/SECONDS": a bucket of COUNT refilled evenly over SECONDS
    comment_rate: str = "5/60"
    login_failure_rate_per_account: str = "5/900"
    login_failure_rate_per_address: str = "50/900"
    signup_rate_per_address: str = "200/3600"
    change_password_failure_rate: str = "5/900"
    # Operations: shared limits. With REDIS_URL, rate limits and the HTTP stream caps per
    # address and per viewer are counted on Redis; a check waits at most this many ms for it
    # (then, and for the back-off below, it is answered from this process's own counts)
    redis_limits_timeout_ms: int = 250
    # Seconds before Redis is tried again after a failed check
    redis_limits_retry_seconds: int = 2
    # An open HTTP stream's place on Redis lasts this long unless its worker renews it (every
    # third of it): a worker that dies without closing its streams frees their places by then
    http_stream_lease_seconds: int = 30
    # Operations: metrics
    # GET /metrics wants `Authorization: Bearer <this>` when set (compared in constant time)
    metrics_token: str = ""
    # Addresses or CIDR ranges that may read /metrics (the client address as TRUSTED_PROXIES
    # derives it); any address when empty. In production /metrics answers 404 unless this or
    # METRICS_TOKEN is set
    metrics_allow: tuple[str, ...] = ()
    # Operations: housekeeping (app.housekeeping). One scheduler loop per deployment: each
    # worker looks every HOUSEKEEPING_INTERVAL_SECONDS, and a due job runs on one worker only.
    housekeeping: bool = True
    housekeeping_interval_seconds: int = 60
    # How often each purge (expired sessions, idempotency keys, old run records) runs
    housekeeping_purge_interval_seconds: int = 3600
    # Rows one purge statement deletes (each its own short transaction, the loop yields between)
    housekeeping_batch_rows: int = 1000
    # Rows are purged this long after they stop counting, so that workers whose clocks differ
    # and requests in flight never lose a row they still rely on
    housekeeping_grace_seconds: int = 3600
    # A run not finished after this long (its worker died) stops keeping the job from others
    housekeeping_lease_seconds: int = 900
    # How long the record of each run (housekeeping_runs) is kept
    housekeeping_history_seconds: int = 7 * 24 * 3600
    # Tests only (AGORA_ENV=test): a file holding a clock offset in seconds or a fixed time,
    # read by every process (clock.use_offset_file)
    test_clock_file: str = ""
    # Operations: serving and graceful shutdown (python -m app.serve, make serve)
    # Worker processes under one supervisor; more than one needs PostgreSQL and Redis
    workers: int = 1
    # After SIGTERM: how long the server keeps accepting while /readyz already answers 503 (for
    # load balancers to notice), then how long in-flight HTTP requests (trades included) and
    # websocket operations get to finish once it has stopped accepting; then what remains is cut
    shutdown_delay_seconds: int = 0
    shutdown_timeout_seconds: int = 10
    # Operations: logs and per-request metrics
    # How log lines are written: "json" (one object a line) or "console" (for people); empty:
    # json in production, console otherwise
    log_format: str = ""
    # Distinct operation names the metrics label by, per process (the rest count as "other")
    metrics_max_operation_names: int = 100
    # Operations: tracing. OpenTelemetry spans (requests, GraphQL operations, SQL) go to this
    # OTLP/HTTP traces endpoint (http://collector:4318/v1/traces); off when empty
    otlp_endpoint: str = ""
    otlp_service_name: str = "agora"
    # Performance: response cache. Anonymous query answers kept per process and checked against
    # version tags on every hit (in process, or in Redis with REDIS_URL). Off by default: a
    # write made outside the app's services (SQL by hand, a script) bumps no version
    response_cache: bool = False
    # Bytes of answers (and their keys) the cache keeps per process; least recently used out
    response_cache_max_bytes: int = 64 * 1024 * 1024
    # Largest answer kept, bytes (larger ones are executed each time)
    response_cache_max_entry_bytes: int = 1024 * 1024
    # Performance: trades
    # Milliseconds an authenticated session is kept in process (0: every request reads it).
    session_cache_ms: int = 2000
    # Sessions kept in process at most (the least recently stored go first).
    session_cache_size: int = 10000
    # SQLite's PRAGMA synchronous (WAL): NORMAL loses nothing when the process dies, FULL also
    # nothing on a power loss (an fsync per commit, ~1.5 ms here).
    sqlite_synchronous: str = "NORMAL"
    # Performance: fan-out
    # A websocket frame is written straight to the socket while the transport buffers at most
    # this many bytes (the client keeps up); above it, frames wait in the bounded queue
    ws_direct_write_buffer_bytes: int = 65_536
    # permessage-deflate for websockets: off, as each compressing socket keeps ~64 KiB of zlib
    # state per direction
    ws_per_message_deflate: bool = False
    # gc.freeze() after start-up and once this many subscriptions were made since the last
    # freeze (and none for GC_FREEZE_QUIET_MS): thousands of long-lived sockets are then out of
    # every collection's reach; 0: never freeze after subscribing
    gc_freeze_after_subscriptions: int = 500
    gc_freeze_quiet_ms: int = 1000
    # The collector's generation 0 threshold, set after start-up; 0 leaves Python's (700). At 700
    # 16 pages in flight set off ~1 young collection a page and their survivors fed gen-1 and
    # gen-2 ones: 130 µs of an article page's 1.7 ms; at 20,000, 33 µs (a 4 ms pause every ~150
    # pages). More garbage lives between collections: RSS levels off ~3 MiB higher under a
    # churn of abrupt closes (README, "Memory over abrupt closes")
    gc_gen0_threshold: int = 20000
    # Performance: read path. Plain queries (fields only: no fragments, directives or abstract
    # types) run on api.core.execution's planned executor; off: graphql-core's for everything
    fast_execution: bool = True
    # Performance: trades (group commit). SQLite trade units that wait for the connection run
    # together, at most this many in one transaction (each in its own SAVEPOINT; all answer
    # after its COMMIT); 1: one transaction each
    sqlite_group_commit_max: int = 16
    # Performance: reads. SQLite statements sent outside transactions in the same turns of the
    # loop go to the connection's thread in one hand-off (db.sqlite_reads); off: one each
    sqlite_batch_reads: bool = True
    # PostgreSQL statements sent outside transactions in the same turns of the loop run on one
    # pooled connection, one after the other (db.pg_reads); off: a pooled connection each
    postgres_batch_reads: bool = True

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def is_production(self) -> bool:
        """Whether demo data and debugging aids are off."""
        return self.env == "production"

    @property
    def log_json(self) -> bool:
        """Whether log lines are JSON objects (LOG_FORMAT; by default in production)."""
        return self.log_format == "json" or (not self.log_format and self.is_production)


def defaults_for(env: str) -> Settings:
    """The defaults of ``env``: production turns the debugging aids and CORS origins off."""
    if env == "production":
        return Settings(
            env=env,
            cors_origins=(),
            graphiql=False,
            introspection=False,
            field_suggestions=False,
            demo_page=False,
        )
    return Settings(env=env)


def load_settings() -> Settings:
    """Read every setting from the environment (see README's configuration table)."""
    defaults = defaults_for(_str("AGORA_ENV", Settings.env))
    settings = Settings(
        env=defaults.env,
        host=_str("HOST", defaults.host),
        port=_int("PORT", defaults.port, 1),
        database_url=_str("DATABASE_URL", defaults.database_url),
        db_pool_size=_int("DB_POOL_SIZE", defaults.db_pool_size, 1),
        db_timeout_seconds=_int("DB_TIMEOUT_SECONDS", defaults.db_timeout_seconds, 1),
        retry_after_seconds=_int("RETRY_AFTER_SECONDS", defaults.retry_after_seconds, 1),
        trusted_proxies=_list("TRUSTED_PROXIES", defaults.trusted_proxies),
        log_level=_str("LOG_LEVEL", defaults.log_level).upper(),
        log_value_max_chars=_int("LOG_VALUE_MAX_CHARS", defaults.log_value_max_chars, 20),
        cors_origins=_list("CORS_ORIGINS", defaults.cors_origins),
        graphiql=_bool("GRAPHIQL", defaults.graphiql),
        introspection=_bool("INTROSPECTION", defaults.introspection),
        field_suggestions=_bool("FIELD_SUGGESTIONS", defaults.field_suggestions),
        demo_page=_bool("DEMO_PAGE", defaults.demo_page),
        assets_dir=_str("ASSETS_DIR", defaults.assets_dir),
        max_body_bytes=_int("MAX_BODY_BYTES", defaults.max_body_bytes, 1024),
        max_batch_operations=_int("MAX_BATCH_OPERATIONS", defaults.max_batch_operations, 1),
        persisted_queries=_bool("PERSISTED_QUERIES", defaults.persisted_queries),
        persisted_query_cache_size=_int(
            "PERSISTED_QUERY_CACHE_SIZE", defaults.persisted_query_cache_size, 1
        ),
        trusted_documents=_str("TRUSTED_DOCUMENTS", defaults.trusted_documents),
        http_cache_max_age_seconds=_int(
            "HTTP_CACHE_MAX_AGE_SECONDS", defaults.http_cache_max_age_seconds, 0
        ),
        http_streams_per_address=_int(
            "HTTP_STREAMS_PER_ADDRESS", defaults.http_streams_per_address, 1
        ),
        http_streams_per_viewer=_int(
            "HTTP_STREAMS_PER_VIEWER", defaults.http_streams_per_viewer, 1
        ),
        http_streams_per_process=_int(
            "HTTP_STREAMS_PER_PROCESS", defaults.http_streams_per_process, 1
        ),
        http_stream_heartbeat_seconds=_int(
            "HTTP_STREAM_HEARTBEAT_SECONDS", defaults.http_stream_heartbeat_seconds, 1
        ),
        default_page_size=_int("DEFAULT_PAGE_SIZE", defaults.default_page_size, 1),
        max_page_size=_int("MAX_PAGE_SIZE", defaults.max_page_size, 1),
        max_node_ids=_int("MAX_NODE_IDS", defaults.max_node_ids, 1),
        max_related_articles=_int("MAX_RELATED_ARTICLES", defaults.max_related_articles, 1),
        max_query_depth=_int("MAX_QUERY_DEPTH", defaults.max_query_depth, 1),
        max_query_tokens=_int("MAX_QUERY_TOKENS", defaults.max_query_tokens, 10),
        max_query_aliases=_int("MAX_QUERY_ALIASES", defaults.max_query_aliases, 0),
        max_query_nodes=_int("MAX_QUERY_NODES", defaults.max_query_nodes, 1),
        max_query_fields=_int("MAX_QUERY_FIELDS", defaults.max_query_fields, 10),
        max_query_chars=_int("MAX_QUERY_CHARS", defaults.max_query_chars, 1024),
        max_expensive_fields=_int("MAX_EXPENSIVE_FIELDS", defaults.max_expensive_fields, 1),
        max_response_objects=_int("MAX_RESPONSE_OBJECTS", defaults.max_response_objects, 100),
        max_response_bytes=_int("MAX_RESPONSE_BYTES", defaults.max_response_bytes, 1024),
        parser_cache_size=_int("PARSER_CACHE_SIZE", defaults.parser_cache_size, 1),
        validation_cache_size=_int("VALIDATION_CACHE_SIZE", defaults.validation_cache_size, 1),
        min_market_liquidity_cents=_int(
            "MIN_MARKET_LIQUIDITY_CENTS", defaults.min_market_liquidity_cents, 1
        ),
        session_ttl_seconds=_int("SESSION_TTL_SECONDS", defaults.session_ttl_seconds, 60),
        password_min_length=_int("PASSWORD_MIN_LENGTH", defaults.password_min_length, 1),
        password_max_length=_int("PASSWORD_MAX_LENGTH", defaults.password_max_length, 8),
        signup_grant_cents=_int("SIGNUP_GRANT_CENTS", defaults.signup_grant_cents, 0),
        password_hash_workers=_int("PASSWORD_HASH_WORKERS", defaults.password_hash_workers, 1),
        password_hash_queue=_int("PASSWORD_HASH_QUEUE", defaults.password_hash_queue, 1),
        comment_max_length=_int("COMMENT_MAX_LENGTH", defaults.comment_max_length, 1),
        article_body_max_length=_int(
            "ARTICLE_BODY_MAX_LENGTH", defaults.article_body_max_length, 1000, 500_000
        ),
        article_publish_interval_seconds=_int(
            "ARTICLE_PUBLISH_INTERVAL_SECONDS", defaults.article_publish_interval_seconds, 1
        ),
        report_reason_max_length=_int(
            "REPORT_REASON_MAX_LENGTH", defaults.report_reason_max_length, 1
        ),
        redis_url=_str("REDIS_URL", defaults.redis_url),
        ws_init_timeout_seconds=_int(
            "WS_INIT_TIMEOUT_SECONDS", defaults.ws_init_timeout_seconds, 1
        ),
        ws_max_subscriptions=_int("WS_MAX_SUBSCRIPTIONS", defaults.ws_max_subscriptions, 1),
        ws_max_message_bytes=_int("WS_MAX_MESSAGE_BYTES", defaults.ws_max_message_bytes, 1024),
        # At most 4,096: a socket's queue is a list (realtime.fanout.primitives), drained from
        # its head, which costs its length.
        ws_queue_length=_int("WS_QUEUE_LENGTH", defaults.ws_queue_length, 4, 4096),
        ws_ping_interval_seconds=_int(
            "WS_PING_INTERVAL_SECONDS", defaults.ws_ping_interval_seconds, 1
        ),
        ws_replay_limit=_int("WS_REPLAY_LIMIT", defaults.ws_replay_limit, 1),
        ws_replay_page_size=_int("WS_REPLAY_PAGE_SIZE", defaults.ws_replay_page_size, 1),
        ws_replays_per_connection=_int(
            "WS_REPLAYS_PER_CONNECTION", defaults.ws_replays_per_connection, 1
        ),
        ws_replays_per_process=_int("WS_REPLAYS_PER_PROCESS", defaults.ws_replays_per_process, 1),
        comment_rate=_rate("COMMENT_RATE", defaults.comment_rate),
        login_failure_rate_per_account=_rate(
            "LOGIN_FAILURE_RATE_PER_ACCOUNT", defaults.login_failure_rate_per_account
        ),
        login_failure_rate_per_address=_rate(
            "LOGIN_FAILURE_RATE_PER_ADDRESS", defaults.login_failure_rate_per_address
        ),
        signup_rate_per_address=_rate("SIGNUP_RATE_PER_ADDRESS", defaults.signup_rate_per_address),
        change_password_failure_rate=_rate(
            "CHANGE_PASSWORD_FAILURE_RATE", defaults.change_password_failure_rate
        ),
        # Operations: shared limits
        redis_limits_timeout_ms=_int(
            "REDIS_LIMITS_TIMEOUT_MS", defaults.redis_limits_timeout_ms, 1
        ),
        redis_limits_retry_seconds=_int(
            "REDIS_LIMITS_RETRY_SECONDS", defaults.redis_limits_retry_seconds, 1
        ),
        http_stream_lease_seconds=_int(
            "HTTP_STREAM_LEASE_SECONDS", defaults.http_stream_lease_seconds, 3
        ),
        # Operations: metrics
        metrics_token=_str("METRICS_TOKEN", defaults.metrics_token).strip(),
        metrics_allow=_list("METRICS_ALLOW", defaults.metrics_allow),
        # Operations: housekeeping
        housekeeping=_bool("HOUSEKEEPING", defaults.housekeeping),
        housekeeping_interval_seconds=_int(
            "HOUSEKEEPING_INTERVAL_SECONDS", defaults.housekeeping_interval_seconds, 1
        ),
        housekeeping_purge_interval_seconds=_int(
            "HOUSEKEEPING_PURGE_INTERVAL_SECONDS", defaults.housekeeping_purge_interval_seconds, 1
        ),
        housekeeping_batch_rows=_int(
            "HOUSEKEEPING_BATCH_ROWS", defaults.housekeeping_batch_rows, 1
        ),
        housekeeping_grace_seconds=_int(
            "HOUSEKEEPING_GRACE_SECONDS", defaults.housekeeping_grace_seconds, 0
        ),
        housekeeping_lease_seconds=_int(
            "HOUSEKEEPING_LEASE_SECONDS", defaults.housekeeping_lease_seconds, 1
        ),
        housekeeping_history_seconds=_int(
            "HOUSEKEEPING_HISTORY_SECONDS", defaults.housekeeping_history_seconds, 1
        ),
        test_clock_file=_str("AGORA_TEST_CLOCK_FILE", defaults.test_clock_file),
        # Operations: serving and graceful shutdown
        workers=_int("WORKERS", defaults.workers, 1),
        shutdown_delay_seconds=_int("SHUTDOWN_DELAY_SECONDS", defaults.shutdown_delay_seconds, 0),
        shutdown_timeout_seconds=_int(
            "SHUTDOWN_TIMEOUT_SECONDS", defaults.shutdown_timeout_seconds, 1
        ),
        # Operations: logs and per-request metrics
        log_format=_str("LOG_FORMAT", defaults.log_format).lower(),
        metrics_max_operation_names=_int(
            "METRICS_MAX_OPERATION_NAMES", defaults.metrics_max_operation_names, 1
        ),
        # Operations: tracing
        otlp_endpoint=_str("OTLP_ENDPOINT", defaults.otlp_endpoint),
        otlp_service_name=_str("OTLP_SERVICE_NAME", defaults.otlp_service_name),
        # Performance: response cache
        response_cache=_bool("RESPONSE_CACHE", defaults.response_cache),
        response_cache_max_bytes=_int(
            "RESPONSE_CACHE_MAX_BYTES", defaults.response_cache_max_bytes, 0
        ),
        response_cache_max_entry_bytes=_int(
            "RESPONSE_CACHE_MAX_ENTRY_BYTES", defaults.response_cache_max_entry_bytes, 0
        ),
        # Performance: trades
        session_cache_ms=_int("SESSION_CACHE_MS", defaults.session_cache_ms),
        session_cache_size=_int("SESSION_CACHE_SIZE", defaults.session_cache_size),
        sqlite_synchronous=_str("SQLITE_SYNCHRONOUS", defaults.sqlite_synchronous).upper(),
        # Performance: fan-out
        ws_direct_write_buffer_bytes=_int(
            "WS_DIRECT_WRITE_BUFFER_BYTES", defaults.ws_direct_write_buffer_bytes, 0
        ),
        ws_per_message_deflate=_bool("WS_PER_MESSAGE_DEFLATE", defaults.ws_per_message_deflate),
        gc_freeze_after_subscriptions=_int(
            "GC_FREEZE_AFTER_SUBSCRIPTIONS", defaults.gc_freeze_after_subscriptions, 0
        ),
        gc_freeze_quiet_ms=_int("GC_FREEZE_QUIET_MS", defaults.gc_freeze_quiet_ms, 0),
        gc_gen0_threshold=_int("GC_GEN0_THRESHOLD", defaults.gc_gen0_threshold, 0),
        # Performance: read path
        fast_execution=_bool("FAST_EXECUTION", defaults.fast_execution),
        # Performance: trades (group commit)
        sqlite_group_commit_max=_int(
            "SQLITE_GROUP_COMMIT_MAX", defaults.sqlite_group_commit_max, 1, 1000
        ),
        sqlite_batch_reads=_bool("SQLITE_BATCH_READS", defaults.sqlite_batch_reads),
        postgres_batch_reads=_bool("POSTGRES_BATCH_READS", defaults.postgres_batch_reads),
    )
    if settings.env not in ("development", "production", "test"):
        raise SettingsError(
            f"AGORA_ENV must be development, production or test, got {settings.env!r}"
        )
    if settings.test_clock_file and settings.env != "test":
        raise SettingsError("AGORA_TEST_CLOCK_FILE moves the clock: only with AGORA_ENV=test")
    if settings.password_min_length > settings.password_max_length:
        raise SettingsError("PASSWORD_MIN_LENGTH must not exceed PASSWORD_MAX_LENGTH")
    if settings.default_page_size > settings.max_page_size:
        raise SettingsError("DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE")
    for entry in settings.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise SettingsError(f"TRUSTED_PROXIES: {entry!r} is not an address or range") from exc
    # Operations: metrics
    if settings.metrics_token and len(settings.metrics_token) < METRICS_TOKEN_MIN_LENGTH:
        # /metrics has no rate limit: a short token could be guessed.
        raise SettingsError(
            f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} characters when set"
        )
    for entry in settings.metrics_allow:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise SettingsError(f"METRICS_ALLOW: {entry!r} is not an address or range") from exc
    # Performance: trades
    if settings.sqlite_synchronous not in ("NORMAL", "FULL", "EXTRA"):
        raise SettingsError(
            f"SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA, got {settings.sqlite_synchronous!r}"
        )
    # Operations: logs
    if settings.log_format not in ("", "json", "console"):
        raise SettingsError(f"LOG_FORMAT must be json or console, got {settings.log_format!r}")
    return settings
