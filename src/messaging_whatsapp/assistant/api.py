"""The assistant's routes: the tenant's AI settings (admins change them), a preview of what it
would answer, and a conversation's draft and history of AI replies (for the agents)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from messaging_whatsapp.assistant import runner, service
from messaging_whatsapp.assistant.schemas import (
    AiReplyItem,
    DraftAnswer,
    PreviewAnswer,
    PreviewIn,
    ReplySource,
    SettingsItem,
    SettingsUpdate,
)
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.inbox.visibility import Viewer, check_conversation
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.tenancy.deps import InboxReader, InboxWriter, KnowledgeReader, KnowledgeWriter

router = APIRouter(prefix="/api/v1", tags=["assistant"])
MAX_REPLIES = 50


class ReplyList(BaseModel):
    """A conversation's AI replies, newest first."""

    items: list[AiReplyItem]


@router.get("/assistant/settings")
async def get_settings(session: DbSession, principal: KnowledgeReader, context: Context) -> SettingsItem:
    """The tenant's AI settings as they apply (its own server, key, model, or the engine's)."""
    row = await service.settings_row(session, principal.tenant_id)
    return service.settings_item(row, context.settings)


@router.put("/assistant/settings")
async def put_settings(
    body: SettingsUpdate, session: DbSession, principal: KnowledgeWriter, context: Context
) -> SettingsItem:
    """Change the tenant's AI settings: what the body leaves out stays; base_url, api_key, model
    or handoff_message given as null go back to the engine's. The key is never shown again."""
    row = await service.update_settings(session, context.cipher, principal.tenant_id, body, utcnow())
    await session.commit()
    return service.settings_item(row, context.settings)


@router.post("/assistant/preview")
async def preview(
    body: PreviewIn, session: DbSession, principal: KnowledgeReader, context: Context
) -> PreviewAnswer:
    """What the assistant would answer this question now (nothing is sent or stored)."""
    outcome = await runner.preview(context, session, principal.tenant_id, body.question)
    row = await service.settings_row(session, principal.tenant_id)
    handed_off = outcome.handoff_reason is not None
    text = service.settings_item(row, context.settings).handoff_message if handed_off else outcome.text
    return PreviewAnswer(
        text=text,
        handed_off=handed_off,
        reason=outcome.handoff_reason,
        sources=[ReplySource(**source) for source in outcome.sources],
    )


@router.get("/conversations/{conversation_id}/ai-draft")
async def get_draft(conversation_id: str, session: DbSession, principal: InboxReader) -> DraftAnswer:
    """The assistant's suggested reply for the conversation (null when none is waiting, or a
    person of the team wrote after it)."""
    await check_conversation(session, principal.tenant_id, conversation_id, Viewer.of(principal))
    draft = await service.current_draft(session, principal.tenant_id, conversation_id)
    return DraftAnswer(draft=AiReplyItem.of(draft) if draft else None)


@router.get("/conversations/{conversation_id}/ai-replies")
async def list_replies(
    conversation_id: str,
    session: DbSession,
    principal: InboxReader,
    limit: Annotated[int, Query(ge=1, le=MAX_REPLIES)] = 20,
) -> ReplyList:
    """What the assistant did in the conversation, newest first: drafts, answers, handoffs, and
    the replies it did not give (with why: opted_out, outside_window, agent_replied...)."""
    await check_conversation(session, principal.tenant_id, conversation_id, Viewer.of(principal))
    replies = await service.conversation_replies(session, principal.tenant_id, conversation_id, limit)
    return ReplyList(items=[AiReplyItem.of(reply) for reply in replies])


@router.post("/ai-replies/{reply_id}/discard")
async def discard(reply_id: str, session: DbSession, principal: InboxWriter, context: Context) -> AiReplyItem:
    """Dismiss a draft (the agent will not use it); everyone with the chat open sees it go."""
    reply = await service.get_reply(session, principal.tenant_id, reply_id)
    await check_conversation(session, principal.tenant_id, reply.conversation_id, Viewer.of(principal))
    reply = await service.discard_draft(session, principal.tenant_id, reply_id, utcnow())
    records = await write_outbox(session, [runner.reply_event(reply)], context.names.events)
    await session.commit()
    await relay_outbox(context, records)
    return AiReplyItem.of(reply)
