"""Stores a batch's inbound messages: contacts, conversations, tickets and the messages themselves.

Runs inside the worker's transaction and is safe to run again for the same input: messages are
deduplicated on (instance, provider message id), and counters move only for messages really
created. Set-based statements keep a batch to a handful of round trips instead of several per
message (the seed's fetch-change-save loop).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.batch import ContactMerge, InboundApplied, InboundItem
from messaging_whatsapp.db import (
    UTCDateTime,
    ensure_rows,
    generic_plans,
    insert_rows,
    new_id,
    one_of,
    rows_table,
    utcnow,
)
from messaging_whatsapp.inbox.activity import latest, message_preview
from messaging_whatsapp.inbox.announcements import opened_event
from messaging_whatsapp.inbox.attribution import contact_first_touch, ticket_origin
from messaging_whatsapp.inbox.identity import resolve_contacts
from messaging_whatsapp.inbox.models import (
    ConversationStatus,
    Direction,
    Message,
    SenderType,
    contacts_table,
    conversations_table,
    messages_table,
)
from messaging_whatsapp.inbox.ticketing import open_ticket_ids, open_tickets
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.providers.events import STATUS_RANK, DeliveryStatus, InboundMessage

INBOUND_STATUS = "received"


async def apply_inbound(session: AsyncSession, items: list[InboundItem]) -> InboundApplied:
    """Store the batch's messages with their contacts, conversations and tickets, each once; fills in
    the items' ids and returns the ones created, with `whatsapp_inbound_received` for each."""
    merges = await _upsert_contacts(session, items)
    await _upsert_conversations(session, items)
    new_items, duplicates = await _new_messages(session, items)
    applied = InboundApplied(duplicates=duplicates, merges=merges)
    if not new_items:
        return applied
    opened: dict[str, str] = {}
    tickets = await _open_tickets(session, new_items, opened)
    created = await _insert_messages(session, new_items, tickets)
    applied.duplicates += len(new_items) - len(created)
    for item in new_items:
        if item.key in created:
            item.message_id = created[item.key]
            applied.created.append(item)
    await _bump_counters(session, applied.created)
    applied.opened = opened
    # The ticket first: a screen that learns of the message can already tell whose it is.
    tenants = {item.conversation_id: item.entry.tenant_id for item in new_items}
    applied.published = [opened_event(tenants[cid], cid, tid) for cid, tid in sorted(opened.items())]
    applied.published += [_inbound_event(item) for item in applied.created if item.from_customer]
    return applied


async def _upsert_contacts(session: AsyncSession, items: list[InboundItem]) -> list[ContactMerge]:
    """The contact of each item, created where missing (their names move with _bump_counters).

    Senders named by a BSUID or a LID go through inbox/identity.py, which ties identities to
    phones and merges contacts; the rest (most) are looked up and created by phone in bulk.
    """
    identified = [item for item in items if item.message.user_id or item.phone is None]
    merges = await resolve_contacts(session, identified) if identified else []
    plain = [item for item in items if not (item.message.user_id or item.phone is None)]
    now = utcnow()
    rows: dict[tuple[str, str | None], dict[str, Any]] = {
        (item.entry.tenant_id, item.phone): {
            "tenant_id": item.entry.tenant_id,
            "phone": item.phone,
            "opted_out": False,
            "messages_received": 0,
            "created_at": now,
            "updated_at": now,
        }
        for item in plain
    }
    ordered = [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1] or ""))]
    ids = await ensure_rows(session, contacts_table, ("tenant_id", "phone"), ordered)
    for item in plain:
        item.contact_id = ids[(item.entry.tenant_id, item.phone)]
    return merges


