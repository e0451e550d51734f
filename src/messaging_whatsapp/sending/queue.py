"""The outbound queue: messages stored as queued, and offered to the senders on the outbound stream.

Both ways into the queue end here: one-to-one sends (sending/service.py, after every rule is
checked) and bulk sends (the campaign dispatcher, which applies its own rules first). A message is
offered only after the commit that stored it; one whose stream entry was lost (a crash between the
two) is offered again by the senders' sweep once REOFFER_AFTER has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import insert_new_rows, insert_rows, new_id, stored_ids
from messaging_whatsapp.inbox.activity import last_message_rows, record_last_messages
from messaging_whatsapp.inbox.models import (
    ConversationStatus,
    Direction,
    SenderType,
    SendState,
    conversations_table,
    messages_table,
)
from messaging_whatsapp.inbox.ticketing import Origin, open_tickets, record_first_touch
from messaging_whatsapp.providers.events import DeliveryStatus
from messaging_whatsapp.sending.team import origin_of

# A queued message whose stream entry was lost (a crash between commit and append) is offered to
# the senders again after this long.
REOFFER_AFTER = timedelta(minutes=5)
# The unique key of a conversation: one per person and number.
CONVERSATION_KEY = ("tenant_id", "contact_id", "instance_id")


async def offer_messages(context: EngineContext, messages: list[tuple[str, str]]) -> None:
    """Put (message id, tenant id) pairs on the outbound stream for the senders."""
    if messages:
        await context.streams.append_many(
            context.names.outbound,
            [{"message_id": message_id, "tenant_id": tenant_id} for message_id, tenant_id in messages],
        )


@dataclass(frozen=True, slots=True)
class BulkMessage:
    """One message of a bulk send (a campaign), already checked by its caller."""

    contact_id: str
    instance_id: str
    text: str
    media: dict[str, Any] | None = None
    # "typing..." shows before it goes (on the gateways that can show it).
    typing: bool = False
    # An approved template {"name", "language", "parameters"} instead of the text (then its name).
    template: dict[str, Any] | None = None


async def store_queued_messages(
    session: AsyncSession,
    tenant_id: str,
    items: list[BulkMessage],
    *,
    sender_type: SenderType,
    now: datetime,
    origin: Origin | None = None,
) -> list[str]:
    """Store many messages as queued, set-based; returns their ids in the order given.

    Each joins its conversation's open ticket or opens one attributed to `origin` (a campaign),
    which is also the first touch of the people who had none. The caller has applied the rules
    (opt-out, a number that can send); the caller commits, then offers the ids to the senders. The
    inserts' foreign-key checks are primary-key lookups: the caller may let their plans be reused
    (db.generic_plans).
    """
    if not items:
        return []
    pairs = sorted({(item.contact_id, item.instance_id) for item in items})
    keys = [(tenant_id, *pair) for pair in pairs]
    stored = conversations_by_pair(await stored_ids(session, conversations_table, CONVERSATION_KEY, keys))
    new_rows = [new_conversation(tenant_id, *pair, now) for pair in pairs if pair not in stored]
    created = await insert_new_rows(session, conversations_table, CONVERSATION_KEY, new_rows)
    conversations = {**stored, **conversations_by_pair(created)}
    origin = origin or origin_of(sender_type)
    opening = {"tenant_id": tenant_id, **origin.ticket_columns()}
    tickets = await open_tickets(session, {cid: opening for cid in conversations.values()}, now)
    await record_first_touch(session, tenant_id, {contact_id for contact_id, _ in pairs}, origin, now)
    rows: list[dict[str, Any]] = []
    ids: list[str] = []
    for item in items:
        ids.append(new_id())
        media_type = item.media.get("type") if item.media else None
        extra: dict[str, Any] = {"typing": True} if item.typing else {}
        if item.template is not None:
            media_type, extra["template"] = "template", item.template
        rows.append(
            {
                "id": ids[-1],
                "tenant_id": tenant_id,
                "instance_id": item.instance_id,
                "conversation_id": conversations[(item.contact_id, item.instance_id)],
                "contact_id": item.contact_id,
                "ticket_id": tickets[conversations[(item.contact_id, item.instance_id)]],
                "direction": Direction.OUTBOUND.value,
                "sender_type": sender_type.value,
                "type": media_type or "text",
                "content": item.text,
                "media": {**item.media, "caption": item.text} if item.media else None,
                "extra": extra or None,
                "status": DeliveryStatus.QUEUED.value,
                "status_rank": 0,
                "send_state": SendState.PENDING.value,
                "send_attempts": 0,
                "next_attempt_at": now + REOFFER_AFTER,
                "created_at": now,
                "updated_at": now,
            }
        )
    statement, params = insert_rows(session, messages_table, rows)
    await session.execute(statement, params)
    await record_last_messages(session, last_message_rows(rows, now), now)
    return ids


def conversations_by_pair(ids: dict[tuple[Any, ...], str]) -> dict[tuple[str, str], str]:
    """Conversation ids by (contact, instance), from ids by their unique key (tenant, contact, instance)."""
    return {(contact_id, instance_id): found for (_, contact_id, instance_id), found in ids.items()}


def new_conversation(tenant_id: str, contact_id: str, instance_id: str, now: datetime) -> dict[str, Any]:
    """A conversation opened by a message we send now."""
    return {
        "tenant_id": tenant_id,
        "contact_id": contact_id,
        "instance_id": instance_id,
        "status": ConversationStatus.OPEN.value,
        "unread_count": 0,
        "last_message_at": now,
        "created_at": now,
        "updated_at": now,
    }
