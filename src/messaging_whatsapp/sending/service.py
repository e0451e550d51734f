"""The rules of sending one message: who may be messaged, through which number, and how it is queued.

Everything that would make a send pointless or harmful is refused here, before anything is
stored or queued: an invalid phone, an opted-out person, a number that cannot send, a free-form
message outside WhatsApp's 24-hour customer service window on the official APIs. What passes is
stored as `queued` and handed to the senders through the outbound stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation.service import is_opted_out
from messaging_whatsapp.db import ensure_rows, insert_for, new_id
from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound
from messaging_whatsapp.inbox.models import (
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    SenderType,
    SendState,
)
from messaging_whatsapp.instances.health import HealthView, unavailable_reason
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.phones import InvalidPhone, canonical_phone, phone_variants
from messaging_whatsapp.providers.base import (
    ButtonsContent,
    DeliveryStatus,
    OutboundMedia,
    OutboundMediaType,
    OutboundMessage,
    ProviderName,
    ReplyButton,
    TemplateContent,
)
from messaging_whatsapp.sending.schemas import SendMessageRequest

# WhatsApp lets a business answer freely for 24 hours after the person's last message; after
# that only an approved template may open the conversation again.
SERVICE_WINDOW = timedelta(hours=24)
# Providers that enforce the window themselves (and charge or fail the message when it is missed).
WINDOWED_PROVIDERS = frozenset({ProviderName.META, ProviderName.TWILIO})
# A queued message whose stream entry was lost (a crash between commit and append) is offered to
# the senders again after this long.
REOFFER_AFTER = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message stored as queued; `created` is False when an Idempotency-Key matched an earlier one."""

    message: Message
    created: bool


async def queue_message(
    session: AsyncSession,
    tenant_id: str,
    request: SendMessageRequest,
    *,
    idempotency_key: str | None,
    sender_type: SenderType,
    now: datetime,
) -> QueuedMessage:
    """Check every rule and store the message as queued; the caller commits, then offers it."""
    if idempotency_key:
        earlier = await _by_idempotency_key(session, tenant_id, idempotency_key)
        if earlier is not None:
            return QueuedMessage(earlier, created=False)
    phone = _recipient(request.to)
    if await is_opted_out(session, tenant_id, phone):
        raise Conflict(f"{phone} opted out of messages from this business", code="opted_out")
    contact = await _contact(session, tenant_id, phone, now)
    instance = await _instance(session, tenant_id, contact, request.instance_id, now)
    conversation = await _conversation(session, tenant_id, contact.id, instance.id, now)
    _check_service_window(instance, conversation, request, now)
    message = _message_row(tenant_id, instance, conversation, request, idempotency_key, sender_type, now)
    if not idempotency_key:
        session.add(message)
    else:
        try:
            async with session.begin_nested():
                session.add(message)
        except IntegrityError:
            # Another request with the same Idempotency-Key won the race; answer with its message.
            earlier = await _by_idempotency_key(session, tenant_id, idempotency_key)
            if earlier is None:
                raise
            return QueuedMessage(earlier, created=False)
    conversation.last_message_at = now
    return QueuedMessage(message, created=True)


async def get_message(session: AsyncSession, tenant_id: str, message_id: str) -> Message:
    """One of the tenant's messages; another tenant's id is not found."""
    message = await session.scalar(
        select(Message).where(Message.id == message_id, Message.tenant_id == tenant_id)
    )
    if message is None:
        raise NotFound(f"message {message_id} not found")
    return message


def outbound_message(message: Message, phone: str) -> OutboundMessage:
    """The provider-neutral message to send for a stored outbound message."""
    extra = message.extra or {}
    to = phone.removeprefix("+")
    if message.media is not None:
        media = message.media
        return OutboundMessage(
            message.id,
            to,
            media=OutboundMedia(
                OutboundMediaType(media["type"]), media["url"], media.get("caption"), media.get("filename")
            ),
        )
    if "template" in extra:
        template = extra["template"]
        return OutboundMessage(
            message.id,
            to,
            template=TemplateContent(template["name"], template["language"], tuple(template["parameters"])),
        )
    if "buttons" in extra:
        buttons = tuple(ReplyButton(b["id"], b["title"]) for b in extra["buttons"])
        return OutboundMessage(message.id, to, buttons=ButtonsContent(message.content or "", buttons))
    return OutboundMessage(message.id, to, text=message.content or "")


