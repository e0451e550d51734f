"""The ingest batch: the inbound worker's stream entries applied to every domain in one transaction.

The batch claims its entries' idempotency keys (a redelivered entry is skipped whole), splits the
normalised events by kind and hands each domain its part through the domain's own set-based
applier: the inbox stores messages and raises statuses, consent finds opt-outs, campaigns
move their contacts and counters, instances record connection changes and health. What they
publish goes to the outbox in the same transaction. Everything here is safe to run again for
the same input; the caller commits, then relays the outbox.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.assistant.service import request_replies
from messaging_whatsapp.automation.reactions import react_to_messages
from messaging_whatsapp.batch import ConnectionChange, InboundItem, IngestEntry, Outcomes, Receipt
from messaging_whatsapp.campaigns.progress import (
    follow_messages,
    pause_for_disconnection,
    record_replies,
    resume_after_reconnection,
)
from messaging_whatsapp.config import AI_DEBOUNCE_SECONDS
from messaging_whatsapp.consent.service import follow_merges, keep_suppressed_opted_out, keyword_optouts
from messaging_whatsapp.db import insert_rows, utcnow
from messaging_whatsapp.followups.models import CancelReason
from messaging_whatsapp.followups.service import cancel_for_replies
from messaging_whatsapp.inbox.inbound import apply_inbound
from messaging_whatsapp.inbox.receipts import apply_receipts
from messaging_whatsapp.instances.announcements import connection_event
from messaging_whatsapp.instances.connections import apply_connection_changes
from messaging_whatsapp.instances.health import record_outcomes
from messaging_whatsapp.outbox.service import OutboxRecord, PublishedEvent, write_outbox
from messaging_whatsapp.phones import canonical_phone
from messaging_whatsapp.privacy.optouts import opt_out
from messaging_whatsapp.providers.events import (
    ConnectionState,
    ConnectionUpdate,
    Ignored,
    InboundMessage,
    StatusUpdate,
)
from messaging_whatsapp.worker.models import ProcessedEvent


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
    # Rules fired by the batch's messages (automation).
    rules_fired: int = 0
    # Conversations asked for an AI reply (or whose waiting reply moved).
    ai_replies_asked: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    outbox: list[OutboxRecord] = field(default_factory=list)
    # Stages newly reached per instance, for its health.
    health: dict[str, Outcomes] = field(default_factory=dict)
    orphan_receipts: int = 0
    # Messages automation queued: offered to the senders after the commit (message id, tenant id).
    offers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Parts:
    """A batch's events by the domain that applies them."""

    inbound: list[InboundItem] = field(default_factory=list)
    receipts: dict[tuple[str, str], Receipt] = field(default_factory=dict)
    # The last change of each number in stream order.
    connections: dict[str, ConnectionChange] = field(default_factory=dict)


async def apply_entries(
    session: AsyncSession,
    entries: list[IngestEntry],
    events_stream: str,
    ai_debounce_seconds: float = AI_DEBOUNCE_SECONDS,
) -> IngestResult:
    """Apply the entries' events in the session's transaction; the caller commits. A customer's
    message to a number with AI on asks for a reply due `ai_debounce_seconds` after the burst."""
    result = IngestResult()
    fresh = await _claim_unprocessed(session, entries)
    result.entries_already_processed = len(entries) - len(fresh)
    if not fresh:
        return result
    parts = _split(fresh, result)
    published: list[PublishedEvent] = []
    if parts.inbound:
        published += await _apply_inbound(session, parts.inbound, result, ai_debounce_seconds)
    if parts.receipts:
        published += await _apply_receipts(session, list(parts.receipts.values()), result)
    if parts.connections:
        published += await _apply_connections(session, list(parts.connections.values()), result)
    result.outbox = await write_outbox(session, published, events_stream)
    # Last: every batch of a number's receipts updates its one row, so hold that lock briefly.
    health_changes = await record_outcomes(session, result.health, utcnow())
    result.outbox += await write_outbox(session, health_changes, events_stream)
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


