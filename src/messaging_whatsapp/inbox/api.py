"""Read API of the inbox (the full inbox comes later)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from messaging_whatsapp.api.deps import CurrentPrincipal, DbSession
from messaging_whatsapp.inbox import service
from messaging_whatsapp.inbox.schemas import ContactItem, ConversationItem, MessageItem
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/api/v1", tags=["inbox"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/contacts")
async def list_contacts(
    session: DbSession,
    principal: CurrentPrincipal,
    phone: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ContactItem]:
    """Contacts of the caller's tenant; `?phone=` finds one by phone in either Brazilian form."""
    return await service.list_contacts(session, principal.tenant_id, phone=phone, cursor=cursor, limit=limit)


@router.get("/conversations")
async def list_conversations(
    session: DbSession,
    principal: CurrentPrincipal,
    status: str | None = None,
    instance_id: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ConversationItem]:
    """Conversations of the caller's tenant, most recent activity first."""
    return await service.list_conversations(
        session, principal.tenant_id, status=status, instance_id=instance_id, cursor=cursor, limit=limit
    )


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: str,
    session: DbSession,
    principal: CurrentPrincipal,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[MessageItem]:
    """Messages of one conversation, oldest first."""
    return await service.list_messages(
        session, principal.tenant_id, conversation_id, cursor=cursor, limit=limit
    )