async def _upsert_conversations(session: AsyncSession, items: list[InboundItem]) -> None:
    now = utcnow()
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in items:
        row = rows.setdefault(
            (item.entry.tenant_id, item.contact_id, item.entry.instance_id),
            {
                "tenant_id": item.entry.tenant_id,
                "contact_id": item.contact_id,
                "instance_id": item.entry.instance_id,
                "status": ConversationStatus.OPEN.value,
                "unread_count": 0,
                # A new conversation starts at its first message (never NULL: the list sorts on it).
                "last_message_at": item.message.timestamp,
                "last_inbound_at": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        row["last_message_at"] = min(row["last_message_at"], item.message.timestamp)
    key = ("tenant_id", "contact_id", "instance_id")
    ids = await ensure_rows(session, conversations_table, key, [rows[k] for k in sorted(rows)])
    for item in items:
        item.conversation_id = ids[(item.entry.tenant_id, item.contact_id, item.entry.instance_id)]


async def _new_messages(session: AsyncSession, items: list[InboundItem]) -> tuple[list[InboundItem], int]:
    """Items whose message is not stored yet (first occurrence within the batch only), and how many
    were duplicates."""
    by_instance: dict[str, set[str]] = {}
    for item in items:
        by_instance.setdefault(item.entry.instance_id, set()).add(item.message.provider_message_id)
    existing: set[tuple[str, str]] = set()
    # One plain IN per instance: PostgreSQL plans a row-value IN of hundreds of pairs slowly.
    for instance_id, provider_ids in by_instance.items():
        rows = await session.scalars(
            select(Message.provider_message_id).where(
                Message.instance_id == instance_id, one_of(session, Message.provider_message_id, provider_ids)
            )
        )
        existing.update((instance_id, provider_id) for provider_id in rows if provider_id is not None)
    new_items: list[InboundItem] = []
    for item in items:
        if item.key in existing:
            continue
        existing.add(item.key)
        new_items.append(item)
    return new_items, len(items) - len(new_items)


async def _open_tickets(
    session: AsyncSession, items: list[InboundItem], opened: dict[str, str]
) -> dict[str, str]:
    """conversation id -> its open ticket: customers' messages open one (attributed to the ad or the
    UTM link of the first message, if any) where none is, noted in `opened`; the business phone's
    echoes join one."""
    openings: dict[str, dict[str, Any]] = {}
    echoes: set[str] = set()
    for item in items:
        if not item.from_customer:
            echoes.add(item.conversation_id)
        elif item.conversation_id not in openings:
            openings[item.conversation_id] = {
                "tenant_id": item.entry.tenant_id,
                "opened_at": item.message.timestamp,
                **ticket_origin(item.message),
            }
    tickets = await open_tickets(session, openings, utcnow(), inbound=True, opened=opened)
    # An echo (typed on the phone) opens nothing: no session starts without the customer.
    if echoes - tickets.keys():
        tickets.update(await open_ticket_ids(session, sorted(echoes - tickets.keys())))
    return tickets


async def _insert_messages(
    session: AsyncSession, items: list[InboundItem], tickets: dict[str, str]
) -> dict[tuple[str, str], str]:
    """Insert the messages; returns (instance, provider id) -> message id for those really created."""
    now = utcnow()
    rows = [_message_row(item, tickets.get(item.conversation_id), now) for item in items]
    insert, params = insert_rows(session, messages_table, rows)
    statement = insert.on_conflict_do_nothing(
        index_elements=["instance_id", "provider_message_id"]
    ).returning(messages_table.c.id, messages_table.c.instance_id, messages_table.c.provider_message_id)
    async with generic_plans(session):
        created = await session.execute(statement, params)
    return {(row.instance_id, row.provider_message_id): row.id for row in created}


def _message_row(item: InboundItem, ticket_id: str | None, now: datetime) -> dict[str, Any]:
    msg = item.message
    media = msg.media
    extra: dict[str, Any] = dict(msg.extra)
    if msg.button_payload is not None:
        extra["button_payload"] = msg.button_payload
    if msg.referral is not None:
        extra["referral"] = {k: v for k, v in asdict(msg.referral).items() if v is not None}
    return {
        "id": new_id(),
        "tenant_id": item.entry.tenant_id,
        "instance_id": item.entry.instance_id,
        "conversation_id": item.conversation_id,
        "contact_id": item.contact_id,
        "ticket_id": ticket_id,
        "direction": (Direction.OUTBOUND if msg.from_me else Direction.INBOUND).value,
        "sender_type": (SenderType.PHONE if msg.from_me else SenderType.LEAD).value,
        "type": msg.type.value,
        "content": msg.text,
        "media": {k: v for k, v in asdict(media).items() if v is not None} if media else None,
        "extra": extra or None,
        "quoted_provider_message_id": msg.quoted_message_id,
        "provider_message_id": msg.provider_message_id,
        "provider_timestamp": msg.timestamp,
        # An echo of a message typed on the phone has at least reached WhatsApp's server.
        "status": DeliveryStatus.SENT.value if msg.from_me else INBOUND_STATUS,
        "status_rank": STATUS_RANK[DeliveryStatus.SENT] if msg.from_me else 0,
        "sent_at": msg.timestamp if msg.from_me else None,
        "delivered_at": None,
        "read_at": None,
        "failed_at": None,
        "error_code": None,
        "error_title": None,
        "created_at": now,
        "updated_at": now,
    }


CONVERSATION_COUNTER_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("unread", Integer()),
    ("last_at", UTCDateTime()),
    ("inbound_at", UTCDateTime()),
    ("type", String()),
    ("direction", String()),
    ("preview", String()),
]
CONTACT_COUNTER_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("received", Integer()),
    ("last_at", UTCDateTime()),
    ("name", String()),
    ("wa_id", String()),
    ("first_source", String()),
    ("first_medium", String()),
    ("first_campaign", String()),
]


