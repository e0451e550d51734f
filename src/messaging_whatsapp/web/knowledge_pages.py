"""The knowledge base page (supervisors read and search, admins add and delete documents): the
tenant's documents with their chunk counts, an upload form, and a search box showing the ranked
chunks with their scores."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

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
)
KnowledgeViewer = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "knowledge:read"))]


@router.get(PAGE_PATH)
async def knowledge_page(request: Request, context: Context) -> Response:
    """The documents, the upload form (admins) and the search box."""
    shell = await open_shell(request, context, role=UserRole.SUPERVISOR)
    if isinstance(shell, Response):
        return shell
    async with context.sessions() as session:
        values = await _content(session, shell.principal)
    return shell.render("knowledge/page.html", script_texts=SCRIPT_TEXTS, **values)


@router.get(PAGE_PATH + "/fragments/documents")
async def documents_fragment(request: Request, session: DbSession, principal: KnowledgeViewer) -> Response:
    """The documents' table as it is now."""
    t = Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))
    return page(request, "knowledge/documents.html", t, **await _content(session, principal))


async def _content(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    documents, _ = await list_documents(session, principal.tenant_id, None, DOCUMENTS_SHOWN)
    return {"documents": documents, "can_change": principal.role == UserRole.ADMIN.value}
