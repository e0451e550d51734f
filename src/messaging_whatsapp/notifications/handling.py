"""One event of events:materials turned into a template notification, or into the reason it is not.

Everything happens in the caller's transaction: the event is claimed by its id (a unique key per
tenant, so an event delivered three times notifies once), decided, recorded, and its notification
queued (sending.service.queue_messages, so opt-out, a number that can send and the template
checks apply) with the events that say so. The caller commits, then relays the outbox, offers the
message, and acknowledges the entry or moves it to the DLQ when `dead_letter` says why.

Outcomes: `notified`; `skipped` (not_requested, no_mapping, opted_out); `ignored` (an event type
we do not handle); `unusable` (no or no valid customer_phone, a payload value the mapping needs
missing; also in the DLQ, and processed again if it is replayed); `failed` (the sending rules
refused it: no number can send, a template check failed; never retried).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.consent.service import opted_out_phones
from messaging_whatsapp.db import insert_for, new_id
from messaging_whatsapp.errors import EngineError, NotFound
from messaging_whatsapp.inbox.models import SenderType
from messaging_whatsapp.notifications.models import EventMapping, EventOutcome, EventType, InboundEvent
from messaging_whatsapp.notifications.service import mapping_for
from messaging_whatsapp.outbox.service import OutboxRecord, PublishedEvent, write_outbox
from messaging_whatsapp.phones import DEFAULT_COUNTRY, InvalidPhone, needs_country, typed_phone
from messaging_whatsapp.sending.schemas import SendMessageRequest, TemplateIn
from messaging_whatsapp.sending.service import queue_messages
from messaging_whatsapp.sending.submissions import QueuedMessage, Submission, queued_events
from messaging_whatsapp.tenancy.service import tenant_country

# The outcome of an event whose id this tenant's events already hold (nothing done again).
DUPLICATE = "duplicate"
MAX_EVENT_ID = 200
MAX_EVENT_TYPE = 100
MAX_REASON = 500
# notify_whatsapp texts that mean "do not notify" (as a form or a query string would write false).
NOT_REQUESTED_TEXTS = frozenset({"false", "0", "no"})


class UnusableEvent(ValueError):
    """The entry can never be handled (not the events:materials format); its message is the reason."""


@dataclass(frozen=True, slots=True)
class MaterialEvent:
    """An events:materials entry, read."""

    tenant_id: str
    event_id: str
    event_type: str
    payload: dict[str, Any]


@dataclass
class Handled:
    """What handling an event decided and wrote; the caller acts on it after the commit."""

    outcome: str
    reason: str | None = None
    message_id: str | None = None
    # (message id, tenant id) to offer to the senders.
    queued: list[tuple[str, str]] = field(default_factory=list)
    outbox: list[OutboxRecord] = field(default_factory=list)
    # Why the entry goes to the DLQ (an unusable event), else None: acknowledge it.
    dead_letter: str | None = None


@dataclass
class _Decision:
    outcome: EventOutcome
    reason: str | None = None
    message_id: str | None = None
    published: list[PublishedEvent] = field(default_factory=list)
    queued: list[tuple[str, str]] = field(default_factory=list)


def read_entry(fields: dict[str, str]) -> MaterialEvent:
    """The event an entry carries (event_id, event_type, tenant_id, payload as a JSON object);
    UnusableEvent naming what is wrong otherwise."""
    values = {}
    for name, longest in (("event_id", MAX_EVENT_ID), ("event_type", MAX_EVENT_TYPE), ("tenant_id", 36)):
        value = fields.get(name, "").strip()
        if not value:
            raise UnusableEvent(f"unusable event: no {name}")
        if len(value) > longest:
            raise UnusableEvent(f"unusable event: {name} is over {longest} characters")
        values[name] = value
    try:
        payload = orjson.loads(fields.get("payload", ""))
    except orjson.JSONDecodeError as exc:
        raise UnusableEvent(f"unusable event {values['event_id']}: payload is not JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise UnusableEvent(f"unusable event {values['event_id']}: payload is not a JSON object")
    return MaterialEvent(values["tenant_id"], values["event_id"], values["event_type"], payload)


async def handle_event(
    session: AsyncSession, event: MaterialEvent, events_stream: str, now: datetime
) -> Handled:
    """Claim, decide and record one event in the caller's transaction (see the module's doc)."""
    try:
        country = await tenant_country(session, event.tenant_id)
    except NotFound:
        reason = f"unknown_tenant: tenant {event.tenant_id} not found"
        return Handled(
            EventOutcome.UNUSABLE, reason, dead_letter=f"unusable event {event.event_id}: {reason}"
        )
    claimed = await _claim(session, event, now)
    if claimed is None:
        return Handled(DUPLICATE)
    decision = await _decide(session, event, country, now)
    await session.execute(
        update(InboundEvent)
        .where(InboundEvent.id == claimed)
        .values(outcome=decision.outcome.value, reason=decision.reason, message_id=decision.message_id)
    )
    outbox = await write_outbox(session, decision.published, events_stream)
    dead_letter = None
    if decision.outcome is EventOutcome.UNUSABLE:
        dead_letter = f"unusable event {event.event_id}: {decision.reason}"
    return Handled(
        decision.outcome, decision.reason, decision.message_id, decision.queued, outbox, dead_letter
    )


async def _claim(session: AsyncSession, event: MaterialEvent, now: datetime) -> str | None:
    """The id of this event's record, claimed now; None when the tenant's events already hold it
    (one found unusable is claimed again: a replay after the mapping was fixed may succeed)."""
    row = {
        "id": new_id(),
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "outcome": EventOutcome.PROCESSING.value,
        "received_at": now,
    }
    statement = insert_for(session, InboundEvent).values(row)
    statement = statement.on_conflict_do_nothing(index_elements=["tenant_id", "event_id"])
    inserted = await session.scalar(statement.returning(InboundEvent.id))
    if inserted is not None:
        return str(inserted)
    again = await session.scalar(
        update(InboundEvent)
        .where(
            InboundEvent.tenant_id == event.tenant_id,
            InboundEvent.event_id == event.event_id,
            InboundEvent.outcome == EventOutcome.UNUSABLE.value,
        )
        .values(outcome=EventOutcome.PROCESSING.value, event_type=event.event_type)
        .returning(InboundEvent.id)
    )
    return None if again is None else str(again)


async def _decide(session: AsyncSession, event: MaterialEvent, country: str, now: datetime) -> _Decision:
    if event.event_type not in set(EventType):
        return _Decision(EventOutcome.IGNORED, "unknown_event_type")
    payload = event.payload
    if not_requested(payload.get("notify_whatsapp")):
        return _Decision(EventOutcome.SKIPPED, "not_requested")
    raw_phone = payload.get("customer_phone")
    mapping = await mapping_for(session, event.tenant_id, event.event_type)
    if mapping is None:
        return _skipped(event, _shown(raw_phone), "no_mapping")
    try:
        phone = _phone(raw_phone, country)
        parameters = template_parameters(mapping, payload)
    except ValueError as exc:
        return _Decision(EventOutcome.UNUSABLE, str(exc))
    if await opted_out_phones(session, event.tenant_id, {phone}):
        return _skipped(event, phone, "opted_out")
    return await _queue(session, event, mapping, phone, parameters, now)


def not_requested(value: Any) -> bool:
    """Whether a payload's notify_whatsapp says not to notify (absent or anything else: notify)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value == 0
    return isinstance(value, str) and value.strip().lower() in NOT_REQUESTED_TEXTS


