"""The GraphQL HTTP view: GraphQL over HTTP as its spec says, subscriptions streamed over
Server-Sent Events or Apollo's multipart protocol, persisted queries, batches, caching headers.

One request, end to end (``GraphQLApp.handle``):

1. ``Accept`` decides the answer's kind (``app.negotiation``): graphql-response+json, JSON,
   ``text/event-stream`` or multipart; nothing acceptable is 406.
2. The body (or GET's parameters) is one request or, as an array, a batch.
3. Each request's document comes from its text or its persisted-query hash (``app.persisted``),
   then passes the document checks (cached with the parsed document by text), the choice of
   operation and the request's checks (variables coerced, limits) before anything executes.
   What fails here is a *request error*: no ``data``, and with ``graphql-response+json`` a 4xx
   status; with ``application/json`` the status stays 200 (what clients before the spec expect)
   except where it always was 4xx.
4. A subscription streams (``realtime.streams``, the websocket's fan-out), anything else is
   executed by strawberry with a fresh ``Context`` and its result's size bounded.
5. Anonymous GET queries carry an ``ETag`` (304 on ``If-None-Match``); the rest ``no-store``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from inspect import isawaitable
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
)
from graphql import ExecutionResult as CoreExecutionResult
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.execution import optimized_is_awaitable
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

import clock
import metrics
import tracing
from api.context import Context, Services
from api.core.errors import StreamingTransportRequired, graphql_error
from api.extensions import (
    MASKED_MESSAGE,
    ErrorCodes,
    choose_operation,
    format_errors,
    request_error,
    response_size_over,
    response_too_large,
)
from api.extensions.cache import CheckedDocument
from api.extensions.cachetags import ROOT_TAGS, TagRecorder
from api.extensions.cost import walk
from api.extensions.query_limits import DocumentCheck
from api.loaders import Loaders
from api.schema import build_schema
from app import observe
from app.negotiation import Media, negotiate, parse_accept, parse_media_type
from app.pages import Pages
from app.persisted import PersistedQueries, PersistedQueryError
from app.response_cache import HEADER as CACHE_HEADER
from app.response_cache import ResponseCache
from clientaddr import client_address
from db.health import is_database_down, within
from logs import get_logger
from realtime.operations import error_code, refusal_code
from realtime.protocol.multipart import MULTIPART
from realtime.protocol.sse import SSE
from realtime.sharing import reads_viewer
from realtime.streams import HTTPStreams, StreamRefused
from settings import Settings

logger = get_logger("agora")

# What /graphql answers with, in the order a tie of preferences is broken.
OFFERED = (Media.GRAPHQL_RESPONSE_JSON, Media.JSON, Media.EVENT_STREAM, Media.MULTIPART)
CONTENT_TYPES = {
    Media.GRAPHQL_RESPONSE_JSON: "application/graphql-response+json; charset=utf-8",
    Media.JSON: "application/json",
}
WIRES = {Media.EVENT_STREAM: SSE, Media.MULTIPART: MULTIPART}
# The CORS middleware appends Origin.
VARY = "Accept, Authorization"
# Request errors and their status under graphql-response+json (400 unless listed); under
# application/json these keep 200, but for those in ALWAYS_STATUS.
STATUS_OF_CODE = {
    # As Apollo Server answers them: the client resends the document, it didn't err.
    "PERSISTED_QUERY_NOT_FOUND": 200,
    "PERSISTED_QUERY_NOT_SUPPORTED": 200,
    "METHOD_NOT_ALLOWED": 405,
    "NOT_ACCEPTABLE": 406,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "TOO_MANY_STREAMS": 429,
    "SERVICE_UNAVAILABLE": 503,
}
# Request errors whose status doesn't depend on the media type: they were 4xx before the
# spec's media type existed, or mean "not this way" to any client.
ALWAYS_STATUS = {
    "STREAMING_TRANSPORT_REQUIRED",
    "BATCH_TOO_LARGE",
    "METHOD_NOT_ALLOWED",
    "NOT_ACCEPTABLE",
    "UNSUPPORTED_MEDIA_TYPE",
    "TOO_MANY_STREAMS",
    "SERVICE_UNAVAILABLE",
}


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ""."""
    if not authorization:
        return ""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def coded(message: str, code: str) -> dict[str, Any]:
    """One formatted error with ``extensions.code``."""
    return {"message": message, "extensions": {"code": code}}


def error_body(message: str, code: str) -> dict[str, Any]:
    """A GraphQL response carrying one request-level error."""
    return {"data": None, "errors": [coded(message, code)]}