def _split(entries: list[IngestEntry], result: IngestResult) -> _Parts:
    parts = _Parts()
    for entry in entries:
        for event in entry.events:
            if isinstance(event, InboundMessage):
                phone = canonical_phone(event.phone) if event.phone else None
                parts.inbound.append(InboundItem(entry, event, phone))
            elif isinstance(event, StatusUpdate):
                key = (entry.instance_id, event.provider_message_id)
                receipt = parts.receipts.setdefault(
                    key, Receipt(entry.tenant_id, entry.instance_id, event.provider_message_id)
                )
                receipt.fold(event)
            elif isinstance(event, ConnectionUpdate):
                parts.connections[entry.instance_id] = ConnectionChange(
                    entry.instance_id, event.state, event.reason, entry.received_at, entry.tenant_id
                )
            elif isinstance(event, Ignored):
                result.ignored[event.reason.value] += 1
    return parts


async def _apply_inbound(
    session: AsyncSession, items: list[InboundItem], result: IngestResult, ai_debounce_seconds: float
) -> list[PublishedEvent]:
    stored = await apply_inbound(session, items)
    # Contacts found to be one person: the consent ledger follows the inbox to the survivor.
    await follow_merges(session, stored.merges)
    result.messages_created += len(stored.created)
    result.messages_duplicate += stored.duplicates
    if not stored.created:
        return []
    await keep_suppressed_opted_out(session, stored.created)
    candidates = keyword_optouts(stored.created)
    opted_out = await opt_out(session, candidates, utcnow())
    result.opt_outs += len(opted_out)
    # Seed 003: a reply (an opt-out first) stops the follow-ups of its conversation at once.
    stopped = await _stop_follow_ups(session, stored.created, {c.contact_id for c in candidates})
    # Seed 000: a reply is engagement with the campaigns that reached the person.
    replied = sorted({item.contact_id for item in stored.created if item.from_customer})
    await record_replies(session, replied, utcnow())
    # Seed 001: intents and auto-replies, never for a message that was an opt-out.
    optout_keys = {(c.instance_id or "", c.provider_message_id or "") for c in candidates}
    automation = await react_to_messages(session, stored.created, stored.opened, optout_keys, utcnow())
    result.rules_fired += automation.fired
    result.offers += automation.offers
    # Issue 17: AI replies, asked here, answered by the scheduler once the burst is quiet.
    result.ai_replies_asked += await request_replies(
        session, stored.created, optout_keys, ai_debounce_seconds, utcnow()
    )
    return stored.published + opted_out + stopped + automation.published


async def _stop_follow_ups(
    session: AsyncSession, created: list[InboundItem], opted_out: set[str]
) -> list[PublishedEvent]:
    replies = [item for item in created if item.from_customer]
    now = utcnow()
    stopped = await cancel_for_replies(
        session,
        [i.conversation_id for i in replies if i.contact_id in opted_out],
        CancelReason.OPTED_OUT,
        now,
    )
    return stopped + await cancel_for_replies(
        session, [i.conversation_id for i in replies], CancelReason.CUSTOMER_REPLIED, now
    )


async def _apply_receipts(
    session: AsyncSession, receipts: list[Receipt], result: IngestResult
) -> list[PublishedEvent]:
    applied = await apply_receipts(session, receipts)
    result.receipts_applied += applied.applied
    result.receipts_without_effect += applied.without_effect
    result.orphan_receipts += applied.orphans
    result.health.update(applied.health)
    # Seed 000: receipts move campaign contacts and their campaigns' counters too.
    await follow_messages(session, applied.moved, utcnow())
    return applied.published


async def _apply_connections(
    session: AsyncSession, changes: list[ConnectionChange], result: IngestResult
) -> list[PublishedEvent]:
    applied = await apply_connection_changes(session, changes)
    result.connection_changes += len(applied)
    # Seed 000: a number that disconnects pauses its campaigns until it reconnects.
    for change in applied:
        if change.state is ConnectionState.CLOSE:
            await pause_for_disconnection(session, change.instance_id, change.reason, utcnow())
        elif change.state is ConnectionState.OPEN:
            await resume_after_reconnection(session, change.instance_id, utcnow())
    return [connection_event(change.tenant_id, change) for change in applied]
