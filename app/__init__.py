"""The Starlette application: its lifespan owns every resource; routes serve /graphql.

Run it with ``uvicorn app:create_app --factory`` (``make run`` does, after migrating).
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from tortoise.contrib.starlette import RegisterTortoise

from accounts.ratelimit import MemoryRateLimiter, RateLimiter
from accounts.service import Accounts
from api.context import Context, Services
from api.extensions import (
    MASKED_MESSAGE,
    format_errors,
    response_size_over,
    response_too_large,
)
from api.live import LiveGraphQL
from api.loaders import Loaders
from api.schema import build_schema
from clientaddr import client_address
from comments.service import Comments
from db.config import tortoise_config
from db.health import is_database_down, within
from db.sql import fetch_dicts
from logs import configure_logging, get_logger, install_log_filters, truncate
from markets.trading import Trading
from realtime.brokers import RedisBroker, broker_for
from realtime.endpoint import WebsocketEndpoint
from realtime.events import broker_publisher
from realtime.fanout import Hub
from settings import Settings, load_settings

logger = get_logger("agora")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ""."""
    if not authorization:
        return ""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def error_body(message: str, code: str) -> dict[str, Any]:
    """A GraphQL response carrying one request-level error."""
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}


class _DatabaseDown(Exception):
    """Raised out of the view to answer 503."""


class _Refused(Exception):
    """Raised out of the view to answer with another status than 200."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


# Request-level errors that the GraphQL-over-HTTP spec answers with a 4xx status.
_STATUS_OF_CODE = {"STREAMING_TRANSPORT_REQUIRED": 400}


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context and error rule."""

    def __init__(self, settings: Settings, services: Services) -> None:
        super().__init__(build_schema(settings), graphql_ide="graphiql", allow_queries_via_get=True)
        self.settings = settings
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Whatever goes wrong, the client gets JSON with a code: strawberry answers a malformed
        # request in plain text, and an exception escaping here would be uvicorn's plain 500
        # (and a closed keep-alive connection).
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            code = "METHOD_NOT_ALLOWED" if exc.status_code == 405 else "BAD_USER_INPUT"
            response = JSONResponse(error_body(exc.reason, code), status_code=exc.status_code)
        except _Refused as refused:
            response = JSONResponse(refused.body, status_code=refused.status)
        except Exception as exc:
            if isinstance(exc, _DatabaseDown) or is_database_down(exc):
                response = self.unavailable()
            else:
                logger.error("request failed outside execution", exc_info=exc)
                response = JSONResponse(
                    error_body(MASKED_MESSAGE, "INTERNAL_SERVER_ERROR"), status_code=500
                )
        await response(scope, receive, send)

    def unavailable(self) -> Response:
        """HTTP 503 while the database doesn't answer: clients retry after Retry-After."""
        return JSONResponse(
            error_body("The database is unavailable; retry shortly.", "SERVICE_UNAVAILABLE"),
            status_code=503,
            headers={"Retry-After": str(self.settings.retry_after_seconds)},
        )

    def decode_json(self, data: str | bytes) -> object:
        """A request body (or GET's variables) as JSON; anything else is a 400 with a code."""
        # json.loads raises UnicodeDecodeError on invalid UTF-8 and RecursionError on deep
        # nesting, neither of which strawberry turns into a 400; and a body that is a JSON
        # string or number breaks strawberry's `.get`.
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError as exc:
            raise HTTPException(400, "The request body is not valid UTF-8.") from exc
        try:
            value = json.loads(text)
        except RecursionError as exc:
            raise HTTPException(400, "The request body is nested too deeply.") from exc
        except ValueError as exc:
            # JSONDecodeError, and a number of over 4,300 digits (Python won't convert it).
            raise HTTPException(400, "Unable to parse request body as JSON.") from exc
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        return value

    def encode_json(self, data: object) -> str:
        """A response as compact JSON, or RESPONSE_TOO_LARGE when it is over its bound."""
        encoded = json.dumps(data, separators=(",", ":"))
        # ensure_ascii: one character is one byte, so len() is the body's size.
        if len(encoded) > self.settings.max_response_bytes:
            # process_result's estimate missed it (escapes make a body longer than its text).
            return json.dumps(
                {"data": None, "errors": [response_too_large(self.settings.max_response_bytes)]},
                separators=(",", ":"),
            )
        return encoded

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        token = bearer_token(request.headers.get("authorization"))
        viewer = None
        if token:
            viewer = await within(
                self.services.accounts.authenticate(token), self.settings.db_timeout_seconds
            )
        if token and viewer is None and isinstance(response, Response):
            # An expired or revoked token: the request goes on as anonymous, and says why.
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        context = Context(
            settings=self.settings,
            services=self.services,
            loaders=Loaders(self.settings.max_response_objects),
            viewer=viewer,
            token=token if viewer else "",
            client_address=client_address(
                request.client.host if request.client else None,
                request.headers,
                self.settings.trusted_proxies,
            ),
            request=request,
            response=response,
        )
        request.state.context = context  # for process_result, which gets only the request
        return context

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised outside the operation (by an extension, say) skip ErrorCodes' hook.
        result.errors = format_errors(result.errors)
        context = getattr(request.state, "context", None)
        if (
            context is not None
            and context.operation_type == "mutation"
            and any(value is not None for value in (result.data or {}).values())
        ):
            # A mutation that did its work is never hidden behind a 503 or data: null (a client
            # retrying it without an idempotency key would do it twice): its errors say what
            # failed after it.
            return self._answer(result)
        if context is not None and context.loaders.budget.exceeded:
            # Loads issued in one batch all complete before the budget can refuse the next.
            # Never a truncated body: no data, one error.
            return {"data": None, "errors": [context.loaders.budget.error().formatted()]}
        if result.data is not None and response_size_over(
            result.data, self.settings.max_response_bytes
        ):
            return {"data": None, "errors": [response_too_large(self.settings.max_response_bytes)]}
        for error in result.errors or ():
            code = (error.extensions or {}).get("code")
            if code == "SERVICE_UNAVAILABLE":
                raise _DatabaseDown
            if code in _STATUS_OF_CODE:
                raise _Refused(_STATUS_OF_CODE[code], {"data": None, "errors": [error.formatted]})
        return self._answer(result)

    @staticmethod
    def _answer(result: ExecutionResult) -> GraphQLHTTPResponse:
        """``result`` as the GraphQL-over-HTTP response body."""
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [error.formatted for error in result.errors]
        if result.extensions:
            data["extensions"] = result.extensions
        return data


