"""OpenTelemetry tracing, off by default: spans for HTTP requests, GraphQL operations and SQL.

``OTLP_ENDPOINT`` (an OTLP/HTTP traces URL such as ``http://collector:4318/v1/traces``) turns it
on; ``configure`` builds a tracer provider with a batching exporter (spans leave on the SDK's own
thread, never on the event loop). Tests pass an exporter of their own (the SDK's in-memory one).

Off, it costs one ``tracer is None`` check per request, operation and statement: every caller
looks at :data:`tracer` first. This module imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

# The app's tracer while tracing is on, else None (the check every caller makes first).
tracer: Tracer | None = None
_provider: TracerProvider | None = None
# Longest SQL text kept on a span (statements carry no values: parameters are bound).
STATEMENT_MAX_CHARS = 2000
# Longest wait on the collector for one export (a shutdown's last flush included).
EXPORT_TIMEOUT_SECONDS = 2


def configure(
    endpoint: str, service_name: str = "agora", exporter: SpanExporter | None = None
) -> None:
    """Turn tracing on: spans to ``endpoint`` over OTLP/HTTP, or to ``exporter`` when given
    (then synchronously, so a test sees every span as soon as it ends)."""
    global tracer, _provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # A collector that is down must not hold a shutdown (the exporter's default is 10 s
        # an export): spans are dropped after EXPORT_TIMEOUT_SECONDS instead.
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_SECONDS)
        provider.add_span_processor(
            BatchSpanProcessor(exporter, export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)
        )
    _provider = provider
    tracer = provider.get_tracer("agora")


def shutdown() -> None:
    """Flush and stop the exporter (the lifespan's end); tracing is off afterwards."""
    global tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    tracer, _provider = None, None


def incoming_context(headers: Mapping[str, str]) -> Any:
    """The caller's trace context from a W3C ``traceparent`` header, so this request's spans
    join the caller's trace (None without one)."""
    if "traceparent" not in headers:
        return None
    from opentelemetry.propagate import extract

    return extract(dict(headers))


def statement_text(query: str) -> str:
    """A SQL statement as a span attribute: bounded."""
    return query if len(query) <= STATEMENT_MAX_CHARS else query[:STATEMENT_MAX_CHARS] + "…"


def statement_name(query: str) -> str:
    """A SQL span's name: the statement's first keyword (``SELECT``), as the semantic
    conventions ask for a low-cardinality name."""
    head = query.lstrip()[:16].split(None, 1)
    return head[0].upper() if head else "SQL"


def server_kind() -> Any:
    """SpanKind.SERVER (imported only once tracing is on)."""
    from opentelemetry.trace import SpanKind

    return SpanKind.SERVER


def client_kind() -> Any:
    """SpanKind.CLIENT (imported only once tracing is on)."""
    from opentelemetry.trace import SpanKind

    return SpanKind.CLIENT


def mark_error(span: Any, code: str) -> None:
    """Record an operation's or request's error code on ``span`` and set its status to
    error (an expected refusal as much as a failure: the code says which)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("agora.error_code", code)
    span.set_status(Status(StatusCode.ERROR, code))