class _DatabaseDown(Exception):
    """Raised out of the view to answer 503."""


class RequestError(Exception):
    """A request that fails before execution: its errors (formatted) and, when it isn't the
    media type's default, its status."""

    def __init__(
        self,
        errors: list[Any],
        status: int | None = None,
        headers: dict[str, str] | None = None,
        malformed: bool = False,
    ) -> None:
        super().__init__(errors[0]["message"] if errors else "request error")
        self.errors = errors
        self.status = status
        self.headers = headers or {}
        # Not a well-formed GraphQL-over-HTTP request: 400 whatever the media type.
        self.malformed = malformed

    @classmethod
    def of(cls, message: str, code: str, **kwargs: Any) -> RequestError:
        """One coded error."""
        return cls([coded(message, code)], **kwargs)

    @property
    def code(self) -> str:
        """The first error's code."""
        return str((self.errors[0].get("extensions") or {}).get("code", "")) if self.errors else ""

    def status_for(self, media: Media) -> int:
        """The HTTP status of this error answered as ``media``."""
        if self.status is not None:
            return self.status
        code = self.code
        if self.malformed or code in ALWAYS_STATUS:
            return STATUS_OF_CODE.get(code, 400)
        if media is Media.JSON:
            return 200
        return STATUS_OF_CODE.get(code, 400)

    def body(self, media: Media) -> dict[str, Any]:
        """The response body: ``errors`` only, but ``data: null`` under application/json as
        its clients always had it."""
        if media is Media.JSON:
            return {"data": None, "errors": self.errors}
        return {"errors": self.errors}


@dataclass
class GraphQLRequest:
    """One operation of a request: its parameters as sent."""

    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    document_id: Any = None


@dataclass
class Prepared:
    """A request that passed every check before execution."""

    request: GraphQLRequest
    query: str
    document: DocumentNode
    operation: OperationDefinitionNode
    checked: CheckedDocument

    @property
    def kind(self) -> OperationType:
        """Query, mutation or subscription."""
        return self.operation.operation


@dataclass
class _Answer:
    """One executed operation's response body, and its kind (which decides its headers)."""

    body: GraphQLHTTPResponse
    kind: OperationType


