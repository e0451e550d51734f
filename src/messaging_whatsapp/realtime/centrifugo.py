"""Centrifugo (seed 003), optional: the same realtime events, also published to its channels.

Each event goes to `chat:org:{tenant_id}` and, when it concerns a conversation, to
`chat:conversation:{conversation_id}`, as `{"type", "data"}`, through Centrifugo's HTTP server API
(`POST /api/publish`, or `/api/batch` for several, with the `X-API-Key` header). Best effort: a
post runs beside the relay, never in its way, bounded by a timeout and by how many may be in
flight; a failure is logged and the event is not retried (Centrifugo clients recover through
their own history, or reload). Browsers connect to Centrifugo with a connection token (a JWT,
HS256, signed with the secret Centrifugo is configured with): `connection_token`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt
import orjson

from messaging_whatsapp.realtime.events import RealtimeEvent

logger = logging.getLogger(__name__)

# One post to Centrifugo waits at most this long.
TIMEOUT_SECONDS = 2.0
# Posts in flight at once; past this the events are dropped (logged) rather than queued.
MAX_IN_FLIGHT = 64


def channels(event: RealtimeEvent) -> list[str]:
    """The seed's channels an event goes to."""
    found = [f"chat:org:{event.tenant_id}"]
    if event.conversation_id is not None:
        found.append(f"chat:conversation:{event.conversation_id}")
    return found


def publish_commands(events: list[RealtimeEvent]) -> list[dict[str, Any]]:
    """Centrifugo's publish requests for the events, in order."""
    return [
        {"channel": channel, "data": {"type": event.type, "data": event.data}}
        for event in events
        for channel in channels(event)
    ]


class CentrifugoMirror:
    """Publishes to Centrifugo's HTTP server API."""

    def __init__(self, url: str, api_key: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"X-API-Key": api_key, "content-type": "application/json"},
            timeout=httpx.Timeout(timeout),
        )
        self.in_flight: set[asyncio.Task[None]] = set()

    def send(self, events: list[RealtimeEvent]) -> None:
        """Post the events in the background."""
        commands = publish_commands(events)
        if not commands:
            return
        if len(self.in_flight) >= MAX_IN_FLIGHT:
            logger.warning(
                "centrifugo: %d posts in flight; %d publications dropped", MAX_IN_FLIGHT, len(commands)
            )
            return
        task = asyncio.create_task(self.post(commands), name="centrifugo-publish")
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def post(self, commands: list[dict[str, Any]]) -> None:
        """One publish, or one batch of them; failures are logged, never raised."""
        if len(commands) == 1:
            path, body = "/api/publish", commands[0]
        else:
            path, body = "/api/batch", {"commands": [{"publish": command} for command in commands]}
        try:
            response = await self.client.post(path, content=orjson.dumps(body))
            response.raise_for_status()
            errors = _errors(response.json())
        except Exception as exc:
            logger.warning("centrifugo: %d publications failed: %s", len(commands), exc)
            return
        if errors:
            logger.warning(
                "centrifugo: %d of %d publications refused: %s", len(errors), len(commands), errors[0]
            )

    async def close(self) -> None:
        """Wait for the posts in flight (each bounded by the timeout), then close."""
        if self.in_flight:
            await asyncio.wait(list(self.in_flight), timeout=TIMEOUT_SECONDS * 2)
        await self.client.aclose()


def _errors(answer: Any) -> list[Any]:
    """The errors in Centrifugo's answer: `{"error"}` for one publish, per reply for a batch."""
    if not isinstance(answer, dict):
        return []
    if answer.get("error"):
        return [answer["error"]]
    replies = answer.get("replies") or []
    return [reply["error"] for reply in replies if isinstance(reply, dict) and reply.get("error")]


def connection_token(secret: str, subject: str, ttl_seconds: int) -> tuple[str, int]:
    """A Centrifugo connection JWT (HS256) for `subject`, and when it expires (Unix seconds)."""
    expires = int(time.time()) + ttl_seconds
    return jwt.encode({"sub": subject, "exp": expires}, secret, algorithm="HS256"), expires
