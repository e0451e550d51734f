"""The knowledge base page (supervisors read and search, admins add and delete documents): the
tenant's documents with their chunk counts, an upload form, and a search box showing the ranked
chunks with their scores. Its Assistant tab: the AI settings (admins change them through
/api/v1/assistant/settings) and a box to try a question (/api/v1/assistant/preview)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.assistant import service as assistant
from messaging_whatsapp.config import Settings
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.knowledge.service import list_documents
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import allowed
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import open_shell

router = APIRouter(include_in_schema=False)

PAGE_PATH = "/knowledge"
DOCUMENTS_SHOWN = 200
SCRIPT_TEXTS = (
    "Document added.",
    "Document deleted.",
    "Delete this document and its chunks?",
    "Choose a file or paste a text.",
    "No chunk answers this yet.",
    "score",
    "similarity",
    # The Assistant tab (static/assistant.js)
    "Assistant settings saved.",
    "Answer",
    "Hands over to a person",
    "Would not answer",
    "Sources",
    "Why",
    "Nothing in the knowledge base answers this.",
    "The model found no answer in the sources it was given.",
    "The AI server could not be reached or refused the question.",
    "No AI server is set up.",
    "A greeting or a thanks alone asks nothing: the assistant stays quiet.",
    "Asking the assistant...",
)
TABS = ("documents", "assistant")
KnowledgeViewer = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "knowledge:read"))]


@router.get(PAGE_PATH)
async def knowledge_page(
    request: Request, context: Context, tab: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    """The documents, the upload form (admins) and the search box; or the Assistant tab."""
    shell = await open_shell(request, context, role=UserRole.SUPERVISOR)
    if isinstance(shell, Response):
        return shell
    shown = tab if tab in TABS else TABS[0]
    async with context.sessions() as session:
        if shown == "assistant":
            values = await _assistant(session, shell.principal, context.settings)
        else:
            values = await _content(session, shell.principal)
    return shell.render("knowledge/page.html", script_texts=SCRIPT_TEXTS, tab=shown, **values)


@router.get(PAGE_PATH + "/fragments/assistant")
async def assistant_fragment(
    request: Request, context: Context, session: DbSession, principal: KnowledgeViewer
) -> Response:
    """The assistant's settings as they are now (after a change)."""
    t = Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))
    values = await _assistant(session, principal, context.settings)
    return page(request, "knowledge/assistant.html", t, **values)


@router.get(PAGE_PATH + "/fragments/documents")
async def documents_fragment(request: Request, session: DbSession, principal: KnowledgeViewer) -> Response:
    """The documents' table as it is now."""
    t = Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))
    return page(request, "knowledge/documents.html", t, **await _content(session, principal))


async def _content(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    documents, _ = await list_documents(session, principal.tenant_id, None, DOCUMENTS_SHOWN)
    return {"documents": documents, "can_change": principal.role == UserRole.ADMIN.value}


async def _assistant(session: AsyncSession, principal: Principal, settings: Settings) -> dict[str, Any]:
    row = await assistant.settings_row(session, principal.tenant_id)
    return {
        "applied": assistant.settings_item(row, settings),
        # What the tenant set itself (empty fields fall back to the engine's, shown as placeholders).
        "own_model": row.model if row else None,
        "own_handoff": row.handoff_message if row else None,
        "engine_model": settings.ai_model,
        "default_handoff": assistant.DEFAULT_HANDOFF_MESSAGE,
        "can_change": principal.role == UserRole.ADMIN.value,
    }