class GraphQLApp(GraphQL[Context, None]):
    """The /graphql view: strawberry's schema and GraphiQL, our HTTP protocol."""

    def __init__(self, settings: Settings, services: Services) -> None:
        schema = build_schema(settings)
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
        )
        # graphql-core's schema, for the checks.
        self.core = schema._schema
        self.settings = settings
        self.services = services
        self.persisted = PersistedQueries(settings)
        # Set by the app once the hub exists (subscriptions over HTTP).
        self.streams: HTTPStreams | None = None
        # Set by the app: GraphiQL's page (app.pages).
        self.pages: Pages | None = None
        # Parsing and the document checks, cached by text: the DocumentChecks extension's.
        self.check: DocumentCheck = schema.check_document  # type: ignore[attr-defined]
        # Set by the app when RESPONSE_CACHE is on (app.response_cache).
        self.response_cache: ResponseCache | None = None
        # Checked operations skip strawberry's execute when its extensions are the schema's
        # own two (whose work prepare and _execute_checked do): see _execute_checked.
        self.direct_execution = {getattr(e, "__name__", "") for e in schema.extensions} <= {
            ErrorCodes.__name__,
            "DocumentChecks",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Whatever goes wrong, the client gets JSON with a code, never a plain-text 500 (and a
        # closed keep-alive connection).
        response: ASGIApp
        try:
            response = await self.handle(Request(scope=scope, receive=receive))
        except ClientDisconnect:
            return  # the client left while sending its body: nobody to answer
        except Exception as exc:
            if isinstance(exc, _DatabaseDown) or is_database_down(exc):
                response = self.unavailable()
            else:
                logger.error("request failed outside execution", exc_info=exc)
                observe.note_error("INTERNAL_SERVER_ERROR")
                response = JSONResponse(
                    error_body(MASKED_MESSAGE, "INTERNAL_SERVER_ERROR"), status_code=500
                )
        await response(scope, receive, send)

    def unavailable(self) -> Response:
        """HTTP 503 while the database doesn't answer: clients retry after Retry-After."""
        observe.note_error("SERVICE_UNAVAILABLE")
        return JSONResponse(
            error_body("The database is unavailable; retry shortly.", "SERVICE_UNAVAILABLE"),
            status_code=503,
            headers={"Retry-After": str(self.settings.retry_after_seconds)},
        )

    # -- the request ------------------------------------------------------------------------

    async def handle(self, request: Request) -> ASGIApp:
        """The response to one HTTP request on /graphql."""
        if request.method not in ("GET", "POST"):
            return self._error_response(
                RequestError.of(
                    "GraphQL only supports GET and POST requests.", "METHOD_NOT_ALLOWED"
                ),
                Media.JSON,
                {"Allow": "GET, POST"},
            )
        accept = request.headers.get("accept")
        if request.method == "GET" and self._wants_ide(request, accept):
            if self.graphql_ide and self.pages is not None:
                return await self.pages.graphiql(request)
            return self._error_response(
                RequestError.of(
                    "GraphiQL is off here (the GRAPHIQL setting); send a query.",
                    "NOT_FOUND",
                    status=404,
                ),
                Media.JSON,
            )
        media = negotiate(accept, OFFERED)
        if media is None:
            return self._error_response(
                RequestError.of(
                    "None of the Accept header's media types can be served: ask for "
                    "application/graphql-response+json, application/json, text/event-stream or "
                    'multipart/mixed;subscriptionSpec="1.0".',
                    "NOT_ACCEPTABLE",
                ),
                Media.JSON,
            )
        try:
            parsed = await self._parameters(request)
        except RequestError as refused:
            return self._error_response(refused, media, None, accept)
        cache = self.response_cache
        key: tuple[str, ...] | None = None
        cache_status: str | None = None
        op: observe.Operation | None = None
        if (
            cache is not None
            and not isinstance(parsed, list)
            and not media.streams
            and not token_sent(request)
        ):
            # Before the context: a hit needs no viewer, loaders or services.
            op = observe.Operation(parsed.operation_name)
            key, hit, cache_status = await self._cached(cache, parsed, op)
            if hit is not None:
                observe.note_viewer(None)
                return self._response(
                    request, _Answer({}, OperationType.QUERY), media, None, {}, hit, "hit"
                )
        sub_response = Response()
        context = await self.get_context(request, sub_response)
        observe.note_viewer(context.viewer.id if context.viewer else None)
        extra = {k: v for k, v in sub_response.headers.items() if k.lower() == "www-authenticate"}
        if isinstance(parsed, list):
            observe.note_batch(len(parsed))
            return await self._batch(request, parsed, media, context, extra)
        if op is None:
            op = observe.Operation(parsed.operation_name)
        try:
            prepared = await self.prepare(parsed, request.method, media, context)
        except RequestError as refused:
            op.done(refused.code)
            return self._error_response(refused, media, extra, accept)
        _name(op, prepared)
        if prepared.kind == OperationType.SUBSCRIPTION:
            return await self._stream(prepared, media, context, extra, accept, op)
        try:
            if cache is not None and key is not None and prepared.kind == OperationType.QUERY:
                return await self._run_cached(
                    request, cache, key, prepared, media, context, extra, op
                )
            answer = await self._run(request, prepared, context, op)
            if media.streams:
                wire = WIRES[media]
                body = wire.start() + wire.result(self.encode_json(answer.body)) + wire.end()
                return Response(
                    body,
                    media_type=wire.content_type,
                    headers={"Cache-Control": "no-store", "Vary": VARY, **extra},
                )
            if prepared.kind != OperationType.QUERY:
                cache_status = None
            return self._response(request, answer, media, context, extra, None, cache_status)
        finally:
            # The answer is built: its objects go by reference counting (LoaderBase.release).
            context.loaders.release()

    async def _cached(
        self, cache: ResponseCache, params: GraphQLRequest, op: observe.Operation
    ) -> tuple[tuple[str, ...] | None, str | None, str | None]:
        """An anonymous request's cache key, the body on a hit (the operation counted as
        done), and "bypass" when versions can't be checked now."""
        try:
            digest = self.persisted.requested_hash(params.extensions, params.document_id)
        except PersistedQueryError:
            return None, None, None  # prepare says what is wrong with it
        key = cache.key_of(params.query, digest, params.operation_name, params.variables)
        status, found = await cache.lookup(key)
        if found is None:
            if status == "bypass":
                metrics.RESPONSE_CACHE.labels("bypass").inc()
                return None, None, "bypass"
            return key, None, None
        metrics.RESPONSE_CACHE.labels("hit").inc()
        op.name, op.type = found.name, OperationType.QUERY.value
        op.done(None)
        return key, found.body, "hit"

    async def _run_cached(
        self,
        request: Request,
        cache: ResponseCache,
        key: tuple[str, ...],
        prepared: Prepared,
        media: Media,
        context: Context,
        extra: dict[str, str],
        op: observe.Operation,
    ) -> Response:
        """A query that missed: executed with its tags recorded, kept when it may be."""
        start = None
        if cacheable_selection(self.core, prepared.document, prepared.operation):
            start = await cache.begin(key)
        try:
            return await self._miss(request, cache, key, prepared, media, context, extra, op, start)
        finally:
            if start is not None:
                cache.finish(key)

    async def _miss(
        self,
        request: Request,
        cache: ResponseCache,
        key: tuple[str, ...],
        prepared: Prepared,
        media: Media,
        context: Context,
        extra: dict[str, str],
        op: observe.Operation,
        start: tuple[str, int] | None,
    ) -> Response:
        """``_run_cached``'s execution and its verdict."""
        recorder = None
        if start is not None:
            recorder = TagRecorder(clock.now())
            context.loaders.budget.recorder = recorder
        try:
            answer = await self._run(request, prepared, context, op)
        finally:
            context.loaders.budget.recorder = None
        encoded = self.encode_json(answer.body)
        storable = (
            start is not None
            and recorder is not None
            and recorder.uncacheable is None
            and not answer.body.get("errors")
            # encode_json's RESPONSE_TOO_LARGE (data: null comes only with errors).
            and not encoded.startswith('{"data":null')
        )
        if storable and start is not None and recorder is not None:
            for field in root_fields(prepared.operation) or ():
                recorder.tags.update(ROOT_TAGS[field] or ())
            # Not kept when a write raced it (or it is over its bound): still a miss.
            await cache.store(key, encoded, op.name, recorder, start)
        status = "miss" if storable else "bypass"
        metrics.RESPONSE_CACHE.labels(status).inc()
        return self._response(request, answer, media, context, extra, encoded, status)

    @staticmethod
    def _wants_ide(request: Request, accept: str | None) -> bool:
        """A browser opening /graphql: text/html accepted, and no operation asked for."""
        params = request.query_params
        if any(name in params for name in ("query", "extensions", "documentId")):
            return False
        return any(
            entry.type == "text/html" and entry.q > 0 for entry in parse_accept(accept or "")
        )

    async def _parameters(self, request: Request) -> GraphQLRequest | list[GraphQLRequest]:
        """The request's operation (or a batch's), with the parameters' types checked."""
        if request.method == "GET":
            params = request.query_params
            raw: dict[str, Any] = {
                "query": params.get("query"),
                "operationName": params.get("operationName"),
                "documentId": params.get("documentId"),
            }
            for name in ("variables", "extensions"):
                text = params.get(name)
                raw[name] = None if text in (None, "") else self.decode_json(text, name)
            return self._one(raw)
        content_type, _ = parse_media_type(request.headers.get("content-type", ""))
        if content_type != "application/json":
            raise RequestError.of(
                "POST bodies are JSON: send Content-Type: application/json.",
                "UNSUPPORTED_MEDIA_TYPE",
                malformed=True,
            )
        body = self.decode_json(await request.body(), "body")
        if isinstance(body, list):
            return [self._one(item) for item in body]
        return self._one(body)

    @staticmethod
    def _one(raw: object) -> GraphQLRequest:
        if not isinstance(raw, dict):
            raise RequestError.of(
                "The request body must be a JSON object (or, batched, an array of them).",
                "BAD_USER_INPUT",
                malformed=True,
            )
        query, variables = raw.get("query"), raw.get("variables")
        operation_name, extensions = raw.get("operationName"), raw.get("extensions")
        for name, value, kind in (
            ("query", query, str),
            ("operationName", operation_name, str),
            ("variables", variables, dict),
            ("extensions", extensions, dict),
        ):
            if value is not None and not isinstance(value, kind):
                what = "a string" if kind is str else "an object"
                raise RequestError.of(
                    f"The GraphQL request's `{name}` must be {what} or null, if provided.",
                    "BAD_USER_INPUT",
                    malformed=True,
                )
        return GraphQLRequest(query, variables, operation_name, extensions, raw.get("documentId"))

    def decode_json(self, data: str | bytes, what: str = "body") -> object:
        """A request body (or GET's variables) as JSON; anything else is a 400 with a code."""
        # json.loads raises UnicodeDecodeError on invalid UTF-8 and RecursionError on deep
        # nesting; a number of over 4,300 digits is a ValueError.
        label = "The request body" if what == "body" else f"The `{what}` parameter"
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError as exc:
            raise RequestError.of(
                f"{label} is not valid UTF-8.", "BAD_USER_INPUT", malformed=True
            ) from exc
        try:
            value = json.loads(text)
        except RecursionError as exc:
            raise RequestError.of(
                f"{label} is nested too deeply.", "BAD_USER_INPUT", malformed=True
            ) from exc
        except ValueError as exc:
            raise RequestError.of(
                f"{label} is not valid JSON.", "BAD_USER_INPUT", malformed=True
            ) from exc
        if what == "body" and not isinstance(value, dict | list):
            raise RequestError.of(
                "The request body must be a JSON object.", "BAD_USER_INPUT", malformed=True
            )
        return value

    # -- the checks before execution --------------------------------------------------------

    async def prepare(
        self, params: GraphQLRequest, method: str, media: Media, context: Context
    ) -> Prepared:
        """``params`` checked for execution; RequestError with what fails first."""
        try:
            digest = self.persisted.requested_hash(params.extensions, params.document_id)
            query, remember = await self.persisted.resolve(params.query, digest)
        except PersistedQueryError as refused:
            # A malformed extension or a text that doesn't hash to its hash: 400, as Apollo's.
            malformed = refused.code == "BAD_USER_INPUT"
            raise RequestError.of(refused.message, refused.code, malformed=malformed) from refused
        if not query:
            raise RequestError.of(
                "No GraphQL query found in the request.", "BAD_USER_INPUT", malformed=True
            )
        checked = self.check_document(query)
        if checked.errors:
            raise RequestError([e.formatted for e in format_errors(checked.errors) or ()])
        if remember:
            await self.persisted.remember(query)
        operation = choose_operation(checked.document, params.operation_name)
        if isinstance(operation, GraphQLError):
            raise RequestError([e.formatted for e in format_errors([operation]) or ()])
        if method == "GET" and operation.operation == OperationType.MUTATION:
            raise RequestError.of(
                "Mutations are not allowed over GET: send them with POST.",
                "METHOD_NOT_ALLOWED",
                headers={"Allow": "POST"},
            )
        if operation.operation == OperationType.SUBSCRIPTION and not media.streams:
            required = StreamingTransportRequired(
                "Subscriptions need a streaming transport: the websocket at /graphql "
                "(graphql-transport-ws), Server-Sent Events (Accept: text/event-stream) or "
                'multipart HTTP (Accept: multipart/mixed;subscriptionSpec="1.0").'
            )
            raise RequestError([graphql_error(required).formatted])
        error = request_error(
            self.core,
            checked.document,
            params.operation_name,
            params.variables,
            self.settings,
            limits=checked.limits,
            context=context,
        )
        if error is not None:
            raise RequestError([e.formatted for e in format_errors([error]) or ()])
        return Prepared(params, query, checked.document, operation, checked)

    def check_document(self, query: str) -> CheckedDocument:
        """``query`` parsed and checked, through the DocumentChecks extension's cache."""
        try:
            return self.check(self.core, query)
        except GraphQLError as exc:
            raise RequestError([e.formatted for e in format_errors([exc]) or ()]) from exc

    # -- execution --------------------------------------------------------------------------

    async def _execute(self, request: Request, prepared: Prepared, context: Context) -> _Answer:
        """Run a checked query or mutation; its response body."""
        context.prechecked = True
        if self.direct_execution:
            result = await self._execute_checked(prepared, context)
        else:
            result = await self.schema.execute(
                prepared.query,
                variable_values=prepared.request.variables,
                context_value=context,
                operation_name=prepared.request.operation_name,
            )
        body = await self.process_result(request, result, context)
        return _Answer(body, prepared.kind)

    async def _execute_checked(self, prepared: Prepared, context: Context) -> ExecutionResult:
        """``prepared`` run straight on graphql-core, with the schema's execution context, as
        strawberry's ``execute`` runs it once its extensions are through: their work is done
        by then (the document parsed, checked and its variables counted by ``prepare``; the
        error codes applied here, as ``ErrorCodes`` does). Strawberry's extension runner, its
        four hook contexts and its result conversion cost ~0.15 ms a request."""
        executor_class = getattr(self.schema, "execution_context_class", None)
        is_awaitable: Any = optimized_is_awaitable
        try:
            outcome = execute(
                self.core,
                prepared.document,
                context_value=context,
                variable_values=prepared.request.variables,
                operation_name=prepared.request.operation_name,
                is_awaitable=is_awaitable,
                **({"executor_class": executor_class} if executor_class is not None else {}),
            )
            if isawaitable(outcome):
                outcome = await outcome
        except Exception as exc:
            # What strawberry answers an exception out of execution with.
            error = (
                exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            )
            return ExecutionResult(data=None, errors=format_errors([error]))
        assert isinstance(outcome, CoreExecutionResult)
        return ExecutionResult(data=outcome.data, errors=format_errors(outcome.errors))

    async def _run(
        self, request: Request, prepared: Prepared, context: Context, op: observe.Operation
    ) -> _Answer:
        """``_execute``, its outcome counted (a 503 or an unexpected failure too), in a span of
        its own when tracing is on."""
        tracer = tracing.tracer
        if tracer is None:
            return await self._counted(request, prepared, context, op, None)
        kind = prepared.kind.value
        with tracer.start_as_current_span(
            f"{kind} {op.name}" if op.name else kind,
            attributes={"graphql.operation.type": kind, "graphql.operation.name": op.name or ""},
        ) as span:
            return await self._counted(request, prepared, context, op, span)

    async def _counted(
        self,
        request: Request,
        prepared: Prepared,
        context: Context,
        op: observe.Operation,
        span: Any,
    ) -> _Answer:
        try:
            answer = await self._execute(request, prepared, context)
        except Exception as exc:
            down = isinstance(exc, _DatabaseDown) or is_database_down(exc)
            code = "SERVICE_UNAVAILABLE" if down else "INTERNAL_SERVER_ERROR"
            op.done(code)
            if span is not None:
                tracing.mark_error(span, code)
            raise
        outcome = _outcome(answer.body, prepared)
        op.done(outcome)
        if span is not None and outcome is not None:
            tracing.mark_error(span, outcome)
        return answer

    async def _batch(
        self,
        request: Request,
        operations: list[GraphQLRequest],
        media: Media,
        context: Context,
        extra: dict[str, str],
    ) -> Response:
        """A batch (Apollo's BatchHttpLink): each operation checked and run in order, the
        batch's objects, bytes and expensive fields bounded as one request's."""
        settings = self.settings
        if not operations:
            return self._error_response(
                RequestError.of(
                    "An empty batch has nothing to run.", "BAD_USER_INPUT", malformed=True
                ),
                media,
                extra,
            )
        if len(operations) > settings.max_batch_operations:
            return self._error_response(
                RequestError.of(
                    f"A batch holds at most {settings.max_batch_operations} operations; this one "
                    f"holds {len(operations)}.",
                    "BATCH_TOO_LARGE",
                ),
                media,
                extra,
            )
        if media.streams:
            return self._error_response(
                RequestError.of(
                    "A batch can't be streamed: ask for application/json.",
                    "BAD_USER_INPUT",
                    malformed=True,
                ),
                Media.JSON,
                extra,
            )
        bodies: list[Any] = []
        objects_left = settings.max_response_objects
        bytes_left = settings.max_response_bytes
        expensive = 0
        mutated = database_down = False
        for params in operations:
            op = observe.Operation(params.operation_name)
            if database_down:
                # Once it failed, the rest would each wait out the database's timeout.
                op.done("SERVICE_UNAVAILABLE")
                bodies.append(
                    error_body("The database is unavailable; retry shortly.", "SERVICE_UNAVAILABLE")
                )
                continue
            # The same caller; its own loaders (with what is left of the batch's objects).
            op_context = replace(context, loaders=Loaders(max(1, objects_left)))
            try:
                prepared = await self.prepare(params, request.method, media, op_context)
                _name(op, prepared)
                if len(operations) > 1:
                    expensive += walk(
                        self.core,
                        prepared.document,
                        [prepared.operation],
                        params.variables or {},
                        settings,
                    ).expensive
                    if expensive > settings.max_expensive_fields:
                        raise RequestError.of(
                            f"The batch asks for more than {settings.max_expensive_fields} "
                            "expensive fields (password checks, trades, settlements) in all.",
                            "QUERY_TOO_COMPLEX",
                        )
            except RequestError as refused:
                op.done(refused.code)
                bodies.append(refused.body(media))
                continue
            try:
                answer = await self._execute(request, prepared, op_context)
            except Exception as exc:
                down = isinstance(exc, _DatabaseDown) or is_database_down(exc)
                op.done("SERVICE_UNAVAILABLE" if down else "INTERNAL_SERVER_ERROR")
                if not isinstance(exc, _DatabaseDown):
                    raise
                if not mutated:
                    raise  # nothing ran: the whole batch is a 503 the client may retry
                # A mutation before it did its work: never hidden behind a 503.
                database_down = True
                bodies.append(
                    error_body("The database is unavailable; retry shortly.", "SERVICE_UNAVAILABLE")
                )
                continue
            mutated = mutated or prepared.kind == OperationType.MUTATION
            objects_left = max(0, objects_left - op_context.loaders.budget.used)
            size = len(self.encode_json(answer.body).encode())
            if size > bytes_left and prepared.kind != OperationType.MUTATION:
                answer.body = {
                    "data": None,
                    "errors": [response_too_large(settings.max_response_bytes)],
                }
                size = len(self.encode_json(answer.body).encode())
            bytes_left = max(0, bytes_left - size)
            op.done(_outcome(answer.body, prepared))
            bodies.append(answer.body)
        return Response(
            json.dumps(bodies, separators=(",", ":")),
            media_type=CONTENT_TYPES[media],
            headers={"Cache-Control": "no-store", "Vary": VARY, **extra},
        )

    async def _stream(
        self,
        prepared: Prepared,
        media: Media,
        context: Context,
        extra: dict[str, str],
        accept: str | None,
        op: observe.Operation,
    ) -> ASGIApp:
        """A subscription streamed through the websocket's fan-out: counted as it opens (or is
        refused); its line is the request's, written when it ends."""
        assert self.streams is not None, "the app hands the view its streams"
        params = prepared.request
        payload = {
            "query": prepared.query,
            "variables": params.variables or {},
            "operationName": params.operation_name,
        }
        try:
            stream = await self.streams.open(
                WIRES[media], payload, context.token, context.client_address
            )
        except StreamRefused as refused:
            op.done(refused.code)
            headers = dict(extra)
            if refused.retry_after is not None:
                headers["Retry-After"] = str(refused.retry_after)
            return self._error_response(
                RequestError.of(refused.message, refused.code, status=refused.status),
                media,
                headers,
                accept,
            )
        op.done(None)
        stream.headers.update({"vary": VARY, **extra})
        return stream

    # -- answers ----------------------------------------------------------------------------

    def _error_response(
        self,
        error: RequestError,
        media: Media,
        headers: dict[str, str] | None = None,
        accept: str | None = None,
    ) -> Response:
        observe.note_error(error.code)
        if (
            media is Media.EVENT_STREAM
            and error.status is None
            and not (
                error.malformed
                or error.code in ALWAYS_STATUS
                or error.code == "GRAPHQL_PARSE_FAILED"
            )
        ):
            # graphql-sse: a document that parses but can't run is reported in the stream (its
            # client retries any 4xx as a network failure).
            return Response(
                SSE.start() + SSE.errors(error.errors) + SSE.end(),
                media_type=SSE.content_type,
                headers={"Cache-Control": "no-store", "Vary": VARY, **(headers or {})},
            )
        status, body = error.status_for(media), error.body(media)
        if media not in CONTENT_TYPES:
            # A stream that never started: answered as the JSON the client accepts beside it,
            # else as JSON with the spec's status (graphql-sse's client reads any 4xx as such).
            fallback = negotiate(accept, (Media.GRAPHQL_RESPONSE_JSON, Media.JSON))
            rules = fallback or Media.GRAPHQL_RESPONSE_JSON
            status, body = error.status_for(rules), error.body(rules)
            media = fallback or Media.JSON
        return Response(
            json.dumps(body, separators=(",", ":")),
            status_code=status,
            media_type=CONTENT_TYPES[media],
            headers={"Cache-Control": "no-store", "Vary": VARY, **error.headers, **(headers or {})},
        )

    def _response(
        self,
        request: Request,
        answer: _Answer,
        media: Media,
        context: Context | None,
        extra: dict[str, str],
        encoded: str | None = None,
        cache_status: str | None = None,
    ) -> Response:
        if encoded is None:
            encoded = self.encode_json(answer.body)
        headers = {"Vary": VARY, **extra}
        if cache_status is not None:
            headers[CACHE_HEADER] = cache_status
        cacheable = (
            request.method == "GET"
            and answer.kind == OperationType.QUERY
            and (context is None or context.viewer is None)
            and not request.headers.get("authorization")
            and not answer.body.get("errors")
        )
        if not cacheable:
            headers["Cache-Control"] = "no-store"
        else:
            max_age = self.settings.http_cache_max_age_seconds
            headers["Cache-Control"] = f"public, max-age={max_age}" if max_age else "no-cache"
            # The media type is part of what is tagged: the two JSON variants differ.
            tagged = media.value.encode() + b"\n" + encoded.encode()
            etag = '"' + hashlib.sha256(tagged).hexdigest()[:32] + '"'
            headers["ETag"] = etag
            if _matches_etag(request.headers, etag):
                return Response(status_code=304, headers=headers)
        return Response(encoded, media_type=CONTENT_TYPES[media], headers=headers)

    def encode_json(self, data: object) -> str:
        """A response as compact JSON, or RESPONSE_TOO_LARGE when it is over its bound."""
        try:
            # orjson: a twentieth of json.dumps's time on an article page (45 -> 2.6 µs a
            # 12 KB page); UTF-8, so the size is its bytes'.
            raw = orjson.dumps(data)
            encoded, size = raw.decode(), len(raw)
        except orjson.JSONEncodeError:
            # What orjson refuses and json writes: a lone surrogate (escaped), an integer
            # past 64 bits. ensure_ascii: one character is one byte, so len() is the size.
            encoded = json.dumps(data, separators=(",", ":"))
            size = len(encoded)
        if size > self.settings.max_response_bytes:
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
            # A session the cache holds needs neither a task nor a timer (accounts.sessions).
            viewer = self.services.accounts.cached_user(token)
            if viewer is None:
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
        return context

    async def process_result(  # type: ignore[override]
        self, request: Request, result: ExecutionResult, context: Context
    ) -> GraphQLHTTPResponse:
        """The body of an executed operation: its errors coded, its size bounded; a 503 (raised)
        while the database is down, unless a mutation did its work."""
        # Errors raised outside the operation (by an extension, say) skip ErrorCodes' hook.
        result.errors = format_errors(result.errors)
        if context.operation_type == "mutation" and any(
            value is not None for value in (result.data or {}).values()
        ):
            # A mutation that did its work is never hidden behind a 503 or data: null (a client
            # retrying it without an idempotency key would do it twice): its errors say what
            # failed after it.
            return self._answer(result)
        if context.loaders.budget.exceeded:
            # Loads issued in one batch all complete before the budget can refuse the next.
            # Never a truncated body: no data, one error.
            return {"data": None, "errors": [context.loaders.budget.error().formatted()]}
        limit = self.settings.max_response_bytes
        known = context.response_size  # counted by the planned executor as it ran
        if result.data is not None and (
            known > limit if known is not None else response_size_over(result.data, limit)
        ):
            return {"data": None, "errors": [response_too_large(self.settings.max_response_bytes)]}
        for error in result.errors or ():
            if (error.extensions or {}).get("code") == "SERVICE_UNAVAILABLE":
                raise _DatabaseDown
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


def token_sent(request: Request) -> bool:
    """Whether the request carries credentials (an Authorization header)."""
    return bool(request.headers.get("authorization"))


def root_fields(operation: OperationDefinitionNode) -> list[str] | None:
    """The root field names of ``operation``; None when fragments select at the root."""
    names: list[str] = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None
        names.append(selection.name.value)
    return names


def cacheable_selection(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> bool:
    """Whether the answer may be kept: every root field declares its tags, no directive that
    the cache can't see through, and no viewer-dependent field anywhere."""
    fields = root_fields(operation)
    if fields is None or any(ROOT_TAGS.get(name) is None for name in fields):
        return False
    if operation.directives:
        return False
    return not reads_viewer(schema, document)


def _name(op: observe.Operation, prepared: Prepared) -> None:
    """The operation's name and type, once chosen: the document's name for it."""
    chosen = prepared.operation
    op.name = chosen.name.value if chosen.name else prepared.request.operation_name
    op.type = chosen.operation.value


def _outcome(body: GraphQLHTTPResponse, prepared: Prepared) -> str | None:
    """An answer's error code: its first error's, or its mutation's first UserError's."""
    code = error_code(body.get("errors"))
    if code is None and prepared.kind == OperationType.MUTATION:
        code = refusal_code(prepared.document, prepared.operation, body.get("data"))
    return code


def _matches_etag(headers: Headers, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or ``*``); weak tags compare equal."""
    header = headers.get("if-none-match")
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


async def schema_sdl(request: Request) -> Response:
    """``GET /schema.graphql``: the printed SDL, where introspection is on."""
    settings: Settings = request.app.state.settings
    if not settings.introspection:
        return JSONResponse(
            error_body(
                "The schema is not published here (the INTROSPECTION setting).", "NOT_FOUND"
            ),
            status_code=404,
        )
    sdl: str = request.app.state.sdl
    etag = '"' + hashlib.sha256(sdl.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _matches_etag(request.headers, etag):
        return Response(status_code=304, headers=headers)
    return PlainTextResponse(sdl, media_type="application/graphql; charset=utf-8", headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Routing's own errors (an unknown path, PUT /graphql) as JSON with a code, like the rest."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_USER_INPUT")
    observe.note_error(code)
    return JSONResponse(
        error_body(str(exc.detail), code), status_code=exc.status_code, headers=exc.headers
    )
