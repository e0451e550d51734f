"""The templates routes under /api/v1: thin over the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from messaging_whatsapp.templates import service
from messaging_whatsapp.templates.models import MessageTemplateRow
from messaging_whatsapp.templates.schemas import SyncResult, TemplateCreate, TemplateItem
from messaging_whatsapp.tenancy.deps import TemplateReader, TemplateWriter

router = APIRouter(prefix="/api/v1", tags=["templates"])


@router.get("/templates")
async def list_templates(
    session: DbSession,
    principal: TemplateReader,
    instance_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Annotated[str | None, Query(max_length=24)] = None,
    name: Annotated[str | None, Query(max_length=512)] = None,
    cursor: Annotated[str | None, Query(max_length=1200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[TemplateItem]:
    """The tenant's templates by name; `instance_id` keeps the ones that number sends, `status`
    one status (APPROVED, PENDING, REJECTED, ..., REMOVED), `name` names containing it."""
    wanted = service.TemplateFilter(instance_id=instance_id, status=status, name=name)
    rows, next_cursor = await service.list_templates_page(session, principal.tenant_id, wanted, cursor, limit)
    return Page(items=await _items(session, principal.tenant_id, rows), next_cursor=next_cursor)


@router.post("/templates", status_code=201)
async def create_template(
    body: TemplateCreate, session: DbSession, principal: TemplateWriter
) -> TemplateItem:
    """A template for a simulator number, approved at once; a Meta number's come from the sync."""
    row = await service.create_template(session, principal.tenant_id, body, utcnow())
    [item] = await _items(session, principal.tenant_id, [row])
    return item


@router.post("/templates/sync")
async def sync_templates(session: DbSession, context: Context, principal: TemplateWriter) -> SyncResult:
    """Read every Meta number's WABA templates from Meta and store them (added, updated, removed,
    with each number's outcome); 502 when no number could be read."""
    return await service.sync_templates(
        session, context.cipher, context.settings, principal.tenant_id, utcnow()
    )


async def _items(session: AsyncSession, tenant_id: str, rows: list[MessageTemplateRow]) -> list[TemplateItem]:
    scopes = service.numbers_by_scope(await service.tenant_numbers(session, tenant_id))
    return [TemplateItem.of(row, [i.id for i in scopes.get(row.scope, [])]) for row in rows]