# --------------------------------------------------------------------------------------------------


def _recipient(raw: str) -> str:
    try:
        return canonical_phone(raw)
    except InvalidPhone as exc:
        raise InvalidInput(f"'to' is not a valid phone number: {raw!r}", code="invalid_phone") from exc


async def _by_idempotency_key(session: AsyncSession, tenant_id: str, key: str) -> Message | None:
    query = select(Message).where(Message.tenant_id == tenant_id, Message.idempotency_key == key)
    result: Message | None = await session.scalar(query)
    return result


async def _contact(session: AsyncSession, tenant_id: str, phone: str, now: datetime) -> Contact:
    """The person's contact, created when we write to them first (race-safe upsert)."""
    query = select(Contact).where(Contact.tenant_id == tenant_id, Contact.phone.in_(phone_variants(phone)))
    contact = await session.scalar(query)
    if contact is not None:
        return contact
    statement = insert_for(session, Contact).values(
        id=new_id(), tenant_id=tenant_id, phone=phone, created_at=now, updated_at=now
    )
    created: Contact | None = await session.scalar(
        statement.on_conflict_do_nothing(index_elements=["tenant_id", "phone"]).returning(Contact)
    )
    if created is not None:
        return created
    # A concurrent request created it first.
    return (await session.scalars(query.execution_options(populate_existing=True))).one()


async def _instance(
    session: AsyncSession, tenant_id: str, contact: Contact, instance_id: str | None, now: datetime
) -> WhatsAppInstance:
    """The named instance, or the best one that can send: the one already talking to the person first."""
    if instance_id is not None:
        instance = await session.scalar(
            select(WhatsAppInstance).where(
                WhatsAppInstance.id == instance_id, WhatsAppInstance.tenant_id == tenant_id
            )
        )
        if instance is None:
            raise NotFound(f"instance {instance_id} not found")
        reason = unavailable_reason(instance, now)
        if reason is not None:
            raise Conflict(f"instance {instance.name} cannot send: {reason}", code="instance_unavailable")
        return instance
    candidates = [
        instance
        for instance in (
            await session.scalars(select(WhatsAppInstance).where(WhatsAppInstance.tenant_id == tenant_id))
        )
        if unavailable_reason(instance, now) is None
    ]
    if not candidates:
        raise Conflict("no instance of this tenant can send right now", code="instance_unavailable")
    talking = set(
        (
            await session.scalars(
                select(Conversation.instance_id).where(
                    Conversation.tenant_id == tenant_id, Conversation.contact_id == contact.id
                )
            )
        ).all()
    )
    return max(candidates, key=lambda i: _preference(i, talking, now))


def _preference(instance: WhatsAppInstance, talking: set[str], now: datetime) -> tuple[bool, float, int]:
    health = HealthView.of(instance, now)
    return (instance.id in talking, health.score, -health.sent_today)


async def _conversation(
    session: AsyncSession, tenant_id: str, contact_id: str, instance_id: str, now: datetime
) -> Conversation:
    query = select(Conversation).where(
        Conversation.tenant_id == tenant_id,
        Conversation.contact_id == contact_id,
        Conversation.instance_id == instance_id,
    )
    conversation = await session.scalar(query)
    if conversation is not None:
        return conversation
    statement = insert_for(session, Conversation).values(
        id=new_id(),
        tenant_id=tenant_id,
        contact_id=contact_id,
        instance_id=instance_id,
        status="open",
        unread_count=0,
        created_at=now,
        updated_at=now,
    )
    created: Conversation | None = await session.scalar(
        statement.on_conflict_do_nothing(index_elements=["tenant_id", "contact_id", "instance_id"]).returning(
            Conversation
        )
    )
    if created is not None:
        return created
    return (await session.scalars(query.execution_options(populate_existing=True))).one()


def _check_service_window(
    instance: WhatsAppInstance, conversation: Conversation, request: SendMessageRequest, now: datetime
) -> None:
    if request.template is not None or ProviderName(instance.provider) not in WINDOWED_PROVIDERS:
        return
    last = conversation.last_inbound_at
    if last is not None and now - last <= SERVICE_WINDOW:
        return
    since = "has never written" if last is None else f"last wrote at {last.isoformat()}"
    raise InvalidInput(
        f"outside the 24-hour customer service window (the person {since}); "
        'send an approved template instead: {"template": {"name", "language", "parameters"}}',
        code="outside_service_window",
    )