async def _bump_counters(session: AsyncSession, items: list[InboundItem]) -> None:
    """Unread and message counts, activity times and the customer's own name, one statement per
    table for the whole batch."""
    conversations: dict[str, list[Any]] = {}
    contacts: dict[str, list[Any]] = {}
    for item in items:
        msg, ts = item.message, item.message.timestamp
        conversation = conversations.setdefault(
            item.conversation_id, [item.conversation_id, 0, ts, None, None, None, None]
        )
        if ts >= conversation[2] or conversation[4] is None:
            conversation[2] = ts
            conversation[4:] = _last_message(msg)
        if msg.from_me:
            continue
        conversation[1] += 1
        conversation[3] = max(conversation[3] or ts, ts)
        # The contact's first customer message of the batch says where they came from (kept when
        # the contact already knows).
        touch = contact_first_touch(msg)
        contact = contacts.setdefault(
            item.contact_id,
            [
                item.contact_id,
                0,
                ts,
                None,
                None,
                touch["first_source"],
                touch["first_medium"],
                touch["first_campaign"],
            ],
        )
        contact[1] += 1
        contact[2] = max(contact[2], ts)
        contact[3] = msg.contact_name or contact[3]
        contact[4] = msg.phone or contact[4]
    await _update_conversation_counters(session, [conversations[key] for key in sorted(conversations)])
    if contacts:
        await _update_contact_counters(session, [contacts[key] for key in sorted(contacts)])


def _last_message(msg: InboundMessage) -> list[Any]:
    """The type, direction and preview the list shows for this message."""
    media = {"caption": msg.media.caption} if msg.media else None
    direction = Direction.OUTBOUND if msg.from_me else Direction.INBOUND
    return [msg.type.value, direction.value, message_preview(msg.text, media)]


def _later(current: Any, new: Any) -> Any:
    """The later of a stored time and a new one (activity times only move forward; NULL is no news)."""
    return case((and_(new.is_not(None), or_(current.is_(None), current < new)), new), else_=current)


async def _update_conversation_counters(session: AsyncSession, rows: list[list[Any]]) -> None:
    c = conversations_table.c
    counters = rows_table(session, "conversation_counters", CONVERSATION_COUNTER_COLUMNS, rows).c
    # Echoes of the business's own messages move the activity time only.
    await session.execute(
        update(conversations_table)
        .where(c.id == counters.id)
        .values(
            unread_count=c.unread_count + counters.unread,
            last_message_type=latest(c.last_message_type, counters.type, c.last_message_at, counters.last_at),
            last_message_direction=latest(
                c.last_message_direction, counters.direction, c.last_message_at, counters.last_at
            ),
            last_message_preview=latest(
                c.last_message_preview, counters.preview, c.last_message_at, counters.last_at
            ),
            last_message_at=_later(c.last_message_at, counters.last_at),
            last_inbound_at=_later(c.last_inbound_at, counters.inbound_at),
            status=case((counters.unread > 0, ConversationStatus.OPEN.value), else_=c.status),
            updated_at=utcnow(),
        )
    )


async def _update_contact_counters(session: AsyncSession, rows: list[list[Any]]) -> None:
    c = contacts_table.c
    counters = rows_table(session, "contact_counters", CONTACT_COUNTER_COLUMNS, rows).c
    await session.execute(
        update(contacts_table)
        .where(c.id == counters.id)
        .values(
            messages_received=c.messages_received + counters.received,
            last_interaction_at=_later(c.last_interaction_at, counters.last_at),
            # A name the team gave the person stays; else their latest WhatsApp profile name.
            name=case((c.named_by_team, c.name), else_=func.coalesce(counters.name, c.name)),
            wa_id=func.coalesce(counters.wa_id, c.wa_id),
            # The first touch is set once, with all three of its parts.
            first_medium=case((c.first_source.is_(None), counters.first_medium), else_=c.first_medium),
            first_campaign=case((c.first_source.is_(None), counters.first_campaign), else_=c.first_campaign),
            first_source=func.coalesce(c.first_source, counters.first_source),
            updated_at=utcnow(),
        )
    )


def _inbound_event(item: InboundItem) -> PublishedEvent:
    msg = item.message
    return PublishedEvent(
        type="whatsapp_inbound_received",
        tenant_id=item.entry.tenant_id,
        payload={
            "message_id": item.message_id,
            "provider_message_id": msg.provider_message_id,
            "instance_id": item.entry.instance_id,
            "conversation_id": item.conversation_id,
            "contact_id": item.contact_id,
            "from_phone": item.phone,
            "from_user_id": msg.user_id,
            "text": msg.text,
            "message_type": msg.type.value,
            "button_payload": msg.button_payload,
        },
    )
