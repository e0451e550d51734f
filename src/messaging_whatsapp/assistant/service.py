"""The assistant's rules that need no model: a tenant's AI settings, asking for a reply when
customers write to a number with AI on (one per burst), the facts that stop a reply, and the
conversation's current draft."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from messaging_whatsapp.assistant.client import Endpoint
from messaging_whatsapp.assistant.models import AiReply, AssistantSettings, ReplyStatus
from messaging_whatsapp.assistant.schemas import SettingsItem, SettingsUpdate
from messaging_whatsapp.batch import InboundItem
from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.db import is_postgresql, new_id, one_of
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox.models import (
    OPEN_TICKET_STATUSES,
    TEAM_SENDERS,
    Contact,
    Conversation,
    Direction,
    Message,
    Ticket,
)
from messaging_whatsapp.instances.models import AiMode, InstanceStatus, WhatsAppInstance
from messaging_whatsapp.tenancy.models import Tenant

DEFAULT_HANDOFF_MESSAGE = "Vou chamar uma pessoa da nossa equipe para te ajudar. Só um instante!"
# WhatsApp's customer service window: free-form messages only this long after the customer's last.
SERVICE_WINDOW = timedelta(hours=24)
# Where the engine serves its fake model when AI_FAKE is set (api/fake_ai.py).
FAKE_AI_PREFIX = "/fake-ai/v1"


# --------------------------------------------------------------------------------------------------
# Settings


async def settings_row(session: AsyncSession, tenant_id: str) -> AssistantSettings | None:
    """The tenant's saved AI settings (None until it saves any)."""
    return await session.scalar(select(AssistantSettings).where(AssistantSettings.tenant_id == tenant_id))


def endpoint_for(row: AssistantSettings | None, settings: Settings, cipher: Cipher) -> Endpoint | None:
    """Where the tenant's answers come from: its own server, else the engine's AI_BASE_URL, with
    its own key and model where it set them; None when neither has a server."""
    tenant_key = cipher.decrypt(row.api_key_encrypted) if row and row.api_key_encrypted else None
    model = (row.model if row else None) or settings.ai_model
    if row and row.base_url:
        return Endpoint(row.base_url, tenant_key, model, tenant_given=True)
    engine_url = _engine_url(settings)
    if engine_url:
        engine_key = settings.ai_api_key.get_secret_value() if settings.ai_api_key else None
        return Endpoint(engine_url, tenant_key or engine_key, model, tenant_given=False)
    return None


def _engine_url(settings: Settings) -> str | None:
    """AI_BASE_URL, else the engine's own fake model when AI_FAKE is set."""
    if settings.ai_base_url:
        return settings.ai_base_url
    return settings.public_url.rstrip("/") + FAKE_AI_PREFIX if settings.ai_fake else None


def settings_item(row: AssistantSettings | None, settings: Settings) -> SettingsItem:
    """The settings as they apply to the tenant (never the key itself)."""
    endpoint = (
        "tenant"
        if row and row.base_url
        else "engine"
        if settings.ai_base_url
        else "fake"
        if settings.ai_fake
        else "none"
    )
    return SettingsItem(
        base_url=row.base_url if row else None,
        api_key_set=bool(row and row.api_key_encrypted),
        model=(row.model if row else None) or settings.ai_model,
        instructions=row.instructions if row else "",
        guardrails=row.guardrails if row else "",
        handoff_message=(row.handoff_message if row else None) or DEFAULT_HANDOFF_MESSAGE,
        endpoint=endpoint,
        updated_at=row.updated_at if row else None,
    )


async def update_settings(
    session: AsyncSession, cipher: Cipher, tenant_id: str, update_: SettingsUpdate, now: datetime
) -> AssistantSettings:
    """Apply the change to the tenant's settings (created on the first); the key is encrypted."""
    row = await settings_row(session, tenant_id)
    if row is None:
        row = AssistantSettings(tenant_id=tenant_id, instructions="", guardrails="", created_at=now)
        session.add(row)
    changes = update_.changes()
    for name in ("base_url", "model", "handoff_message"):
        if name in changes:
            setattr(row, name, changes[name])
    for name in ("instructions", "guardrails"):
        if name in changes:
            setattr(row, name, str(changes[name] or ""))
    if "api_key" in changes:
        key = changes["api_key"]
        row.api_key_encrypted = cipher.encrypt(str(key)) if key else None
    row.updated_at = now
    await session.flush()
    return row


