"""Applies normalised provider events to the inbox, a batch at a time, idempotently.

Everything here runs inside the caller's transaction and is safe to run again for the same input:
messages are deduplicated on (instance, provider message id), receipts only ever raise a status,
counters move only for rows that were really created or changed, and each stream entry's key is
recorded so a redelivered entry is skipped whole. Set-based statements keep a batch to a handful
of round trips instead of several per event (the seed's fetch-change-save loop).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.automation.optout import optout_keyword, optout_payload_keyword
from messaging_whatsapp.automation.service import OptOutCandidate, apply_optouts
from messaging_whatsapp.campaigns.progress import (
    follow_messages,
    pause_for_disconnection,
    record_replies,
    resume_after_reconnection,
)
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
from messaging_whatsapp.inbox.models import (
    OPEN_TICKET_PREDICATE,
    ConversationStatus,
    Direction,
    Message,
    SenderType,
    SendState,
    Ticket,
    TicketStatus,
    contacts_table,
    conversations_table,
    messages_table,
    orphans_table,
    tickets_table,
)
from messaging_whatsapp.instances.health import Outcomes, record_outcomes
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.phones import canonical_phone
from messaging_whatsapp.providers.base import (
    STATUS_RANK,
    ConnectionState,
    ConnectionUpdate,
    DeliveryStatus,
    Ignored,
    InboundMessage,
    NormalisedEvent,
    StatusError,
    StatusUpdate,
)
from messaging_whatsapp.worker.models import ProcessedEvent
from messaging_whatsapp.worker.outbox import OutboxRecord, PublishedEvent, write_outbox

INBOUND_STATUS = "received"
DELIVERED_RANK = STATUS_RANK[DeliveryStatus.DELIVERED]
READ_RANK = STATUS_RANK[DeliveryStatus.READ]
UNSETTLED_SEND_STATES = (SendState.CLAIMED.value, SendState.UNKNOWN.value)


@dataclass(frozen=True, slots=True)
class IngestEntry:
    """One stream entry's events, with the instance it was verified for."""

    key: str
    tenant_id: str
    instance_id: str
    received_at: datetime
    events: list[NormalisedEvent]


@dataclass
class IngestResult:
    """What a batch did, for metrics and for the relay of published events."""

    entries_applied: int = 0
    entries_already_processed: int = 0
    messages_created: int = 0
    messages_duplicate: int = 0
    receipts_applied: int = 0
    receipts_without_effect: int = 0
    connection_changes: int = 0
    opt_outs: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    outbox: list[OutboxRecord] = field(default_factory=list)
    # Stages newly reached per instance, for its health.
    health: dict[str, Outcomes] = field(default_factory=dict)
    orphan_receipts: int = 0


@dataclass
class _Inbound:
    entry: IngestEntry
    message: InboundMessage
    phone: str
    contact_id: str = ""
    conversation_id: str = ""


@dataclass
class _Receipt:
    """Every receipt of one message in the batch folded into one change (order-independent)."""

    tenant_id: str
    instance_id: str
    provider_message_id: str
    rank: int = -1
    status: DeliveryStatus = DeliveryStatus.QUEUED
    stage_times: dict[str, datetime] = field(default_factory=dict)
    error: StatusError | None = None
    # Our message id, where the provider echoes it (Meta callback data, Twilio callback URL).
    callback_data: str | None = None


async def apply_entries(
    session: AsyncSession, entries: list[IngestEntry], events_stream: str
) -> IngestResult:
    """Apply the entries' events in the session's transaction; the caller commits."""
    result = IngestResult()
    fresh = await _claim_unprocessed(session, entries)
    result.entries_already_processed = len(entries) - len(fresh)
    if not fresh:
        return result
    inbound, receipts, connections = _split(fresh, result)
    published: list[PublishedEvent] = []
    if inbound:
        published += await _apply_inbound(session, inbound, result)
    if receipts:
        published += await _apply_receipts(session, list(receipts.values()), result)
    if connections:
        await _apply_connections(session, connections, result)
    result.outbox = await write_outbox(session, published, events_stream)
    # Last: every batch of a number's receipts updates its one row, so hold that lock briefly.
    await record_outcomes(session, result.health, utcnow())
    result.entries_applied = len(fresh)
    return result


