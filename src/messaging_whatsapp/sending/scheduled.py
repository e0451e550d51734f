"""Scheduled messages: POST /api/v1/messages with `send_at`.

Checked when scheduled (the recipient is a valid number or a known identity, not opted out, the
number named exists and can take the content, the tenant has a number at all) and stored as
`scheduled`; at `send_at` the scheduler's pass queues it through queue_messages, where every rule
applies again (an opt-out since, the 24-hour window then, a number that cannot send then): a
refusal marks it `failed` with the error and publishes `whatsapp_scheduled_message_failed`;
a queued one is `sent` (`whatsapp_scheduled_message_sent`, its message id) and moves on like any
message. It can be cancelled until then.

Exactly once: the pass takes due rows with a conditional UPDATE (`status = 'scheduled'`) in the
transaction that inserts their messages (Idempotency-Key `scheduled:<id>`), so two schedulers never
send one twice and one that dies mid-pass leaves its rows scheduled for the next.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.consent.service import opted_out_phones
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import is_postgresql, take_sqlite_writer
from messaging_whatsapp.errors import Conflict, EngineError, InvalidInput, NotFound
from messaging_whatsapp.inbox.models import Contact, Conversation, SenderType
from messaging_whatsapp.inbox.visibility import EVERYONE, Viewer
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.outbox.service import PublishedEvent, relay_outbox, write_outbox
from messaging_whatsapp.pagination import decode_time_cursor, encode_cursor
from messaging_whatsapp.phones import phone_variants
from messaging_whatsapp.providers.outbound import RecipientKind
from messaging_whatsapp.sending.models import ScheduledMessage, ScheduledStatus
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.recipients import recipient
from messaging_whatsapp.sending.rules import check_content
from messaging_whatsapp.sending.schemas import ScheduledMessageItem, SendMessageRequest
from messaging_whatsapp.sending.service import queue_messages
from messaging_whatsapp.sending.submissions import QueuedMessage, Submission, SubmissionResult, queued_events
from messaging_whatsapp.streams.base import StreamError
from messaging_whatsapp.tenancy.service import tenant_country

logger = logging.getLogger(__name__)

# How far ahead a message may be scheduled.
MAX_AHEAD = timedelta(days=90)
# Rows sent per transaction of the pass at most; the rest at the next pass.
MAX_PER_PASS = 200
SENT = "whatsapp_scheduled_message_sent"
FAILED = "whatsapp_scheduled_message_failed"


async def schedule_message(session: AsyncSession, submission: Submission, now: datetime) -> ScheduledMessage:
    """Check a send-later submission now and store it as scheduled (an Idempotency-Key already used
    answers with that one); 422 invalid_send_at when it is not in the future or too far ahead.
    The caller commits."""
    request = submission.request
    send_at = request.send_at
    if send_at is None:
        raise InvalidInput("send_at is required to schedule a message", code="invalid_send_at")
    if submission.idempotency_key is not None:
        earlier = await session.scalar(
            select(ScheduledMessage).where(
                ScheduledMessage.tenant_id == submission.tenant_id,
                ScheduledMessage.idempotency_key == submission.idempotency_key,
            )
        )
        if earlier is not None:
            return earlier
    if send_at <= now:
        raise InvalidInput(f"send_at {send_at.isoformat()} is not in the future", code="invalid_send_at")
    if send_at > now + MAX_AHEAD:
        raise InvalidInput(f"send_at is more than {MAX_AHEAD.days} days ahead", code="invalid_send_at")
    tenant_id = submission.tenant_id
    kind, to = recipient(request.to, await tenant_country(session, tenant_id))
    contact = await _contact(session, tenant_id, kind, to)
    phone = to if kind is RecipientKind.PHONE else (contact.phone if contact else None)
    if (contact is not None and contact.opted_out) or (
        phone and await opted_out_phones(session, tenant_id, {phone})
    ):
        raise Conflict(f"{to} opted out of messages from this business", code="opted_out")
    instance = await _instance(session, tenant_id, request)
    if instance is not None:
        check_content(instance, request)
    scheduled = ScheduledMessage(
        tenant_id=tenant_id,
        request=request.model_dump(mode="json", exclude={"send_at"}, exclude_none=True),
        to=to,
        contact_id=contact.id if contact else None,
        conversation_id=await _conversation(session, contact, request.instance_id),
        send_at=send_at,
        status=ScheduledStatus.SCHEDULED.value,
        idempotency_key=submission.idempotency_key,
        sender_user_id=submission.sender_user_id,
        sender_api_key_id=submission.sender_api_key_id,
        created_at=now,
        updated_at=now,
    )
    session.add(scheduled)
    await session.flush()
    return scheduled


async def _contact(session: AsyncSession, tenant_id: str, kind: RecipientKind, to: str) -> Contact | None:
    person: ColumnElement[bool]
    if kind is RecipientKind.PHONE:
        person = Contact.phone.in_(phone_variants(to))
    else:
        person = or_(Contact.bsuid == to, Contact.lid == to)
    return await session.scalar(select(Contact).where(Contact.tenant_id == tenant_id, person).limit(1))


async def _instance(
    session: AsyncSession, tenant_id: str, request: SendMessageRequest
) -> WhatsAppInstance | None:
    """The number named (404 when it is not the tenant's); 409 when the tenant has none at all."""
    query = select(WhatsAppInstance).where(WhatsAppInstance.tenant_id == tenant_id)
    if request.instance_id is None:
        if await session.scalar(query.with_only_columns(WhatsAppInstance.id).limit(1)) is None:
            raise Conflict("this tenant has no WhatsApp number to send from", code="instance_unavailable")
        return None
    instance = await session.scalar(query.where(WhatsAppInstance.id == request.instance_id))
    if instance is None:
        raise NotFound(f"instance {request.instance_id} not found")
    return instance


async def _conversation(
    session: AsyncSession, contact: Contact | None, instance_id: str | None
) -> str | None:
    """The conversation it will join, when known now: the one with the number named, or the
    person's only one."""
    if contact is None:
        return None
    query = select(Conversation.id).where(Conversation.contact_id == contact.id)
    if instance_id is not None:
        query = query.where(Conversation.instance_id == instance_id)
    found = list(await session.scalars(query.limit(2)))
    return found[0] if len(found) == 1 else None


async def list_scheduled(
    session: AsyncSession,
    tenant_id: str,
    *,
    conversation_id: str | None,
    contact_id: str | None,
    status: ScheduledStatus | None,
    cursor: str | None,
    limit: int,
    viewer: Viewer = EVERYONE,
) -> tuple[list[ScheduledMessageItem], str | None]:
    """The tenant's scheduled messages, newest first, by conversation, contact or status; an agent
    sees the ones they scheduled and those of the conversations they work."""
    s = ScheduledMessage
    query = select(s).where(s.tenant_id == tenant_id)
    if viewer.restricted:
        working = select(Conversation.id).where(
            Conversation.tenant_id == tenant_id, viewer.visible_conversations()
        )
        query = query.where(or_(s.sender_user_id == viewer.agent_id, s.conversation_id.in_(working)))
    if conversation_id is not None:
        query = query.where(s.conversation_id == conversation_id)
    if contact_id is not None:
        query = query.where(s.contact_id == contact_id)
    if status is not None:
        query = query.where(s.status == status.value)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(or_(s.created_at < at, and_(s.created_at == at, s.id < last_id)))
    rows = list(await session.scalars(query.order_by(s.created_at.desc(), s.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return [scheduled_item(row) for row in rows[:limit]], next_cursor


async def cancel_scheduled(
    session: AsyncSession, tenant_id: str, scheduled_id: str, now: datetime, viewer: Viewer = EVERYONE
) -> ScheduledMessageItem:
    """Cancel a message before it is sent (409 not_scheduled once it was sent, failed or cancelled)."""
    s = ScheduledMessage
    scheduled = await session.scalar(select(s).where(s.id == scheduled_id, s.tenant_id == tenant_id))
    if scheduled is None or not await _visible(session, tenant_id, scheduled, viewer):
        raise NotFound(f"scheduled message {scheduled_id} not found")
    await take_sqlite_writer(session)
    cancelled = await session.scalar(
        update(s)
        .where(s.id == scheduled_id, s.status == ScheduledStatus.SCHEDULED.value)
        .values(status=ScheduledStatus.CANCELLED.value, updated_at=now)
        .returning(s.id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(scheduled)
    if cancelled is None:
        raise Conflict(
            f"scheduled message {scheduled_id} is {scheduled.status}: only a scheduled one can be cancelled",
            code="not_scheduled",
            details={"status": scheduled.status},
        )
    return scheduled_item(scheduled)


async def _visible(
    session: AsyncSession, tenant_id: str, scheduled: ScheduledMessage, viewer: Viewer
) -> bool:
    if not viewer.restricted or scheduled.sender_user_id == viewer.agent_id:
        return True
    if scheduled.conversation_id is None:
        return False
    found = await session.scalar(
        select(Conversation.id).where(
            Conversation.id == scheduled.conversation_id,
            Conversation.tenant_id == tenant_id,
            viewer.visible_conversations(),
        )
    )
    return found is not None


def scheduled_item(scheduled: ScheduledMessage) -> ScheduledMessageItem:
    """The API's item for a scheduled message."""
    request = scheduled.request
    kind = next((name for name in ("text", "media", "template", "buttons") if name in request), "text")
    preview = _preview(kind, request.get(kind))
    error = None
    if scheduled.error_code:
        error = {"code": scheduled.error_code, "message": scheduled.error_message or ""}
    return ScheduledMessageItem(
        id=scheduled.id,
        status=scheduled.status,
        send_at=scheduled.send_at,
        to=scheduled.to,
        instance_id=request.get("instance_id"),
        contact_id=scheduled.contact_id,
        conversation_id=scheduled.conversation_id,
        kind=kind,
        preview=preview,
        message_id=scheduled.message_id,
        sent_at=scheduled.sent_at,
        error=error,
        sender_user_id=scheduled.sender_user_id,
        created_at=scheduled.created_at,
    )


def _preview(kind: str, content: Any) -> str | None:
    """What the list shows of it: the text, the caption (or URL), the template's name."""
    if kind == "text":
        return str(content)
    if kind == "media":
        found = content.get("caption") or content.get("url")
    else:
        found = content.get("name") if kind == "template" else content.get("text")
    return str(found) if found is not None else None


# ---------------------------------------------------------------------------------------------
# The scheduler's pass


async def send_due(
    session: AsyncSession, now: datetime, limit: int = MAX_PER_PASS
) -> tuple[list[SubmissionResult], list[PublishedEvent]]:
    """Take the due scheduled messages (conditional: once) and queue them through every rule, in
    the session's transaction; (the queue's results, the events to publish). The caller commits,
    then relays and offers."""
    s = ScheduledMessage
    due = (
        select(s.id).where(s.status == ScheduledStatus.SCHEDULED.value, s.send_at <= now).order_by(s.send_at)
    )
    if is_postgresql(session):
        # Rows another scheduler is taking now are its: skip them rather than wait.
        due = due.with_for_update(skip_locked=True)
    else:
        await take_sqlite_writer(session)
    taken = list(
        await session.scalars(
            update(s)
            .where(s.id.in_(due.limit(limit).scalar_subquery()), s.status == ScheduledStatus.SCHEDULED.value)
            .values(status=ScheduledStatus.SENT.value, sent_at=now, updated_at=now)
            .returning(s)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    )
    if not taken:
        return [], []
    submissions = [
        Submission(
            row.tenant_id,
            SendMessageRequest(**row.request),
            f"scheduled:{row.id}",
            SenderType.USER,
            sender_user_id=row.sender_user_id,
            sender_api_key_id=row.sender_api_key_id,
        )
        for row in taken
    ]
    results = await queue_messages(session, submissions, now)
    events: list[PublishedEvent] = []
    for row, result in zip(taken, results, strict=True):
        events.append(await _record(session, row, result, now))
    return list(results), events


async def _record(
    session: AsyncSession, row: ScheduledMessage, result: SubmissionResult, now: datetime
) -> PublishedEvent:
    """Note what became of one taken row: its message, or the error that refused it."""
    s = ScheduledMessage
    payload: dict[str, Any] = {
        "scheduled_message_id": row.id,
        "to": row.to,
        "send_at": row.send_at.isoformat(),
    }
    if isinstance(result, EngineError):
        await session.execute(
            update(s)
            .where(s.id == row.id)
            .values(
                status=ScheduledStatus.FAILED.value,
                sent_at=None,
                error_code=result.code,
                error_message=result.message,
                updated_at=now,
            )
        )
        payload |= {
            "conversation_id": row.conversation_id,
            "error": {"code": result.code, "message": result.message},
        }
        return PublishedEvent(FAILED, row.tenant_id, payload)
    message = result.message
    await session.execute(
        update(s)
        .where(s.id == row.id)
        .values(
            message_id=message.id,
            conversation_id=message.conversation_id,
            contact_id=message.contact_id,
            updated_at=now,
        )
    )
    payload |= {"conversation_id": message.conversation_id, "message_id": message.id}
    return PublishedEvent(SENT, row.tenant_id, payload)


async def send_scheduled_messages(context: EngineContext, now: datetime) -> int:
    """One pass of the scheduler: send what is due, publish after commit, offer to the senders;
    how many were taken."""
    async with context.sessions() as session, session.begin():
        results, events = await send_due(session, now)
        records = await write_outbox(session, [*queued_events(results), *events], context.names.events)
    await relay_outbox(context, records)
    created = [
        (r.message.id, r.message.tenant_id) for r in results if isinstance(r, QueuedMessage) and r.created
    ]
    try:
        await offer_messages(context, created)
    except StreamError:
        logger.warning(
            "outbound stream unavailable; %d scheduled messages wait for the re-offer", len(created)
        )
    return len(events)
