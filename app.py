"""The Starlette application: its lifespan owns every resource; routes serve /graphql.

Run it with ``uvicorn app:create_app --factory`` (``make run`` does, after migrating).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
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
from comments.service import Comments
from db.config import tortoise_config
from db.sql import fetch_dicts
from markets.trading import Trading
from realtime.broker import RedisBroker, broker_for
from realtime.events import to_message
from realtime.server import Hub, WebsocketEndpoint
from schema.context import Context, Services
from schema.extensions import format_errors
from schema.schema import build_schema
from settings import Settings, load_settings

logger = logging.getLogger("agora")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ""."""
    if not authorization:
        return ""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


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
        # Strawberry answers a malformed request in plain text; clients get JSON with a code.
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            code = "METHOD_NOT_ALLOWED" if exc.status_code == 405 else "BAD_USER_INPUT"
            response = JSONResponse(
                {"errors": [{"message": exc.reason, "extensions": {"code": code}}]},
                status_code=exc.status_code,
            )
        await response(scope, receive, send)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        token = bearer_token(request.headers.get("authorization"))
        viewer = await self.services.accounts.authenticate(token) if token else None
        if token and viewer is None and isinstance(response, Response):
            # An expired or revoked token: the request goes on as anonymous, and says why.
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return Context(
            settings=self.settings,
            services=self.services,
            viewer=viewer,
            token=token if viewer else "",
            client_address=request.client.host if request.client else "unknown",
            request=request,
            response=response,
        )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised outside the operation (by an extension, say) skip ErrorCodes' hook.
        result.errors = format_errors(result.errors)
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


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Readiness: the database answers, and Redis does when it is configured."""
    body: dict[str, str] = {}
    try:
        await fetch_dicts("SELECT 1 AS ok")
        body["database"] = "ok"
    except Exception:
        logger.exception("readiness check failed")
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
    limiter = limiter or MemoryRateLimiter()
    services = Services(
        accounts=Accounts(settings, limiter),
        comments=Comments(settings, limiter),
        trading=Trading(settings),
    )
    broker = broker_for(settings.redis_url or None)

    async def publish(event: Any) -> None:
        message = to_message(event)
        if message is not None:
            await broker.publish(*message)

    services.publish = publish
    graphql = GraphQLApp(settings, services)
    hub = Hub(graphql.schema, settings, services, broker)  # type: ignore[arg-type]
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
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.services = services
    app.state.broker = broker
    app.state.hub = hub
    return app


async def prepare_database(settings: Settings) -> None:
    """Migrate; outside production, load the demo data into an empty database."""
    from tortoise import Tortoise

    from db.migrate import apply_migrations
    from db.seed import load_demo_data

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
    import asyncio

    import uvicorn

    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(prepare_database(settings))
    logger.info("serving http://%s:%s/graphql", settings.host, settings.port)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
