"""/healthz (the process answers) and /readyz (the database answers, within DB_TIMEOUT_SECONDS,
Redis too when configured, and the server isn't shutting down)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from db.health import within
from db.sql import fetch_dicts
from logs import get_logger, truncate
from realtime.brokers import RedisBroker

logger = get_logger("agora")


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Readiness: the database answers, and Redis does when it is configured; from a graceful
    shutdown's first signal on, 503 with ``"draining": true`` whatever they say (load balancers
    take the instance out while it still serves)."""
    body: dict[str, str | bool] = {}
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
    if request.app.state.lifecycle.draining:
        body["draining"] = True
        ready = False
    return JSONResponse(body, status_code=200 if ready else 503)
