"""The app with its observability taken out: the ``off`` server of ``bench.observability``.

    PYTHONPATH=APP_ROOT:BENCH_ROOT/bench uvicorn quiet_app:create_quiet_app --factory

Exactly ``app.create_app`` (settings from the environment), except for the patches in
``PATCHES``, applied just before it is called: no request ids, no request line, no request or
operation metrics, no SQL counting. Run it with ``LOG_LEVEL=WARNING`` as well (the bench does),
so that nothing the app logs at INFO is written either. What stays is what serves the request,
plus what costs nothing per request (the metrics catalogue exists, ``/metrics`` answers; the
pool gauges are sampled once a second; tracing is off in both servers unless OTLP_ENDPOINT).

``bench.observability`` starts it the way ``bench.fanout`` starts ``fanout_app``: from this
tree's ``bench/`` folder (as the top-level module ``quiet_app``) over the app of
``--app-root``. So it imports nothing of ``bench`` itself (that tree may have its own), and an
app that predates any of the patched names is refused with the list of what is missing
(``check``), never measured half-patched.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

try:
    import app
    import metrics
    from app import observe
    from db import instrument
except ImportError as exc:  # an app from before observability (issue 12)
    raise SystemExit(
        f"quiet_app: {exc}: this app predates the metrics and logging that "
        "bench.observability takes out (app.observe, db.instrument, metrics)"
    ) from None


class PassThrough:
    """Stands in for ``app.observe.Observe``: the same constructor, the app called as it is."""

    def __init__(self, app: ASGIApp, settings: Any = None, routes: Any = None) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class NoOperation:
    """Stands in for ``app.observe.Operation``: what the GraphQL view sets and reads, no more."""

    __slots__ = ("name", "type")

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.type: str | None = None

    def done(self, code: str | None) -> None:
        """Nothing is timed, counted or recorded."""


def _install_nothing(clients: list[Any]) -> None:
    """Stands in for ``db.instrument.install_for``: Tortoise's statement methods stay as they
    are."""


def _record_nothing(*args: Any) -> None:
    """Stands in for ``metrics.record_request`` and ``metrics.record_operation``."""


# Everything patched, in one place: (module, attribute, replacement). What each removes:
PATCHES: tuple[tuple[ModuleType, str, object], ...] = (
    # The outermost middleware (create_app reads the name app.Observe when it builds the stack):
    # the request id (read, generated, bound to the log context, returned in X-Request-ID),
    # the per-request record (Observed) and SQL record (instrument.begin/end), the request
    # line (logs.emit on agora.access) and metrics.record_request.
    (app, "Observe", PassThrough),
    # The per-operation record of the GraphQL view (app.http calls observe.Operation): its
    # timer, its SQL count and metrics.record_operation.
    (observe, "Operation", NoOperation),
    # The wrapper the lifespan puts around every Tortoise statement method (a context variable
    # read and a counter per statement; a span when tracing).
    (instrument, "install_for", _install_nothing),
    # The HTTP request counter and latency histogram (only Observe calls it: belt and braces).
    (metrics, "record_request", _record_nothing),
    # The operation counter and the latency and SQL histograms, for HTTP (Operation, patched
    # above) and for websocket operations (realtime.endpoint calls it directly).
    (metrics, "record_operation", _record_nothing),
)


def missing() -> list[str]:
    """The patched names this app lacks (``module.attribute``); empty when all are there."""
    return [f"{module.__name__}.{name}" for module, name, _ in PATCHES if not hasattr(module, name)]


def check() -> None:
    """Exit with a message naming what is missing, if anything (the bench runs this first)."""
    gone = missing()
    if gone:
        raise SystemExit(
            f"quiet_app: this app has no {', '.join(gone)}: it predates (or has renamed) the "
            "observability that bench.observability takes out, so there is nothing to compare"
        )


def create_quiet_app() -> Starlette:
    """``app.create_app()`` with every patch of ``PATCHES`` applied first."""
    check()
    for module, name, replacement in PATCHES:
        setattr(module, name, replacement)
    return app.create_app()


if __name__ == "__main__":  # python -m quiet_app: is this app one the bench can measure?
    check()
