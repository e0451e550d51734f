"""Live-only routes beside the event stream: an agent typing, and Centrifugo's connection token."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from pydantic import BaseModel

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import Conflict
from messaging_whatsapp.inbox.visibility import Viewer, check_conversation
from messaging_whatsapp.realtime.centrifugo import connection_token
from messaging_whatsapp.realtime.events import RealtimeEvent
from messaging_whatsapp.sending.team import sender_names
from messaging_whatsapp.tenancy.deps import InboxReader, InboxWriter

router = APIRouter(prefix="/api/v1", tags=["events"])

# One `typing` per person and conversation this often at most; the rest are dropped silently.
TYPING_EVERY_SECONDS = 2.0
# Typists remembered before the stale ones are forgotten.
TYPISTS_KEPT = 10_000


class TypingLimiter:
    """Who typed where, and when it was last announced (per process)."""

    def __init__(self) -> None:
        self.announced: dict[tuple[str, str, str], float] = {}

    def allows(self, tenant_id: str, typist: str, conversation_id: str) -> bool:
        """Whether this typing may be announced now (and note it if so)."""
        moment = time.monotonic()
        key = (tenant_id, typist, conversation_id)
        if moment - self.announced.get(key, -TYPING_EVERY_SECONDS) < TYPING_EVERY_SECONDS:
            return False
        if len(self.announced) >= TYPISTS_KEPT:
            self.announced = {k: at for k, at in self.announced.items() if moment - at < TYPING_EVERY_SECONDS}
        self.announced[key] = moment
        return True


typing_limiter = TypingLimiter()


@router.post("/conversations/{conversation_id}/typing", status_code=204)
async def announce_typing(
    conversation_id: str, session: DbSession, principal: InboxWriter, context: Context
) -> Response:
    """Tell the conversation's other viewers that the caller is typing (`typing` on the event
    stream; nothing is stored). Call it while typing: at most one per 2 s is announced."""
    await check_conversation(session, principal.tenant_id, conversation_id, Viewer.of(principal))
    typist = principal.user_id or principal.api_key_id or ""
    if typing_limiter.allows(principal.tenant_id, typist, conversation_id):
        users = [principal.user_id] if principal.user_id else []
        keys = [principal.api_key_id] if principal.api_key_id and not principal.user_id else []
        names = await sender_names(session, principal.tenant_id, users, keys)
        data = {
            "conversation_id": conversation_id,
            "user_id": principal.user_id,
            "user_name": names.get(typist),
        }
        await context.realtime.publish([RealtimeEvent(principal.tenant_id, "typing", data)])
    return Response(status_code=204)


class CentrifugoToken(BaseModel):
    """A Centrifugo connection token and when it expires (Unix seconds)."""

    token: str
    expires_at: int


@router.post("/realtime/centrifugo/token")
async def centrifugo_token(principal: InboxReader, context: Context) -> CentrifugoToken:
    """A connection JWT for Centrifugo (HS256 with CENTRIFUGO_TOKEN_SECRET; `sub` the user's id,
    or the API key's); 409 centrifugo_not_configured when Centrifugo is not set up."""
    settings = context.settings
    missing = [
        name
        for name, value in (
            ("CENTRIFUGO_URL", settings.centrifugo_url),
            ("CENTRIFUGO_TOKEN_SECRET", settings.centrifugo_token_secret),
        )
        if not value
    ]
    if missing or settings.centrifugo_token_secret is None:
        raise Conflict(
            f"Centrifugo is not configured: set {', '.join(missing)}", code="centrifugo_not_configured"
        )
    subject = principal.user_id or principal.api_key_id or ""
    token, expires = connection_token(
        settings.centrifugo_token_secret.get_secret_value(), subject, settings.centrifugo_token_ttl_seconds
    )
    return CentrifugoToken(token=token, expires_at=expires)