def _phone(raw: Any, country: str) -> str:
    """The customer's E.164 phone (a national form is a number of the tenant's country, as
    POST /api/v1/messages reads it); ValueError saying why there is none."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("missing_customer_phone: the payload has no customer_phone")
    try:
        return typed_phone(raw, country if needs_country(raw) else DEFAULT_COUNTRY)
    except InvalidPhone as exc:
        raise ValueError(f"invalid_customer_phone: {exc.message}"[:MAX_REASON]) from None


def template_parameters(mapping: EventMapping, payload: dict[str, Any]) -> list[str]:
    """The template's parameters: the payload's values of the mapping's keys, in order, as text;
    ValueError naming the first key missing (or empty, or not a text or number)."""
    parameters = []
    for key in mapping.parameters:
        value = payload.get(str(key))
        if isinstance(value, dict | list):
            raise ValueError(f"invalid_parameter: payload {key} is not a text or a number")
        text = "" if value is None else str(value).strip()
        if not text:
            raise ValueError(
                f"missing_parameter: payload has no {key} (the {mapping.template} template needs it)"
            )
        parameters.append(text)
    return parameters


async def _queue(
    session: AsyncSession,
    event: MaterialEvent,
    mapping: EventMapping,
    phone: str,
    parameters: list[str],
    now: datetime,
) -> _Decision:
    """Queue the template through every sending rule; a refusal is a failure, never retried."""
    try:
        template = TemplateIn(name=mapping.template, language=mapping.language, parameters=parameters)
        request = SendMessageRequest(to=phone, instance_id=mapping.instance_id, template=template)
    except ValidationError as exc:
        reason = f"invalid_template: {exc.errors()[0]['msg']}"
        return _failed(event, phone, "invalid_template", reason)
    submission = Submission(event.tenant_id, request, None, SenderType.SYSTEM)
    results = await queue_messages(session, [submission], now)
    [result] = results
    if isinstance(result, EngineError):
        if result.code == "opted_out":
            return _skipped(event, phone, "opted_out")
        return _failed(event, phone, result.code, f"{result.code}: {result.message}")
    assert isinstance(result, QueuedMessage)
    message = result.message
    sent = PublishedEvent(
        "whatsapp_notification_sent",
        event.tenant_id,
        {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "customer_phone": phone,
            "message_id": message.id,
        },
    )
    return _Decision(
        EventOutcome.NOTIFIED,
        message_id=message.id,
        published=[*queued_events(results), sent],
        queued=[(message.id, message.tenant_id)],
    )


def _skipped(event: MaterialEvent, phone: str | None, reason: str) -> _Decision:
    return _Decision(EventOutcome.SKIPPED, reason, published=[_skipped_event(event, phone, reason)])


def _failed(event: MaterialEvent, phone: str, code: str, reason: str) -> _Decision:
    return _Decision(EventOutcome.FAILED, reason[:MAX_REASON], published=[_skipped_event(event, phone, code)])


def _skipped_event(event: MaterialEvent, phone: str | None, reason: str) -> PublishedEvent:
    """`whatsapp_notification_skipped`: the event notified nobody, and why."""
    return PublishedEvent(
        "whatsapp_notification_skipped",
        event.tenant_id,
        {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "customer_phone": phone,
            "reason": reason,
        },
    )


def _shown(raw: Any) -> str | None:
    """The customer_phone as the producer wrote it, for an event that says why it was skipped."""
    return str(raw)[:40] if isinstance(raw, str | int) and not isinstance(raw, bool) else None
