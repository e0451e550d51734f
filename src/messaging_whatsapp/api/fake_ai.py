"""The fake AI server (assistant/fake.py) as HTTP routes, mounted at FAKE_AI_PREFIX when AI_FAKE is
set (`make run`'s demo): an OpenAI-compatible `/chat/completions` and `/embeddings` that need no
network and answer the same every time. Hidden from the API's documentation."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from messaging_whatsapp.assistant import fake
from messaging_whatsapp.assistant.service import FAKE_AI_PREFIX

router = APIRouter(prefix=FAKE_AI_PREFIX, include_in_schema=False)
MAX_BODY = 1024 * 1024


async def _body(request: Request) -> dict[str, Any] | JSONResponse:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return JSONResponse({"error": {"message": "body too large"}}, status_code=413)
    try:
        body = json.loads(raw)
    except ValueError:
        return JSONResponse({"error": {"message": "body is not JSON"}}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": {"message": "body is not a JSON object"}}, status_code=400)
    return body


@router.post("/chat/completions")
async def chat_completions(request: Request) -> Any:
    """A chat completion answering with the best source it was given (or the handoff marker)."""
    body = await _body(request)
    return body if isinstance(body, JSONResponse) else fake.chat_completion(body)


@router.post("/embeddings")
async def embeddings(request: Request) -> Any:
    """Hashed bag-of-words vectors, one per input."""
    body = await _body(request)
    return body if isinstance(body, JSONResponse) else fake.embeddings(body)
