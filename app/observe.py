"""Request ids, one log line per HTTP request, and the per-request and per-operation metrics.

``Observe`` is the outermost middleware: it sees every response, the CORS preflights and the
413s answered before routing included. For each HTTP request it

- takes ``X-Request-ID`` when the client sent exactly one of 1–64 characters of
  ``[A-Za-z0-9._-]``, else makes one, returns it in the response's ``X-Request-ID`` and binds it
  for every log line written meanwhile (structlog's context variables);
- counts the SQL statements sent meanwhile (``db.instrument``);
- writes one ``request`` line when the response is done (a stream: when it ends) with the route
  template, status, duration and client address, and for /graphql what the view recorded
  (``Observed``: operation names and types, viewer, first error code, batch size);
- counts the request (``metrics.record_request``); the view counts each operation
  (``Operation``, ``metrics.record_operation``).

A websocket's handshake gets a request id the same way (its ``X-Request-ID`` header, or a new
one, in the handshake's answer): every line of that socket carries it, and the endpoint writes
the socket's operation lines.

Never logged: the path's query string, headers, variables, the body.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

import metrics
import tracing
from clientaddr import client_address
from db import instrument
from logs import emit, get_logger, truncate
from settings import Settings

HEADER = b"x-request-id"
VALID_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
# Longest operation name a line keeps (names are the client's: a line stays a line).
NAME_MAX_CHARS = 100
OTHER_ROUTE = "other"
# Set in a websocket's scope by the endpoint once it wrote the socket's line.
SOCKET_LOGGED = "agora.socket_logged"
# Where the request line says what the GraphQL view recorded (nulls when it never ran: a 413).
GRAPHQL_ROUTES = frozenset(("/graphql", "/graphql/"))

logger = get_logger("agora")
access = get_logger("agora.access")


class _RequestIds:
    """32 hex digits: 16 random ones drawn once per process, then a counter's 16.

    Unique across workers and restarts as long as no two processes draw the same 64 random
    bits (about one chance in 10^19 per pair), and a fraction of a system call per request:
    os.urandom per id was a read from the kernel every request. A forked child draws anew (it
    would share its parent's prefix and count from the same place)."""

    __slots__ = ("counter", "prefix")

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _RequestIds()
os.register_at_fork(after_in_child=_ids.reseed)


def new_request_id() -> str:
    """A new request id: 32 hex digits, unique across processes (``_RequestIds``)."""
    return _ids.next()


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's own ``X-Request-ID`` when it sent exactly one valid one, else a new id."""
    found: bytes | None = None
    for name, value in headers:
        if name == HEADER:
            if found is not None:
                return new_request_id()  # two: believing either would be a guess
            found = value
    if found is not None and VALID_ID.fullmatch(found):
        return found.decode("ascii")
    return new_request_id()


class Observed:
    """What the view records about one request for its line: filled as operations finish."""

    __slots__ = ("batch", "error", "names", "types", "viewer_id")

    def __init__(self) -> None:
        self.names: list[str | None] = []
        self.types: list[str | None] = []
        self.viewer_id: int | None = None
        self.error: str | None = None
        self.batch: int | None = None

    def note_error(self, code: str | None) -> None:
        """The request's first error code is its line's."""
        if code and self.error is None:
            self.error = code


_observed: ContextVar[Observed | None] = ContextVar("agora_observed", default=None)


def current() -> Observed | None:
    """The record of the request being answered (None outside one, or without the middleware)."""
    return _observed.get()


def note_error(code: str | None) -> None:
    """A request-level error (answered before or instead of any operation)."""
    observed = _observed.get()
    if observed is not None:
        observed.note_error(code)


def note_viewer(viewer_id: int | None) -> None:
    """Who sent the request (None: anonymous)."""
    observed = _observed.get()
    if observed is not None:
        observed.viewer_id = viewer_id


def note_batch(size: int) -> None:
    """The request is a batch of ``size`` operations."""
    observed = _observed.get()
    if observed is not None:
        observed.batch = size


class Operation:
    """One GraphQL operation of a request, from before its checks to its answer."""

    __slots__ = ("_sql_before", "_started", "_statements", "name", "type")

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.type: str | None = None
        self._started = perf_counter()
        self._statements = instrument.current()
        self._sql_before = self._statements.count if self._statements is not None else 0

    def done(self, code: str | None) -> None:
        """Finished with ``code`` (None: ok): counted, and recorded for the request's line."""
        seconds = perf_counter() - self._started
        statements = self._statements
        sql = statements.count - self._sql_before if statements is not None else 0
        metrics.record_operation(self.name, self.type, code, seconds, sql)
        observed = _observed.get()
        if observed is not None:
            observed.names.append(self.name)
            observed.types.append(self.type)
            observed.note_error(code)


def _joined(values: Sequence[str | None]) -> str | None:
    """One name (cut short), or a batch's, comma-separated."""
    if not values:
        return None
    if len(values) == 1:
        return truncate(values[0], NAME_MAX_CHARS) if values[0] is not None else None
    return ",".join("" if v is None else truncate(v, NAME_MAX_CHARS) for v in values)


class Observe:
    """The outermost middleware: request ids, the request line, the request metrics."""

    def __init__(self, app: ASGIApp, settings: Settings, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.trusted = settings.trusted_proxies
        # Paths answered before routing (413s, preflights) still get their template.
        self.paths = frozenset(
            path for route in routes if "{" not in (path := str(getattr(route, "path", "{")))
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = tracing.tracer
        if tracer is None:
            await self._observed(scope, receive, send, None)
            return
        # Tracing on: the request's span, in the caller's trace when it sent a traceparent;
        # named by its route template once routing has found it.
        method = scope.get("method", "")
        with tracer.start_as_current_span(
            method,
            context=tracing.incoming_context(Headers(scope=scope)),
            kind=tracing.server_kind(),
            attributes={"http.request.method": method, "url.path": scope.get("path", "")},
        ) as span:
            await self._observed(scope, receive, send, span)

    async def _observed(self, scope: Scope, receive: Receive, send: Send, span: Any) -> None:
        started = perf_counter()
        request_id = request_id_of(scope["headers"])
        id_header = (HEADER, request_id.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        observed = Observed()
        observed_token = _observed.set(observed)
        statements, statements_token = instrument.begin()
        bound = bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # The view answers its own errors; this is anything else (a page, an asset): one
            # traceback, with the request id, and JSON with a code, never a bare 500.
            logger.error("request failed", exc_info=exc)
            observed.note_error("INTERNAL_SERVER_ERROR")
            if not status:
                await JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "Internal server error.",
                                "extensions": {"code": "INTERNAL_SERVER_ERROR"},
                            }
                        ]
                    },
                    status_code=500,
                )(scope, receive, send_with_id)
        finally:
            seconds = perf_counter() - started
            instrument.end(statements, statements_token)
            _observed.reset(observed_token)
            try:
                self._done(scope, observed, statements.count, status, seconds, request_id, span)
            finally:
                reset_contextvars(**bound)

    def _client(self, scope: Scope) -> str:
        """The client's address, by the app's rule (TRUSTED_PROXIES)."""
        peer = scope.get("client")
        headers = Headers(scope=scope) if self.trusted else {}
        return client_address(peer[0] if peer else None, headers, self.trusted)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", OTHER_ROUTE))
        path = scope.get("path", "")
        return path if path in self.paths else OTHER_ROUTE

    def _done(
        self,
        scope: Scope,
        observed: Observed,
        sql: int,
        status: int,
        seconds: float,
        request_id: str,
        span: Any = None,
    ) -> None:
        """The request's metrics, line and (tracing on) span attributes."""
        route = self._route(scope)
        method = scope.get("method", "")
        # No answer at all: the client left first (nginx's 499).
        status = status or 499
        metrics.record_request(route, method, status, seconds)
        if span is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("agora.request_id", request_id)
            if observed.error is not None:
                tracing.mark_error(span, observed.error)
        if not access.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": self._client(scope),
            "sql": sql,
            "error_code": observed.error,
        }
        if route in GRAPHQL_ROUTES:
            fields["operation"] = _joined(observed.names)
            fields["operation_type"] = _joined(observed.types)
            fields["viewer_id"] = observed.viewer_id
            fields["batch"] = observed.batch
        emit(access, "request", fields, request_id)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        request_id = request_id_of(scope["headers"])
        id_header = (HEADER, request_id.encode())
        close_code: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal close_code
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message["type"] == "websocket.close":
                close_code = message.get("code", 1000)
            await send(message)

        bound = bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            try:
                if not scope.get(SOCKET_LOGGED):
                    # The endpoint writes a socket's line as it closes; one it refused first
                    # (an origin not allowed: HTTP 403; no subprotocol: 4406) gets this one.
                    fields = {
                        "close_code": close_code,
                        "duration_ms": round((perf_counter() - started) * 1000, 3),
                        "client": self._client(scope),
                        "viewer_id": None,
                        "operations": 0,
                        "subscriptions": 0,
                    }
                    emit(access, "websocket closed", fields, request_id)
            finally:
                reset_contextvars(**bound)