async def _claim_unprocessed(session: AsyncSession, entries: list[IngestEntry]) -> list[IngestEntry]:
    """Record the entries' keys as processed and return those recorded now (the others were
    applied before; a concurrent batch holding a key makes this one wait for its outcome)."""
    now = utcnow()
    unique = {entry.key: entry for entry in entries}
    rows = [{"key": key, "created_at": now} for key in unique]
    insert, params = insert_rows(session, ProcessedEvent.__table__, rows)  # type: ignore[arg-type]
    statement = insert.on_conflict_do_nothing(index_elements=["key"]).returning(ProcessedEvent.key)
    recorded = set((await session.scalars(statement, params)).all())
    return [entry for key, entry in unique.items() if key in recorded]


def _split(
    entries: list[IngestEntry], result: IngestResult
) -> tuple[list[_Inbound], dict[tuple[str, str], _Receipt], dict[str, tuple[IngestEntry, ConnectionUpdate]]]:
    inbound: list[_Inbound] = []
    receipts: dict[tuple[str, str], _Receipt] = {}
    connections: dict[str, tuple[IngestEntry, ConnectionUpdate]] = {}
    for entry in entries:
        for event in entry.events:
            if isinstance(event, InboundMessage):
                inbound.append(_Inbound(entry, event, canonical_phone(event.phone)))
            elif isinstance(event, StatusUpdate):
                key = (entry.instance_id, event.provider_message_id)
                receipt = receipts.setdefault(
                    key, _Receipt(entry.tenant_id, entry.instance_id, event.provider_message_id)
                )
                _fold_receipt(receipt, event)
            elif isinstance(event, ConnectionUpdate):
                # The last change in stream order wins.
                connections[entry.instance_id] = (entry, event)
            elif isinstance(event, Ignored):
                result.ignored[event.reason.value] += 1
    return inbound, receipts, connections


def _fold_receipt(receipt: _Receipt, update: StatusUpdate) -> None:
    stage = update.status.value
    if stage != DeliveryStatus.QUEUED.value:
        previous = receipt.stage_times.get(stage)
        receipt.stage_times[stage] = min(previous, update.timestamp) if previous else update.timestamp
    rank = STATUS_RANK[update.status]
    if rank > receipt.rank:
        receipt.rank = rank
        receipt.status = update.status
    if update.status is DeliveryStatus.FAILED and receipt.error is None:
        receipt.error = update.error or StatusError(code="unknown", title="failed")
    if receipt.callback_data is None:
        receipt.callback_data = update.callback_data


# ---------------------------------------------------------------------------------------------------
# Inbound messages


async def _apply_inbound(
    session: AsyncSession, items: list[_Inbound], result: IngestResult
) -> list[PublishedEvent]:
    await _upsert_contacts(session, items)
    await _upsert_conversations(session, items)
    new_items = await _new_messages(session, items, result)
    if not new_items:
        return []
    tickets = await _open_tickets(session, [i for i in new_items if not i.message.from_me])
    created = await _insert_messages(session, new_items, tickets)
    result.messages_duplicate += len(new_items) - len(created)
    result.messages_created += len(created)
    created_items = [item for item in new_items if _message_key(item) in created]
    await _bump_counters(session, created_items)
    published = [
        _inbound_event(item, created[_message_key(item)])
        for item in created_items
        if not item.message.from_me
    ]
    published += await _apply_optout_keywords(session, created_items, result)
    # Seed 000: a reply is engagement with the campaigns that reached the person.
    await record_replies(
        session, sorted({item.contact_id for item in created_items if not item.message.from_me}), utcnow()
    )
    return published


def _message_key(item: _Inbound) -> tuple[str, str]:
    return item.entry.instance_id, item.message.provider_message_id


