"""The simulator's REST API (what providers/simulator_api.py calls), mounted on the engine."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from messaging_whatsapp.simulator.service import Simulator, SimulatorRefused

router = APIRouter(prefix="/simulator/v1", tags=["simulator"], include_in_schema=False)


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@router.post("/{instance_name}/messages")
async def send(instance_name: str, request: Request) -> JSONResponse:
    """Take one message as a provider would: an id now, receipts later through the webhook."""
    simulator: Simulator = request.app.state.simulator
    try:
        body: Any = await request.json()
    except ValueError:
        return _refusal(400, "malformed_json", "the body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("to"), str):
        return _refusal(422, "invalid_body", "the body must be an object with 'to'")
    callback = body.get("message_id")
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    try:
        sent = await simulator.accept(
            instance_name, token, body["to"], callback if isinstance(callback, str) else None
        )
    except SimulatorRefused as refused:
        return _refusal(refused.status, refused.code, refused.message)
    return JSONResponse({"id": sent.provider_message_id, "to": sent.to})
