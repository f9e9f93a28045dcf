"""/healthz (the process answers) and /readyz (the database answers, within DB_TIMEOUT_SECONDS)."""

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
