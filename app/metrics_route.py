"""``GET /metrics``: the Prometheus text of every metric (``metrics.render``), behind its access
rules, and the database pool's gauges.

Who may read it (``METRICS_TOKEN``, ``METRICS_ALLOW``):

- a token, when set, is wanted as ``Authorization: Bearer <token>`` (compared in constant time;
  missing or wrong: 401 with ``WWW-Authenticate: Bearer``);
- an allow-list, when set, is checked against the client address the app derives everywhere
  (``clientaddr``, behind ``TRUSTED_PROXIES``; another address: 403);
- both set, both apply; neither set, anyone may read it in development, and no one in
  production, where the route answers 404 as an unknown path does (an operator who wants it
  says who may read it).

Rendering in multi-process mode reads every worker's files: it runs on a thread, and scrapes
arriving while one renders share its result, so a burst of scrapes is one render.

The pool gauges are sampled once a second by each process (``pool_sampler``, run by the
lifespan) and again by the process answering a scrape: summed over workers, the others' share
is at most that old.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tortoise import connections

import metrics
from api.extensions import MASKED_MESSAGE
from app.http import bearer_token, error_body
from clientaddr import client_address, trusted_networks
from logs import get_logger
from settings import Settings

logger = get_logger("agora")

# How often each process samples its pool into the gauges.
POOL_SAMPLE_SECONDS = 1.0


class MetricsEndpoint:
    """The /metrics route for ``settings``: its access rules and its renders."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.token = settings.metrics_token.encode()
        self.allowed = trusted_networks(settings.metrics_allow)
        # The render in progress: scrapes arriving meanwhile await it rather than start another.
        self._rendering: asyncio.Future[bytes] | None = None

    @property
    def published(self) -> bool:
        """Whether /metrics answers at all: outside production, or once a rule says who reads it."""
        return not self.settings.is_production or bool(self.token or self.allowed)

    async def handle(self, request: Request) -> Response:
        """``GET /metrics``."""
        refused = self.refusal(request)
        if refused is not None:
            return refused
        sample_pool()
        try:
            body = await self.render()
        except Exception:  # logged once by _rendered, whoever waited for it
            return _refused(500, MASKED_MESSAGE, "INTERNAL_SERVER_ERROR")
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    def refusal(self, request: Request) -> Response | None:
        """The answer refusing ``request``, or None when it may read the metrics."""
        if not self.published:
            # Exactly as an unknown path answers (app.http.http_error): production doesn't say
            # the route exists.
            return JSONResponse(error_body("Not Found", "NOT_FOUND"), status_code=404)
        if self.allowed:
            address = client_address(
                request.client.host if request.client else None,
                request.headers,
                self.settings.trusted_proxies,
            )
            if not self.address_allowed(address):
                return _refused(
                    403, "This address may not read the metrics (METRICS_ALLOW).", "FORBIDDEN"
                )
        if self.token:
            sent = bearer_token(request.headers.get("authorization")).encode()
            # Constant time: the comparison says nothing of how much of a guess was right.
            if not hmac.compare_digest(sent, self.token):
                return _refused(
                    401,
                    "The metrics want `Authorization: Bearer <METRICS_TOKEN>`.",
                    "UNAUTHENTICATED",
                    {"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return None

    def address_allowed(self, address: str) -> bool:
        """Whether ``address`` is in ``METRICS_ALLOW`` (an IPv4 client on a dual-stack socket
        as its IPv4 address too)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # "unknown": no peer address to check
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(candidate in network for candidate in candidates for network in self.allowed)

    async def render(self) -> bytes:
        """The exposition text, rendered on a thread; one render shared by concurrent scrapes."""
        rendering = self._rendering
        if rendering is None:
            rendering = self._rendering = asyncio.ensure_future(asyncio.to_thread(metrics.render))
            rendering.add_done_callback(self._rendered)
        # Shielded: a scraper that goes away must not cancel the render the others await.
        return await asyncio.shield(rendering)

    def _rendered(self, rendering: asyncio.Future[bytes]) -> None:
        if self._rendering is rendering:
            self._rendering = None
        if not rendering.cancelled() and rendering.exception() is not None:
            logger.error("rendering the metrics failed", exc_info=rendering.exception())


def _refused(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        error_body(message, code),
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


# -- the database pool ------------------------------------------------------------------------


def pool_usage() -> tuple[int, int] | None:
    """(connections open, connections in use) of the default database connection, or None
    before Tortoise is set up.

    PostgreSQL: asyncpg's pool (``get_size``, ``get_idle_size``). SQLite: the one connection,
    in use while a statement or transaction holds its lock.
    """
    try:
        client: Any = connections.get("default")
    except Exception:
        return None
    # Inside a transaction the context's connection is its wrapper: the pool is its parent's.
    while getattr(client, "_parent", None) is not None:
        client = client._parent
    pool = getattr(client, "_pool", None)
    if pool is not None and hasattr(pool, "get_size"):
        size = int(pool.get_size())
        return size, size - int(pool.get_idle_size())
    if hasattr(client, "_connection") and hasattr(client, "_lock"):
        opened = 1 if client._connection is not None else 0
        return opened, 1 if opened and client._lock.locked() else 0
    return 0, 0


def sample_pool() -> None:
    """Set the pool gauges from ``pool_usage``."""
    usage = pool_usage()
    if usage is not None:
        size, in_use = usage
        metrics.DB_POOL_SIZE.set(size)
        metrics.DB_POOL_IN_USE.set(in_use)


async def pool_sampler(interval: float = POOL_SAMPLE_SECONDS) -> None:
    """Sample the pool every ``interval`` seconds until cancelled (the lifespan runs it)."""
    while True:
        try:
            sample_pool()
        except Exception:  # a failed sample must not end the sampling
            logger.exception("sampling the database pool failed")
        await asyncio.sleep(interval)


async def stop_sampler(task: asyncio.Task[None]) -> None:
    """Cancel the sampler and wait for it; the gauges go back to zero (a stopped app holds no
    connections)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    metrics.DB_POOL_SIZE.set(0)
    metrics.DB_POOL_IN_USE.set(0)