def _message_row(
    tenant_id: str,
    instance: WhatsAppInstance,
    conversation: Conversation,
    request: SendMessageRequest,
    idempotency_key: str | None,
    sender_type: SenderType,
    now: datetime,
) -> Message:
    content, media, extra, type_ = _content(request)
    return Message(
        id=new_id(),
        tenant_id=tenant_id,
        instance_id=instance.id,
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        direction=Direction.OUTBOUND.value,
        sender_type=sender_type.value,
        type=type_,
        content=content,
        media=media,
        extra=extra,
        status=DeliveryStatus.QUEUED.value,
        status_rank=0,
        idempotency_key=idempotency_key,
        send_state=SendState.PENDING.value,
        send_attempts=0,
        next_attempt_at=now + REOFFER_AFTER,
        created_at=now,
        updated_at=now,
    )


def _content(
    request: SendMessageRequest,
) -> tuple[str | None, dict[str, Any] | None, dict[str, Any] | None, str]:
    """(content, media, extra, type) as the message table keeps them."""
    if request.media is not None:
        return request.media.caption, request.media.model_dump(mode="json"), None, request.media.type.value
    if request.template is not None:
        return request.template.name, None, {"template": request.template.model_dump()}, "template"
    if request.buttons is not None:
        buttons = [button.model_dump() for button in request.buttons.buttons]
        return request.buttons.text, None, {"buttons": buttons}, "interactive"
    return request.text, None, None, "text"


@dataclass(frozen=True, slots=True)
class BulkMessage:
    """One message of a bulk send (a campaign), already checked by its caller."""

    contact_id: str
    instance_id: str
    text: str
    media: dict[str, Any] | None = None


async def store_queued_messages(
    session: AsyncSession, tenant_id: str, items: list[BulkMessage], *, sender_type: SenderType, now: datetime
) -> list[str]:
    """Store many messages as queued, set-based; returns their ids in the order given.

    The caller has applied the rules (opt-out, a number that can send); the caller commits, then
    offers the ids to the senders.
    """
    if not items:
        return []
    conversations = await _conversation_ids(
        session, tenant_id, {(i.contact_id, i.instance_id) for i in items}, now
    )
    rows: list[dict[str, Any]] = []
    ids: list[str] = []
    for item in items:
        ids.append(new_id())
        media_type = item.media.get("type") if item.media else None
        rows.append(
            {
                "id": ids[-1],
                "tenant_id": tenant_id,
                "instance_id": item.instance_id,
                "conversation_id": conversations[(item.contact_id, item.instance_id)],
                "contact_id": item.contact_id,
                "direction": Direction.OUTBOUND.value,
                "sender_type": sender_type.value,
                "type": media_type or "text",
                "content": item.text,
                "media": {**item.media, "caption": item.text} if item.media else None,
                "status": DeliveryStatus.QUEUED.value,
                "status_rank": 0,
                "send_state": SendState.PENDING.value,
                "send_attempts": 0,
                "next_attempt_at": now + REOFFER_AFTER,
                "created_at": now,
                "updated_at": now,
            }
        )
    await session.execute(insert(Message), rows)
    await session.execute(
        update(Conversation)
        .where(Conversation.id.in_(set(conversations.values())))
        .values(last_message_at=now, updated_at=now)
    )
    return ids


async def _conversation_ids(
    session: AsyncSession, tenant_id: str, pairs: set[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], str]:
    """The conversation of each (contact, instance), created where missing."""
    rows = [
        {
            "tenant_id": tenant_id,
            "contact_id": contact_id,
            "instance_id": instance_id,
            "status": ConversationStatus.OPEN.value,
            "unread_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        for contact_id, instance_id in sorted(pairs)
    ]
    key = ("tenant_id", "contact_id", "instance_id")
    ids = await ensure_rows(session, Conversation.__table__, key, rows)  # type: ignore[arg-type]
    return {
        (contact_id, instance_id): conversation_id
        for (_, contact_id, instance_id), conversation_id in ids.items()
    }
