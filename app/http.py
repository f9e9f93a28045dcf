"""The GraphQL HTTP view: a fresh Context per request, JSON in and out, every error a JSON
body with a code (503 while the database is down), results' size bounded before encoding."""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from api.context import Context, Services
from api.extensions import (
    MASKED_MESSAGE,
    format_errors,
    response_size_over,
    response_too_large,
)
from api.loaders import Loaders
from api.schema import build_schema
from clientaddr import client_address
from db.health import is_database_down, within
from logs import get_logger
from settings import Settings

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


async def http_error(request: Request, exc: Exception) -> Response:
    """Routing's own errors (an unknown path, PUT /graphql) as JSON with a code, like the rest."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_USER_INPUT")
    return JSONResponse(
        error_body(str(exc.detail), code), status_code=exc.status_code, headers=exc.headers
    )
