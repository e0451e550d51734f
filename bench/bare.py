"""The bare endpoint: the same server stack as the webhook (uvicorn, a FastAPI app configured like
the engine's, a plain Starlette route first in line) that reads the body and answers 200, doing
nothing else."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from messaging_whatsapp.api.app import NO_TELEMETRY


async def bare(request: Request) -> JSONResponse:
    """Read the body like the webhook does, then answer."""
    await request.body()
    return JSONResponse({"status": "accepted"})


app = FastAPI(telemetry=NO_TELEMETRY)
app.router.routes.insert(0, Route("/bare", bare, methods=["POST"]))
