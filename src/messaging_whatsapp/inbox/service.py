"""Reading the inbox: contacts, conversations and messages of one tenant, cursor-paginated."""

from __future__ import annotations

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox.models import Contact, Conversation, Message
from messaging_whatsapp.inbox.schemas import (
    ContactItem,
    ContactRef,
    ConversationItem,
    MessageError,
    MessageItem,
)
from messaging_whatsapp.inbox.visibility import EVERYONE, Viewer, check_conversation
from messaging_whatsapp.pagination import Page, decode_time_cursor, encode_cursor
from messaging_whatsapp.providers.outbound import identity_kind
from messaging_whatsapp.tenancy.service import tenant_phone


async def list_contacts(
    session: AsyncSession,
    tenant_id: str,
    *,
    phone: str | None,
    cursor: str | None,
    limit: int,
    viewer: Viewer = EVERYONE,
) -> Page[ContactItem]:
    """The tenant's contacts the viewer works with, oldest first; `phone` (typed: a national form is
    a number of the tenant's default country) matches either Brazilian form, or is the BSUID or
    LID of a person known by it."""
    query = select(Contact).where(Contact.tenant_id == tenant_id)
    if viewer.restricted:
        query = query.where(
            exists().where(Conversation.contact_id == Contact.id, viewer.visible_conversations())
        )
    if phone and identity_kind(phone) is not None:
        # A person known by a BSUID or a LID is found by it.
        query = query.where(or_(Contact.bsuid == phone.strip(), Contact.lid == phone.strip()))
    elif phone:
        query = query.where(Contact.phone == await tenant_phone(session, tenant_id, phone))
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(
            or_(Contact.created_at > at, and_(Contact.created_at == at, Contact.id > last_id))
        )
    rows = list(
        (await session.scalars(query.order_by(Contact.created_at, Contact.id).limit(limit + 1))).all()
    )
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return Page(items=[ContactItem.model_validate(row) for row in rows[:limit]], next_cursor=next_cursor)


async def list_conversations(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: str | None = None,
    instance_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    viewer: Viewer = EVERYONE,
) -> Page[ConversationItem]:
    """The tenant's conversations the viewer works, most recent activity first."""
    activity = func.coalesce(Conversation.last_message_at, Conversation.created_at)
    query = (
        select(Conversation, Contact, activity.label("activity"))
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.tenant_id == tenant_id, viewer.visible_conversations())
    )
    if status:
        query = query.where(Conversation.status == status)
    if instance_id:
        query = query.where(Conversation.instance_id == instance_id)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(or_(activity < at, and_(activity == at, Conversation.id < last_id)))
    rows = (
        await session.execute(query.order_by(activity.desc(), Conversation.id.desc()).limit(limit + 1))
    ).all()
    items = [conversation_item(conversation, contact) for conversation, contact, _ in rows[:limit]]
    next_cursor = (
        encode_cursor(rows[limit - 1].activity, rows[limit - 1][0].id) if len(rows) > limit else None
    )
    return Page(items=items, next_cursor=next_cursor)


async def mark_conversation_read(
    session: AsyncSession, tenant_id: str, conversation_id: str, viewer: Viewer = EVERYONE
) -> ConversationItem:
    """An agent has read the conversation: its unread count goes back to zero."""
    changed = await session.scalar(
        update(Conversation)
        .where(
            Conversation.id == conversation_id,
            Conversation.tenant_id == tenant_id,
            viewer.visible_conversations(),
        )
        .values(unread_count=0)
        .returning(Conversation.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:
        raise NotFound(f"conversation {conversation_id} not found")
    row = (
        await session.execute(
            select(Conversation, Contact)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Conversation.id == conversation_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return conversation_item(*row)


def conversation_item(conversation: Conversation, contact: Contact) -> ConversationItem:
    """The API's item for a conversation and its contact."""
    return ConversationItem(
        id=conversation.id,
        status=conversation.status,
        unread_count=conversation.unread_count,
        last_message_at=conversation.last_message_at,
        last_inbound_at=conversation.last_inbound_at,
        instance_id=conversation.instance_id,
        contact=ContactRef.model_validate(contact),
        created_at=conversation.created_at,
    )


async def list_messages(
    session: AsyncSession,
    tenant_id: str,
    conversation_id: str,
    *,
    cursor: str | None,
    limit: int,
    viewer: Viewer = EVERYONE,
) -> Page[MessageItem]:
    """A conversation's messages in the order they were stored (oldest first)."""
    await check_conversation(session, tenant_id, conversation_id, viewer)
    query = select(Message).where(Message.tenant_id == tenant_id, Message.conversation_id == conversation_id)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(
            or_(Message.created_at > at, and_(Message.created_at == at, Message.id > last_id))
        )
    rows = list(
        (await session.scalars(query.order_by(Message.created_at, Message.id).limit(limit + 1))).all()
    )
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return Page(items=[message_item(row) for row in rows[:limit]], next_cursor=next_cursor)


def message_item(message: Message) -> MessageItem:
    """The API view of a message."""
    error = None
    if message.error_code or message.error_title:
        error = MessageError(code=message.error_code, title=message.error_title)
    return MessageItem(
        id=message.id,
        conversation_id=message.conversation_id,
        instance_id=message.instance_id,
        ticket_id=message.ticket_id,
        direction=message.direction,
        sender_type=message.sender_type,
        sender_user_id=message.sender_user_id,
        sender_name=message.sender_name,
        type=message.type,
        content=message.content,
        media=message.media,
        extra=message.extra,
        quoted_provider_message_id=message.quoted_provider_message_id,
        status=message.status,
        provider_message_id=message.provider_message_id,
        sent_at=message.sent_at,
        delivered_at=message.delivered_at,
        read_at=message.read_at,
        error=error,
        created_at=message.created_at,
    )