# --------------------------------------------------------------------------------------------------
# Asking for replies (in the ingest batch)


async def request_replies(
    session: AsyncSession,
    created: list[InboundItem],
    skipped: set[tuple[str, str]],
    debounce: float,
    now: datetime,
) -> int:
    """Ask for a reply to each conversation whose customer wrote to a number with AI on (not an
    echo, not an opt-out message: `skipped` keys), due once the burst has been quiet for
    `debounce` seconds: a waiting reply only moves its due time. How many were asked or moved."""
    written = [
        item for item in created if item.from_customer and item.key not in skipped and item.conversation_id
    ]
    if not written:
        return 0
    modes = dict(
        (
            await session.execute(
                select(WhatsAppInstance.id, WhatsAppInstance.ai_mode).where(
                    one_of(session, WhatsAppInstance.id, {item.entry.instance_id for item in written}),
                    WhatsAppInstance.ai_mode != AiMode.OFF.value,
                )
            )
        ).all()
    )
    # The burst's newest message per conversation (the batch is in arrival order).
    newest = {item.conversation_id: item for item in written if item.entry.instance_id in modes}
    due = now + timedelta(seconds=debounce)
    for item in newest.values():
        await _ask(session, item, modes[item.entry.instance_id], due, now)
    return len(newest)


async def _ask(session: AsyncSession, item: InboundItem, mode: str, due: datetime, now: datetime) -> None:
    """Insert the conversation's waiting reply, or move the one waiting (the partial unique index)."""
    values = {
        "tenant_id": item.entry.tenant_id,
        "conversation_id": item.conversation_id,
        "instance_id": item.entry.instance_id,
        "mode": mode,
        "status": ReplyStatus.PENDING.value,
        "message_id": item.message_id,
        "due_at": due,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    moved = {"due_at": due, "message_id": item.message_id, "mode": mode, "updated_at": now}
    waiting = AiReply.__table__.c.status == ReplyStatus.PENDING.value
    insert = postgresql_insert if is_postgresql(session) else sqlite_insert
    statement = insert(AiReply).values(id=new_id(), **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["conversation_id"], index_where=waiting, set_=moved)
    )


# --------------------------------------------------------------------------------------------------
# What stops a reply


@dataclass(frozen=True)
class ReplyFacts:
    """What a reply needs to know about its conversation when it runs."""

    reply: AiReply
    tenant_name: str
    instance: WhatsAppInstance
    contact: Contact
    conversation: Conversation
    ticket: Ticket | None
    # A person of the business wrote in the ticket (an agent, or someone on the phone).
    person_wrote: bool
    # The assistant already handed this ticket to a person.
    handed_off: bool


async def reply_facts(session: AsyncSession, reply: AiReply) -> ReplyFacts | None:
    """The facts of a reply's conversation (None if it is gone)."""
    found = (
        await session.execute(
            select(Conversation, Contact, WhatsAppInstance)
            .join(Contact, Contact.id == Conversation.contact_id)
            .join(WhatsAppInstance, WhatsAppInstance.id == Conversation.instance_id)
            .where(Conversation.id == reply.conversation_id, Conversation.tenant_id == reply.tenant_id)
        )
    ).one_or_none()
    if found is None:
        return None
    conversation, contact, instance = found
    ticket = await session.get(Ticket, conversation.open_ticket_id) if conversation.open_ticket_id else None
    tenant_name = await session.scalar(select(Tenant.name).where(Tenant.id == reply.tenant_id)) or ""
    person_wrote = handed_off = False
    if ticket is not None:
        person_wrote = bool(
            await session.scalar(
                select(
                    exists().where(
                        Message.ticket_id == ticket.id,
                        Message.direction == Direction.OUTBOUND.value,
                        Message.sender_type.in_(TEAM_SENDERS),
                    )
                )
            )
        )
        handed_off = bool(
            await session.scalar(
                select(
                    exists().where(
                        AiReply.ticket_id == ticket.id, AiReply.status == ReplyStatus.HANDED_OFF.value
                    )
                )
            )
        )
    return ReplyFacts(reply, tenant_name, instance, contact, conversation, ticket, person_wrote, handed_off)


