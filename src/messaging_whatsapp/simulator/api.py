"""The simulator's REST API (what providers/simulator_api.py calls), mounted on the engine.

A plain Starlette route placed ahead of the API's routers, like the webhooks: it stands in for a
provider that answers thousands of sends a second, and needs neither dependency injection nor
request models. It is not part of the engine's OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from messaging_whatsapp.simulator.service import Simulator, SimulatorRefused


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _refusal(status: int, code: str, message: str) -> Response:
    return _json(status, {"error": {"code": code, "message": message}})


async def send(request: Request) -> Response:
    """Take one message as a provider would: an id now, receipts later through the webhook."""
    simulator: Simulator = request.app.state.simulator
    try:
        body: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _refusal(400, "malformed_json", "the body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("to"), str):
        return _refusal(422, "invalid_body", "the body must be an object with 'to'")
    callback = body.get("message_id")
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    try:
        sent = await simulator.accept(
            request.path_params["instance_name"],
            token,
            body["to"],
            callback if isinstance(callback, str) else None,
        )
    except SimulatorRefused as refused:
        return _refusal(refused.status, refused.code, refused.message)
    return _json(200, {"id": sent.provider_message_id, "to": sent.to})


routes: list[BaseRoute] = [Route("/simulator/v1/{instance_name}/messages", send, methods=["POST"])]
