"""The bare endpoint: the same server stack (FastAPI on uvicorn) answering 200 and doing nothing else."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/bare")
async def bare(request: Request) -> JSONResponse:
    """Read the body like the webhook does, then answer."""
    await request.body()
    return JSONResponse({"status": "accepted"})
