"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.ops.service import stale_streams
from messaging_whatsapp.streams.base import StreamError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database and the stream backend answer, and no stream the workers consume has an entry
    waiting longer than READY_MAX_PENDING_AGE_SECONDS; 503 naming what is wrong."""
    context: EngineContext = request.app.state.context
    checks: dict[str, str] = {}
    try:
        async with context.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    checks["streams"] = "ok" if await context.streams.ping() else "unavailable"
    if checks["streams"] == "ok":
        checks.update(await _pending_ages(context))
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not_ready", "checks": checks}
    if not ready:
        body["error"] = {"code": "not_ready", "message": "; ".join(f"{k}: {v}" for k, v in checks.items())}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _pending_ages(context: EngineContext) -> dict[str, str]:
    """A check per stream whose oldest unacknowledged entry is older than
    READY_MAX_PENDING_AGE_SECONDS, naming it: its consumers stopped or cannot keep up."""
    try:
        stale = await stale_streams(context)
    except StreamError as exc:
        return {"streams": f"unavailable: {exc}"}
    limit = context.settings.ready_max_pending_age_seconds
    return {
        f"stream {item.name}": (
            f"oldest pending entry {item.oldest_pending_age_seconds or 0:.0f} s old (over {limit:g} s)"
        )
        for item in stale
    }


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."}},
)
async def metrics() -> Response:
    """Prometheus exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