async def _upsert_contacts(session: AsyncSession, items: list[_Inbound]) -> None:
    """The contact of each item, created where missing (their names move with _bump_counters)."""
    now = utcnow()
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        msg = item.message
        row = rows.setdefault(
            (item.entry.tenant_id, item.phone),
            {
                "tenant_id": item.entry.tenant_id,
                "phone": item.phone,
                "wa_id": None,
                "user_id": None,
                "name": None,
                "first_source": None,
                "first_campaign": None,
                "first_medium": None,
                "opted_out": False,
                "opted_out_at": None,
                "last_interaction_at": None,
                "messages_received": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        if msg.from_me:
            continue
        # Only the customer's own messages say who they are; an echo carries the business's name.
        row["name"] = msg.contact_name or row["name"]
        row["wa_id"] = msg.phone
        row["user_id"] = msg.user_id or row["user_id"]
        if row["first_source"] is None:
            row.update(_attribution(msg))
    ordered = sorted(rows.values(), key=lambda r: (r["tenant_id"], r["phone"]))
    ids = await ensure_rows(session, contacts_table, ("tenant_id", "phone"), ordered)
    for item in items:
        item.contact_id = ids[(item.entry.tenant_id, item.phone)]


def _attribution(message: InboundMessage) -> dict[str, str | None]:
    referral = message.referral
    if referral is None:
        return {"first_source": "whatsapp", "first_medium": "organic", "first_campaign": None}
    return {
        "first_source": "ctwa",
        "first_medium": referral.source_type or "ad",
        "first_campaign": referral.headline or referral.source_id,
    }


async def _upsert_conversations(session: AsyncSession, items: list[_Inbound]) -> None:
    now = utcnow()
    rows = {
        (item.entry.tenant_id, item.contact_id, item.entry.instance_id): {
            "tenant_id": item.entry.tenant_id,
            "contact_id": item.contact_id,
            "instance_id": item.entry.instance_id,
            "status": ConversationStatus.OPEN.value,
            "unread_count": 0,
            "last_message_at": None,
            "last_inbound_at": None,
            "created_at": now,
            "updated_at": now,
        }
        for item in items
    }
    key = ("tenant_id", "contact_id", "instance_id")
    ids = await ensure_rows(session, conversations_table, key, [rows[k] for k in sorted(rows)])
    for item in items:
        item.conversation_id = ids[(item.entry.tenant_id, item.contact_id, item.entry.instance_id)]


async def _new_messages(session: AsyncSession, items: list[_Inbound], result: IngestResult) -> list[_Inbound]:
    """Items whose message is not stored yet (first occurrence within the batch only)."""
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
    new_items: list[_Inbound] = []
    for item in items:
        key = _message_key(item)
        if key in existing:
            result.messages_duplicate += 1
            continue
        existing.add(key)
        new_items.append(item)
    return new_items


async def _open_tickets(session: AsyncSession, items: list[_Inbound]) -> dict[str, str]:
    """conversation id -> its open ticket, opening one (attributed to the ad, if any) where none is."""
    if not items:
        return {}
    conversation_ids = sorted({item.conversation_id for item in items})
    tickets = await _select_open_tickets(session, conversation_ids)
    missing = [cid for cid in conversation_ids if cid not in tickets]
    if not missing:
        return tickets
    first_by_conversation: dict[str, _Inbound] = {}
    for item in items:
        first_by_conversation.setdefault(item.conversation_id, item)
    now = utcnow()
    rows = [_ticket_row(first_by_conversation[cid], now) for cid in missing]
    insert, params = insert_rows(session, tickets_table, rows)
    # The predicate must be literal SQL: PostgreSQL cannot match a bound parameter to the
    # partial index "one open ticket per conversation".
    statement = insert.on_conflict_do_nothing(
        index_elements=["conversation_id"], index_where=text(OPEN_TICKET_PREDICATE)
    )
    async with generic_plans(session):
        await session.execute(statement, params)
    tickets.update(await _select_open_tickets(session, missing))
    return tickets


async def _select_open_tickets(session: AsyncSession, conversation_ids: list[str]) -> dict[str, str]:
    rows = await session.execute(
        select(Ticket.conversation_id, Ticket.id).where(
            one_of(session, Ticket.conversation_id, conversation_ids),
            Ticket.status == TicketStatus.OPEN.value,
        )
    )
    return {row.conversation_id: row.id for row in rows}


def _ticket_row(item: _Inbound, now: datetime) -> dict[str, Any]:
    referral = item.message.referral
    return {
        "id": new_id(),
        "tenant_id": item.entry.tenant_id,
        "conversation_id": item.conversation_id,
        "status": TicketStatus.OPEN.value,
        "source": "ctwa" if referral else "whatsapp",
        "medium": (referral.source_type or "ad") if referral else "organic",
        "campaign": (referral.headline or referral.source_id) if referral else None,
        "ad_id": referral.source_id if referral else None,
        "click_id": referral.click_id if referral else None,
        "opened_at": item.message.timestamp,
        "closed_at": None,
        "close_reason": None,
        "created_at": now,
        "updated_at": now,
    }


async def _insert_messages(
    session: AsyncSession, items: list[_Inbound], tickets: dict[str, str]
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


def _message_row(item: _Inbound, ticket_id: str | None, now: datetime) -> dict[str, Any]:
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
        "ticket_id": None if msg.from_me else ticket_id,
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
]
CONTACT_COUNTER_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("received", Integer()),
    ("last_at", UTCDateTime()),
    ("name", String()),
    ("wa_id", String()),
    ("user_id", String()),
]


async def _bump_counters(session: AsyncSession, items: list[_Inbound]) -> None:
    """Unread and message counts, activity times and the customer's own name, one statement per
    table for the whole batch."""
    conversations: dict[str, list[Any]] = {}
    contacts: dict[str, list[Any]] = {}
    for item in items:
        msg, ts = item.message, item.message.timestamp
        conversation = conversations.setdefault(item.conversation_id, [item.conversation_id, 0, ts, None])
        conversation[2] = max(conversation[2], ts)
        if msg.from_me:
            continue
        conversation[1] += 1
        conversation[3] = max(conversation[3] or ts, ts)
        contact = contacts.setdefault(item.contact_id, [item.contact_id, 0, ts, None, None, None])
        contact[1] += 1
        contact[2] = max(contact[2], ts)
        contact[3] = msg.contact_name or contact[3]
        contact[4] = msg.phone
        contact[5] = msg.user_id or contact[5]
    await _update_conversation_counters(session, [conversations[key] for key in sorted(conversations)])
    if contacts:
        await _update_contact_counters(session, [contacts[key] for key in sorted(contacts)])


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
            name=func.coalesce(counters.name, c.name),
            wa_id=func.coalesce(counters.wa_id, c.wa_id),
            user_id=func.coalesce(counters.user_id, c.user_id),
            updated_at=utcnow(),
        )
    )