def stop_reason(facts: ReplyFacts, now: datetime) -> str | None:
    """Why the assistant must not answer now (None: it may). Drafts go on while people answer;
    automatic replies stop for the ticket once a person wrote, was asked for, or took it."""
    mode = facts.instance.ai_mode
    if mode == AiMode.OFF.value:
        return "ai_off"
    if facts.instance.status != InstanceStatus.ACTIVE.value:
        return "number_unavailable"
    if facts.ticket is None or facts.ticket.status not in OPEN_TICKET_STATUSES:
        return "ticket_closed"
    if facts.contact.opted_out:
        return "opted_out"
    last_inbound = facts.conversation.last_inbound_at
    if last_inbound is None or now - last_inbound > SERVICE_WINDOW:
        return "outside_window"
    if mode == AiMode.DRAFTS.value:
        return None
    if facts.ticket.wants_person_at is not None:
        return "wants_person"
    if facts.handed_off:
        return "handed_off"
    if facts.person_wrote:
        return "agent_replied"
    if facts.ticket.assignee_id is not None:
        return "assigned"
    return None


# --------------------------------------------------------------------------------------------------
# Drafts


async def current_draft(session: AsyncSession, tenant_id: str, conversation_id: str) -> AiReply | None:
    """The conversation's newest draft, unless a person of the business wrote after it."""
    draft = await session.scalar(
        select(AiReply)
        .where(
            AiReply.tenant_id == tenant_id,
            AiReply.conversation_id == conversation_id,
            AiReply.status == ReplyStatus.DRAFTED.value,
        )
        .order_by(AiReply.created_at.desc(), AiReply.id.desc())
        .limit(1)
    )
    if draft is None:
        return None
    answered = await session.scalar(
        select(
            exists().where(
                Message.conversation_id == conversation_id,
                Message.direction == Direction.OUTBOUND.value,
                Message.sender_type.in_(TEAM_SENDERS),
                Message.created_at > draft.updated_at,
            )
        )
    )
    return None if answered else draft


async def get_reply(session: AsyncSession, tenant_id: str, reply_id: str) -> AiReply:
    """One of the tenant's replies; another tenant's id is not found."""
    reply = await session.scalar(
        select(AiReply).where(AiReply.id == reply_id, AiReply.tenant_id == tenant_id)
    )
    if reply is None:
        raise NotFound(f"AI reply {reply_id} not found", code="ai_reply_not_found")
    return reply


async def discard_draft(session: AsyncSession, tenant_id: str, reply_id: str, now: datetime) -> AiReply:
    """The agent dismissed the draft (a draft already used or dismissed stays as it is)."""
    reply = await get_reply(session, tenant_id, reply_id)
    await session.execute(
        update(AiReply)
        .where(AiReply.id == reply.id, AiReply.status == ReplyStatus.DRAFTED.value)
        .values(status=ReplyStatus.DISCARDED.value, reason="dismissed", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(reply)
    return reply


async def conversation_replies(
    session: AsyncSession, tenant_id: str, conversation_id: str, limit: int
) -> list[AiReply]:
    """The conversation's replies, newest first (what the assistant did, and why not)."""
    rows = await session.scalars(
        select(AiReply)
        .where(AiReply.tenant_id == tenant_id, AiReply.conversation_id == conversation_id)
        .order_by(AiReply.created_at.desc(), AiReply.id.desc())
        .limit(limit)
    )
    return list(rows)


def claimable(now: datetime) -> ColumnElement[bool]:
    """A reply a runner may take: waiting and due, or taken by one whose lease ran out."""
    return or_(
        and_(AiReply.status == ReplyStatus.PENDING.value, AiReply.due_at <= now),
        and_(AiReply.status == ReplyStatus.WORKING.value, AiReply.lease_until < now),
    )
