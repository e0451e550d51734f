"""The team's side of a one-to-one send: who sent it, and the ticket it joins.

A message records the user who sent it (`sender_user_id`, and their e-mail as `sender_name`, kept
when the user is deleted); an API key's message has no user and records the key's name ("API key
<name>"); the CLI's sends record neither. Each message joins its conversation's open ticket, and
the first message of a session opens one (inbox/ticketing.py says with which origin).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import one_of
from messaging_whatsapp.inbox.models import SenderType
from messaging_whatsapp.inbox.ticketing import OUTBOUND_ORIGINS, Origin, open_tickets
from messaging_whatsapp.tenancy.models import ApiKey, User

API_KEY_SENDER = "API key {name}"


def origin_of(sender_type: SenderType) -> Origin:
    """Where a session (and a person's first touch) a one-to-one message starts comes from."""
    return OUTBOUND_ORIGINS.get(sender_type.value, OUTBOUND_ORIGINS[SenderType.USER.value])


async def sender_names(
    session: AsyncSession, tenant_id: str, user_ids: Collection[str], api_key_ids: Collection[str]
) -> dict[str, str]:
    """user or API key id -> the name its messages record (the user's e-mail, the key's name)."""
    names: dict[str, str] = {}
    if user_ids:
        users = select(User.id, User.email).where(
            User.tenant_id == tenant_id, one_of(session, User.id, user_ids)
        )
        names.update({row.id: row.email for row in await session.execute(users)})
    if api_key_ids:
        keys = select(ApiKey.id, ApiKey.name).where(
            ApiKey.tenant_id == tenant_id, one_of(session, ApiKey.id, api_key_ids)
        )
        names.update({row.id: API_KEY_SENDER.format(name=row.name) for row in await session.execute(keys)})
    return names


async def session_tickets(
    session: AsyncSession,
    tenant_id: str,
    starters: Mapping[str, SenderType],
    now: datetime,
    opened: dict[str, str] | None = None,
) -> dict[str, str]:
    """conversation id -> the open ticket its messages join; `starters` says who sends the first
    message of each conversation, which attributes a ticket it opens (noted in `opened`)."""
    openings: dict[str, dict[str, Any]] = {
        conversation_id: {"tenant_id": tenant_id, **origin_of(sender_type).ticket_columns()}
        for conversation_id, sender_type in starters.items()
    }
    return await open_tickets(session, openings, now, opened=opened)