def _inbound_event(item: _Inbound, message_id: str) -> PublishedEvent:
    msg = item.message
    return PublishedEvent(
        type="whatsapp_inbound_received",
        tenant_id=item.entry.tenant_id,
        payload={
            "message_id": message_id,
            "provider_message_id": msg.provider_message_id,
            "instance_id": item.entry.instance_id,
            "conversation_id": item.conversation_id,
            "contact_id": item.contact_id,
            "from_phone": item.phone,
            "text": msg.text,
            "message_type": msg.type.value,
            "button_payload": msg.button_payload,
        },
    )


async def _apply_optout_keywords(
    session: AsyncSession, items: list[_Inbound], result: IngestResult
) -> list[PublishedEvent]:
    candidates = []
    for item in items:
        if item.message.from_me:
            continue
        keyword = optout_keyword(item.message.text) or optout_payload_keyword(item.message.button_payload)
        if keyword is None:
            continue
        candidates.append(
            OptOutCandidate(
                tenant_id=item.entry.tenant_id,
                contact_id=item.contact_id,
                phone=item.phone,
                instance_id=item.entry.instance_id,
                keyword=keyword,
                text=item.message.text or item.message.button_payload,
                provider_message_id=item.message.provider_message_id,
                at=item.message.timestamp,
            )
        )
    if not candidates:
        return []
    opted_out = await apply_optouts(session, candidates)
    result.opt_outs += len(opted_out)
    return optout_events(opted_out)


def optout_events(opted_out: list[OptOutCandidate]) -> list[PublishedEvent]:
    """`whatsapp_customer_opted_out` for each person who newly opted out."""
    return [
        PublishedEvent(
            type="whatsapp_customer_opted_out",
            tenant_id=candidate.tenant_id,
            payload={
                "phone": candidate.phone,
                "contact_id": candidate.contact_id,
                "instance_id": candidate.instance_id,
                "reason": candidate.reason,
                "keyword": candidate.keyword,
            },
        )
        for candidate in opted_out
    ]


# ---------------------------------------------------------------------------------------------------
# Status receipts


