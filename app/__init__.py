"""The Starlette application, wired: its lifespan owns every resource; routes serve /graphql.

The HTTP view is ``app.http``, the body limit ``app.middleware``, the health checks
``app.health``; this module builds the services, the broker and the hub and hands them out.

Run it with ``uvicorn app:create_app --factory`` (``make run`` does, after migrating).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from tortoise import connections
from tortoise.contrib.starlette import RegisterTortoise

import metrics
import tracing
from accounts.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from accounts.service import Accounts
from api.context import Services
from api.core.refusals import count_refusals
from api.live import LiveGraphQL
from app.assets import NODE_MODULES, Assets
from app.health import healthz, readyz
from app.housekeeping import Job, Scheduler, default_jobs
from app.http import GraphQLApp, http_error, schema_sdl
from app.lifecycle import STATE_KEY, Lifecycle
from app.metrics_route import MetricsEndpoint, pool_sampler, stop_sampler
from app.middleware import BodySizeLimit
from app.observe import Observe
from app.pages import Pages
from app.response_cache import ResponseCache, bumping
from app.wire import PROTOCOL, WEBSOCKET_PROTOCOL, WebSocketShortcut
from clock import use_offset_file
from comments.service import Comments
from db import instrument, pg_reads, sqlite_reads
from logs import configure_if_unconfigured, configure_logging, get_logger
from markets.trading import Trading
from news.service import Newsroom
from realtime.brokers import Broker, broker_for
from realtime.endpoint import WebsocketEndpoint
from realtime.events import SESSIONS, broker_publisher
from realtime.fanout import Hub
from realtime.fanout.gctuning import GCTuning
from realtime.streams import HTTPStreams
from settings import Settings, SettingsError, load_settings

logger = get_logger("agora")


def create_app(settings: Settings | None = None, limiter: RateLimiter | None = None) -> Starlette:
    """Build the application for ``settings`` (read from the environment by default).

    ``limiter`` replaces the rate limiter (tests pass one with a fake clock); without it the
    buckets are on Redis when ``REDIS_URL`` is set (shared by every worker), else in process.
    """
    # Imported here, not above: importing it reads the environment (its TORTOISE_ORM), and the
    # commands (python -m app.serve) report a bad setting themselves, without a traceback.
    from db.config import tortoise_config

    settings = settings or load_settings()
    # Whatever starts the app (python -m app, README's uvicorn command, tests), its log records
    # and uvicorn's are cut short and access lines lose their query strings; where nothing set
    # logging up (README's uvicorn command), they are written in LOG_FORMAT.
    configure_if_unconfigured(settings)
    metrics.configure(settings.metrics_max_operation_names)
    if settings.test_clock_file and settings.env == "test":
        # Tests move the clock of server processes through this file (clock.py).
        use_offset_file(settings.test_clock_file)
    if limiter is None:
        # Connects on first use; the lifespan closes it.
        limiter = (
            RedisRateLimiter.for_settings(settings) if settings.redis_url else MemoryRateLimiter()
        )
    broker = broker_for(settings)
    # The services publish each committed change to the broker themselves.
    publish = broker_publisher(broker)
    # Performance: response cache. Every committed write bumps its version tags before it is
    # published (and before its mutation answers).
    response_cache = ResponseCache(settings) if settings.response_cache else None
    if response_cache is not None:
        publish = bumping(response_cache, publish)
    services = Services(
        accounts=Accounts(settings, limiter, publish=publish),
        comments=Comments(settings, limiter, publish=publish),
        trading=Trading(settings, publish=publish),
        newsroom=Newsroom(settings, publish=publish),
    )
    # Performance: trades. The session cache trusts only a broker that delivers revocations
    # from the other workers; it forgets what they revoke and everything after a gap.
    wire_session_cache(services.accounts, broker)
    graphql = GraphQLApp(settings, services)
    graphql.response_cache = response_cache
    # The GraphQL layer's part of the websocket server: realtime never imports it.
    live = LiveGraphQL(graphql.schema, settings, services)  # type: ignore[arg-type]
    hub = Hub(
        live,
        settings,
        broker,
        services.accounts.session,
        resolve_query=graphql.persisted.for_socket,
        gc_tuning=(gc_tuning := GCTuning(settings)),
    )
    websocket = WebsocketEndpoint(hub)
    # GraphiQL and /demo, with the browser assets the app serves itself.
    assets = Assets(Path(settings.assets_dir) if settings.assets_dir else NODE_MODULES)
    pages = Pages(settings, assets, graphql)
    graphql.pages = pages
    # Subscriptions over HTTP (SSE, multipart) go through the same hub.
    graphql.streams = streams = HTTPStreams(hub)
    # Operations: metrics. Refusals counted by mutation field and code, off the schema itself.
    count_refusals(graphql.core)
    metrics_endpoint = MetricsEndpoint(settings)
    # Purges (and later timed jobs): every worker looks, one runs each due slot.
    scheduler = Scheduler(settings, default_jobs(settings))
    # Scheduled articles: articlePublished subscribers (and the response cache) are told once,
    # by one worker, when their time comes.
    scheduler.register(
        Job(
            "announce_scheduled_articles",
            settings.article_publish_interval_seconds,
            services.newsroom.announce_due,
        )
    )
    # Graceful shutdown: what the server (app.serve) tells the app, through the lifespan state.
    lifecycle = Lifecycle()
    lifecycle.on_drain("websockets", websocket.drain)
    lifecycle.on_drain("HTTP streams", graphql.streams.drain)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with RegisterTortoise(app, config=tortoise_config(settings)):
            # Every statement counted, per request and operation (db.instrument).
            instrument.install_for(connections.all())
            sqlite_reads.enabled = settings.sqlite_batch_reads
            pg_reads.enabled = settings.postgres_batch_reads
            pg_reads.deadline_seconds = settings.db_timeout_seconds
            await broker.start()
            await graphql.persisted.start()
            # Start-up objects live as long as the process: keep them out of every full
            # collection (they made fan-out pauses with thousands of sockets).
            if settings.otlp_endpoint:
                # Spans leave on the exporter's own thread; flushed at the end below.
                tracing.configure(settings.otlp_endpoint, settings.otlp_service_name)
            # (And again after bulk subscribes: realtime.fanout.gctuning, GC_* settings.)
            gc_tuning.after_start_up()
            pool_sampling = asyncio.create_task(pool_sampler(), name="metrics-pool")
            scheduler.start()
            try:
                yield {STATE_KEY: lifecycle}
            finally:
                # First: a run in progress is cancelled while the database is still there.
                await scheduler.stop()
                await stop_sampler(pool_sampling)
                await graphql.persisted.stop()
                # The shared rate limits' and stream caps' Redis connections (when made).
                if isinstance(limiter, RedisRateLimiter):
                    await limiter.aclose()
                await streams.limits.aclose()
                gc_tuning.cancel()
                await broker.stop()
                if response_cache is not None:
                    await response_cache.aclose()
                # Password-hashing threads: waiting hashes are cancelled, running ones finish.
                await services.accounts.close()
                if settings.otlp_endpoint:
                    # Flushing the last spans waits on the network: not on the loop.
                    await asyncio.to_thread(tracing.shutdown)

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/graphql/", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", websocket.handle),
        WebSocketRoute("/graphql/", websocket.handle),
        Route("/schema.graphql", schema_sdl, methods=["GET"]),
        Route("/demo", pages.demo, methods=["GET"]),
        Route("/demo/{slug}", pages.demo, methods=["GET"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if metrics_endpoint.published:
        # Otherwise (production, nobody said who may read it) /metrics is an unknown path.
        routes.append(Route("/metrics", metrics_endpoint.handle, methods=["GET"]))
    if settings.graphiql or settings.demo_page:
        routes += [
            Route("/assets/vendor/{path:path}", assets.serve_vendor, methods=["GET"]),
            Route("/assets/{name}", assets.serve_own, methods=["GET"]),
        ]
    middleware = [
        # Outermost: its request id and line cover what CORS (preflights) and the body limit
        # (413) answer themselves.
        Middleware(Observe, settings=settings, routes=routes),
        # Performance: fan-out. /graphql's websockets skip the layers below (and the router),
        # whose frames each idle socket kept alive (app.wire.WebSocketShortcut).
        Middleware(WebSocketShortcut, paths=("/graphql", "/graphql/"), endpoint=websocket.handle),
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Accept",
                "If-None-Match",
                "X-Request-ID",
                # What Apollo Client and its router tooling send.
                "Apollo-Require-Preflight",
                "Apollographql-Client-Name",
                "Apollographql-Client-Version",
            ],
            # Browser code may read these (an expired session says so in WWW-Authenticate).
            expose_headers=["WWW-Authenticate", "Retry-After", "ETag", "X-Request-ID"],
            max_age=600,
        ),
        Middleware(BodySizeLimit, limit=settings.max_body_bytes),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={StarletteHTTPException: http_error},
    )
    app.state.settings = settings
    app.state.services = services
    app.state.schema = graphql.schema
    app.state.sdl = graphql.schema.as_str().rstrip() + "\n"
    app.state.broker = broker
    app.state.hub = hub
    app.state.graphql = graphql
    app.state.streams = graphql.streams
    app.state.assets = assets
    app.state.pages = pages
    app.state.scheduler = scheduler
    app.state.lifecycle = lifecycle
    return app


async def prepare_database(settings: Settings) -> None:
    """Migrate; outside production, load the demo data into an empty database."""
    from tortoise import Tortoise

    from db.config import tortoise_config
    from db.migrate import apply_migrations
    from demo.seed import load_demo_data

    await apply_migrations(settings)
    if settings.is_production:
        return
    await Tortoise.init(config=tortoise_config(settings))
    try:
        if await load_demo_data():
            logger.info("demo data loaded into the empty database")
    finally:
        await Tortoise.close_connections()


def main() -> None:
    """``python -m app``: migrate, seed an empty development database, serve (one process,
    shutting down gracefully as ``python -m app.serve`` does)."""
    from app.serve import EXIT_REFUSED, serve_one

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"agora: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED) from None
    configure_logging(settings)
    asyncio.run(prepare_database(settings))
    logger.info("serving http://%s:%s/graphql", settings.host, settings.port)
    raise SystemExit(serve_one(settings))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every start path passes to uvicorn (README's command line spells the same)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # configure_logging's handlers, which truncate
        # The app writes one line per request itself (app.observe), with its request id.
        "access_log": False,
        # The app derives the client address itself (clientaddr, TRUSTED_PROXIES).
        "proxy_headers": False,
        # uvicorn would buffer up to 16 MiB of a websocket message before the app's own limit.
        "ws_max_size": settings.ws_max_message_bytes,
        # What a shutdown waits for before cutting (app.serve drains first; plain uvicorn
        # closes websockets itself and cuts HTTP subscription streams, which never end by
        # themselves, after this).
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
        # A request uvicorn can't parse (a URL over 80 KiB) is refused in JSON, not plain text.
        "http": PROTOCOL,
        # uvicorn's websockets sans-I/O protocol lending the fan-out a direct write (app.wire).
        "ws": WEBSOCKET_PROTOCOL,
        # Off by default: each compressing socket keeps zlib state (WS_PER_MESSAGE_DEFLATE).
        "ws_per_message_deflate": settings.ws_per_message_deflate,
    }


def wire_session_cache(accounts: Accounts, broker: Broker) -> None:
    """Tie ``accounts``' session cache to ``broker`` (Performance: trades): revocations heard on
    the ``sessions`` channel drop their entries, a reconnect (revocations may have been missed)
    empties it, and it is bypassed while the broker is unhealthy."""
    cache = accounts.sessions

    def on_event(channel: str, message: dict[str, Any]) -> None:
        if channel == SESSIONS:
            cache.forget_message(message)

    cache.trusted = lambda: broker.healthy
    broker.listen(on_event)
    broker.on_reconnect(cache.cleared)