class BodySizeLimit:
    """Answers 413 to a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._too_large(scope, receive, send)
                    return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "errors": [
                    {
                        "message": f"Request body exceeds {self.limit} bytes.",
                        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                    }
                ]
            },
            status_code=413,
        )
        await response(scope, receive, send)


async def http_error(request: Request, exc: Exception) -> Response:
    """Routing's own errors (an unknown path, PUT /graphql) as JSON with a code, like the rest."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_USER_INPUT")
    return JSONResponse(
        error_body(str(exc.detail), code), status_code=exc.status_code, headers=exc.headers
    )


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Readiness: the database answers, and Redis does when it is configured."""
    body: dict[str, str] = {}
    try:
        await within(fetch_dicts("SELECT 1 AS ok"), request.app.state.settings.db_timeout_seconds)
        body["database"] = "ok"
    except Exception as exc:
        logger.warning("readiness check failed: %s", truncate(repr(exc), 300))
        body["database"] = "down"
    broker = request.app.state.broker
    if isinstance(broker, RedisBroker):
        body["redis"] = "ok" if broker.healthy else "down"
    ready = all(value == "ok" for value in body.values())
    return JSONResponse(body, status_code=200 if ready else 503)


def create_app(settings: Settings | None = None, limiter: RateLimiter | None = None) -> Starlette:
    """Build the application for ``settings`` (read from the environment by default).

    ``limiter`` replaces the in-process rate limiter (tests pass one with a fake clock).
    """
    settings = settings or load_settings()
    # Whatever starts the app (python -m app, README's uvicorn command, tests), its log records
    # and uvicorn's are cut short and access lines lose their query strings.
    install_log_filters(settings)
    limiter = limiter or MemoryRateLimiter()
    broker = broker_for(settings)
    # The services publish each committed change to the broker themselves.
    publish = broker_publisher(broker)
    services = Services(
        accounts=Accounts(settings, limiter, publish=publish),
        comments=Comments(settings, limiter, publish=publish),
        trading=Trading(settings, publish=publish),
    )
    graphql = GraphQLApp(settings, services)
    # The GraphQL layer's part of the websocket server: realtime never imports it.
    live = LiveGraphQL(graphql.schema, settings, services)  # type: ignore[arg-type]
    hub = Hub(live, settings, broker, services.accounts.session)
    websocket = WebsocketEndpoint(hub)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with RegisterTortoise(app, config=tortoise_config(settings)):
            await broker.start()
            # Start-up objects live as long as the process: keep them out of every full
            # collection (they made fan-out pauses with thousands of sockets).
            gc.freeze()
            try:
                yield
            finally:
                await broker.stop()
                # Password-hashing threads: waiting hashes are cancelled, running ones finish.
                await services.accounts.close()

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/graphql/", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", websocket.handle),
        WebSocketRoute("/graphql/", websocket.handle),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
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
    app.state.broker = broker
    app.state.hub = hub
    return app


async def prepare_database(settings: Settings) -> None:
    """Migrate; outside production, load the demo data into an empty database."""
    from tortoise import Tortoise

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
    """``python -m app``: migrate, seed an empty development database, serve."""
    import uvicorn

    settings = load_settings()
    configure_logging(settings)
    asyncio.run(prepare_database(settings))
    logger.info("serving http://%s:%s/graphql", settings.host, settings.port)
    uvicorn.run(create_app(settings), **uvicorn_options(settings))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every start path passes to uvicorn (README's command line spells the same)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # configure_logging's handlers, which truncate
        # The app derives the client address itself (clientaddr, TRUSTED_PROXIES).
        "proxy_headers": False,
        # uvicorn would buffer up to 16 MiB of a websocket message before the app's own limit.
        "ws_max_size": settings.ws_max_message_bytes,
    }