async def _apply_receipts(
    session: AsyncSession, receipts: list[_Receipt], result: IngestResult
) -> list[PublishedEvent]:
    """Raise statuses and backfill stage times with set-based statements per chunk.

    A receipt that matches no message yet is kept as an orphan: the sender may not have stored
    the provider id it answered with (receipts can overtake that commit).
    """
    effective = sorted(
        (r for r in receipts if r.rank > 0), key=lambda r: (r.instance_id, r.provider_message_id)
    )
    result.receipts_without_effect += len(receipts) - len(effective)
    await _adopt_provider_ids(session, [r for r in effective if r.callback_data])
    by_key = {(r.instance_id, r.provider_message_id): r for r in effective}
    published: list[PublishedEvent] = []
    moved: list[str] = []
    for start in range(0, len(effective), RECEIPT_CHUNK):
        chunk = effective[start : start + RECEIPT_CHUNK]
        receipts_cte = _receipts_cte(session, chunk)
        raised = (await session.execute(_raise_statement(receipts_cte))).all()
        await session.execute(_backfill_statement(receipts_cte))
        result.receipts_applied += len(raised)
        result.receipts_without_effect += len(chunk) - len(raised)
        for row in raised:
            moved.append(row.id)
            receipt = by_key[(row.instance_id, row.provider_message_id)]
            published += _receipt_events(receipt, row)
            _count_stages(result.health.setdefault(receipt.instance_id, Outcomes()), receipt, row)
        if len(raised) < len(chunk):
            result.orphan_receipts += await _keep_orphans(session, receipts_cte, by_key)
    # Seed 000: receipts move campaign contacts and their campaigns' counters too.
    await follow_messages(session, moved, utcnow())
    return published


def _count_stages(outcomes: Outcomes, receipt: _Receipt, row: Any) -> None:
    """Each stage counts once per message, however the receipts were ordered or batched."""
    if receipt.status is DeliveryStatus.FAILED:
        outcomes.failed += 1
        return
    if row.previous_status_rank < DELIVERED_RANK <= receipt.rank:
        outcomes.delivered += 1
    if row.previous_status_rank < READ_RANK <= receipt.rank:
        outcomes.read += 1


async def _adopt_provider_ids(session: AsyncSession, receipts: list[_Receipt]) -> None:
    """Give our messages the provider id their receipts name, when the send's answer never came."""
    if not receipts:
        return
    m = messages_table.c
    taken = (
        select(messages_table.c.id)
        .where(m.instance_id == bindparam("b_instance"), m.provider_message_id == bindparam("b_provider_id"))
        .exists()
    )
    await session.execute(
        update(messages_table)
        .where(
            m.id == bindparam("b_id"),
            m.instance_id == bindparam("b_instance"),
            m.provider_message_id.is_(None),
            ~taken,
        )
        .values(provider_message_id=bindparam("b_provider_id"))
        .execution_options(synchronize_session=False),
        [
            {"b_id": r.callback_data, "b_instance": r.instance_id, "b_provider_id": r.provider_message_id}
            for r in receipts
        ],
    )


async def _keep_orphans(
    session: AsyncSession, receipts_cte: Any, by_key: dict[tuple[str, str], _Receipt]
) -> int:
    m, r = messages_table.c, receipts_cte.c
    known = select(m.id).where(m.instance_id == r.instance_id, m.provider_message_id == r.provider_message_id)
    missing = (
        await session.execute(select(r.instance_id, r.provider_message_id).where(r.rank > 0, ~known.exists()))
    ).all()
    now = utcnow()
    rows = []
    for instance_id, provider_message_id in missing:
        receipt = by_key[(instance_id, provider_message_id)]
        for stage, at in receipt.stage_times.items():
            failed = stage == DeliveryStatus.FAILED.value and receipt.error is not None
            rows.append(
                {
                    "tenant_id": receipt.tenant_id,
                    "instance_id": instance_id,
                    "provider_message_id": provider_message_id,
                    "status": stage,
                    "occurred_at": at,
                    "error_code": receipt.error.code if failed and receipt.error else None,
                    "error_title": receipt.error.title if failed and receipt.error else None,
                    "created_at": now,
                }
            )
    if rows:
        insert, params = insert_rows(session, orphans_table, rows)
        await session.execute(insert, params)
    return len(missing)


