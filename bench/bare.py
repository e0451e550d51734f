"""The bare endpoint: the same server stack as the webhook (uvicorn, a FastAPI app, a plain
Starlette route first in line) that reads the body and answers 200, doing nothing else."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def bare(request: Request) -> JSONResponse:
    """Read the body like the webhook does, then answer."""
    await request.body()
    return JSONResponse({"status": "accepted"})


app = FastAPI()
app.router.routes.insert(0, Route("/bare", bare, methods=["POST"]))