async def apply_orphan_receipts(session: AsyncSession, keys: list[tuple[str, str]]) -> list[PublishedEvent]:
    """Apply the receipts that arrived before these (instance, provider id) were stored; forget them."""
    if not keys:
        return []
    o = orphans_table.c
    instance_ids = sorted({instance_id for instance_id, _ in keys})
    provider_ids = sorted({provider_id for _, provider_id in keys})
    rows = (
        await session.execute(
            select(orphans_table).where(
                one_of(session, o.instance_id, instance_ids),
                one_of(session, o.provider_message_id, provider_ids),
            )
        )
    ).all()
    wanted = set(keys)
    rows = [row for row in rows if (row.instance_id, row.provider_message_id) in wanted]
    if not rows:
        return []
    receipts: dict[tuple[str, str], _Receipt] = {}
    for row in rows:
        key = (row.instance_id, row.provider_message_id)
        receipt = receipts.setdefault(key, _Receipt(row.tenant_id, row.instance_id, row.provider_message_id))
        error = StatusError(row.error_code, row.error_title or "") if row.error_code else None
        _fold_receipt(
            receipt,
            StatusUpdate(row.provider_message_id, DeliveryStatus(row.status), row.occurred_at, error=error),
        )
    result = IngestResult()
    published = await _apply_receipts(session, list(receipts.values()), result)
    await record_outcomes(session, result.health, utcnow())
    await session.execute(delete(orphans_table).where(one_of(session, o.id, [row.id for row in rows])))
    return published


# SQLite caps a statement's variables (32766 by default): 400 receipts x 10 columns stays well under.
RECEIPT_CHUNK = 400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# First row of every receipts table: matches no message (rank 0 raises nothing, no instance has
# an empty id), but gives every column a type, so PostgreSQL never reads an all-NULL column as text.
_TYPE_ANCHOR = ("", "", 0, DeliveryStatus.QUEUED.value, _EPOCH, _EPOCH, _EPOCH, _EPOCH, "", "")


RECEIPT_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("instance_id", String()),
    ("provider_message_id", String()),
    ("rank", Integer()),
    ("status", String()),
    ("sent_at", UTCDateTime()),
    ("delivered_at", UTCDateTime()),
    ("read_at", UTCDateTime()),
    ("failed_at", UTCDateTime()),
    ("error_code", String()),
    ("error_title", String()),
]


def _receipts_cte(session: AsyncSession, receipts: list[_Receipt]) -> Any:
    """The receipts as a table: one row per message with its folded status and stage times."""
    rows: list[tuple[Any, ...]] = [_TYPE_ANCHOR]
    for receipt in receipts:
        times = _implied_stage_times(receipt)
        error = receipt.error
        rows.append(
            (
                receipt.instance_id,
                receipt.provider_message_id,
                receipt.rank,
                receipt.status.value,
                times.get(DeliveryStatus.SENT.value),
                times.get(DeliveryStatus.DELIVERED.value),
                times.get(DeliveryStatus.READ.value),
                times.get(DeliveryStatus.FAILED.value),
                error.code if error and receipt.status is DeliveryStatus.FAILED else None,
                error.title if error and receipt.status is DeliveryStatus.FAILED else None,
            )
        )
    return rows_table(session, "receipts", RECEIPT_COLUMNS, rows)


def _earliest(current: Any, new: Any) -> Any:
    """The earlier of a stored stage time and a receipt's (a time never moves later)."""
    return case((and_(new.is_not(None), or_(current.is_(None), current > new)), new), else_=current)


def _raise_statement(receipts: Any) -> Any:
    """One conditional UPDATE: only rows whose rank the receipt raises change (never downgrade)."""
    m, r = messages_table.c, receipts.c
    proven = r.rank >= DELIVERED_RANK  # delivery proven: an earlier failure report was wrong
    return (
        update(messages_table)
        .where(
            m.instance_id == r.instance_id,
            m.provider_message_id == r.provider_message_id,
            m.status_rank < r.rank,
        )
        .values(
            status=r.status,
            status_rank=r.rank,
            # SET expressions see the old row: this records the rank we raised from.
            previous_status_rank=m.status_rank,
            sent_at=_earliest(m.sent_at, r.sent_at),
            delivered_at=_earliest(m.delivered_at, r.delivered_at),
            read_at=_earliest(m.read_at, r.read_at),
            failed_at=case((proven, null()), else_=_earliest(m.failed_at, r.failed_at)),
            error_code=case((proven, null()), else_=func.coalesce(r.error_code, m.error_code)),
            error_title=case((proven, null()), else_=func.coalesce(r.error_title, m.error_title)),
            # A receipt settles a send whose outcome the sender could not know.
            send_state=case(
                (m.send_state.in_(UNSETTLED_SEND_STATES), SendState.DONE.value), else_=m.send_state
            ),
            updated_at=utcnow(),
        )
        # SQLite's RETURNING may only name the updated table's columns.
        .returning(
            m.id,
            m.instance_id,
            m.provider_message_id,
            m.conversation_id,
            m.status,
            m.previous_status_rank,
            m.error_code,
            m.error_title,
        )
    )


def _backfill_statement(receipts: Any) -> Any:
    """Move stage times earlier when a late receipt proves an earlier time (order-independence)."""
    m, r = messages_table.c, receipts.c
    stages = (
        (m.sent_at, r.sent_at, STATUS_RANK[DeliveryStatus.SENT]),
        (m.delivered_at, r.delivered_at, STATUS_RANK[DeliveryStatus.DELIVERED]),
        (m.read_at, r.read_at, STATUS_RANK[DeliveryStatus.READ]),
    )
    conditions = {
        current.name: and_(new.is_not(None), m.status_rank >= rank, or_(current.is_(None), current > new))
        for current, new, rank in stages
    }
    return (
        update(messages_table)
        .where(
            m.instance_id == r.instance_id,
            m.provider_message_id == r.provider_message_id,
            or_(*conditions.values()),
        )
        .values(
            {current.name: case((conditions[current.name], new), else_=current) for current, new, _ in stages}
        )
    )


def _implied_stage_times(receipt: _Receipt) -> dict[str, datetime]:
    """A read message was delivered and a delivered one was sent: fill earlier stages in."""
    times = dict(receipt.stage_times)
    order = [DeliveryStatus.READ.value, DeliveryStatus.DELIVERED.value, DeliveryStatus.SENT.value]
    earliest: datetime | None = None
    for stage in order:
        if stage in times:
            earliest = min(times[stage], earliest) if earliest else times[stage]
        elif earliest is not None:
            times[stage] = earliest
    return times


CONFIRMED_STAGES = (DeliveryStatus.DELIVERED, DeliveryStatus.READ)


def _receipt_events(receipt: _Receipt, row: Any) -> list[PublishedEvent]:
    """One event per stage the message newly reached, however the receipts were batched."""
    payload = {
        "message_id": row.id,
        "provider_message_id": receipt.provider_message_id,
        "instance_id": receipt.instance_id,
        "conversation_id": row.conversation_id,
    }
    if receipt.status is DeliveryStatus.FAILED:
        error = {"code": row.error_code, "title": row.error_title}
        return [
            PublishedEvent(
                "whatsapp_delivery_failed", receipt.tenant_id, {**payload, "status": "failed", "error": error}
            )
        ]
    return [
        PublishedEvent("whatsapp_delivery_confirmed", receipt.tenant_id, {**payload, "status": stage.value})
        for stage in CONFIRMED_STAGES
        if row.previous_status_rank < STATUS_RANK[stage] <= receipt.rank
    ]


# ---------------------------------------------------------------------------------------------------
# Connection changes


async def _apply_connections(
    session: AsyncSession, connections: dict[str, tuple[IngestEntry, ConnectionUpdate]], result: IngestResult
) -> None:
    table: Table = WhatsAppInstance.__table__  # type: ignore[assignment]
    for instance_id in sorted(connections):
        entry, change = connections[instance_id]
        closed = change.state is ConnectionState.CLOSE
        values: dict[str, Any] = {
            "connection_state": change.state.value,
            "connection_reason": change.reason,
            "connection_changed_at": entry.received_at,
            "updated_at": utcnow(),
        }
        if closed:
            values["status"] = InstanceStatus.INACTIVE.value
        elif change.state is ConnectionState.OPEN:
            # Reconnection restores only what disconnection took; an operator's pause stays.
            values["status"] = case(
                (table.c.status == InstanceStatus.INACTIVE.value, InstanceStatus.ACTIVE.value),
                else_=table.c.status,
            )
        outcome = await session.execute(
            update(table)
            .where(
                table.c.id == instance_id,
                or_(
                    table.c.connection_changed_at.is_(None),
                    table.c.connection_changed_at <= entry.received_at,
                ),
            )
            .values(**values)
        )
        changed = outcome.rowcount or 0  # type: ignore[attr-defined]
        result.connection_changes += changed
        if changed and closed:
            await pause_for_disconnection(session, instance_id, change.reason, utcnow())
        elif changed and change.state is ConnectionState.OPEN:
            await resume_after_reconnection(session, instance_id, utcnow())
