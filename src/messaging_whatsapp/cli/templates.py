"""Message templates from the command line: `sync-templates` reads them from Meta, `list-templates`
shows what a tenant's numbers may send."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.cli.support import (
    JsonOption,
    in_session,
    print_json,
    print_table,
    run_engine,
    stdout,
    table,
    tenant_or_only_one,
)
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.pagination import MAX_LIMIT
from messaging_whatsapp.templates import service
from messaging_whatsapp.templates.schemas import SyncResult, TemplateItem

TenantOption = Annotated[
    str | None, typer.Option(help="The tenant (default: the only one there is).", show_default=False)
]


def sync_templates(tenant_id: TenantOption = None, as_json: JsonOption = False) -> None:
    """Read the templates of the tenant's Meta numbers (each WABA's message_templates) from Meta
    and store them: added, updated, and removed when Meta no longer lists them."""

    async def work(context: EngineContext) -> SyncResult:
        async def sync(session: AsyncSession) -> SyncResult:
            tenant = await tenant_or_only_one(session, tenant_id)
            return await service.sync_templates(session, context.cipher, context.settings, tenant, utcnow())

        return await in_session(context, sync)

    result = run_engine(work)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    stdout.print(f"templates: {result.added} added, {result.updated} updated, {result.removed} removed")
    for number in result.numbers:
        outcome = number.error or f"{number.added} added, {number.updated} updated, {number.removed} removed"
        stdout.print(f"  {number.name} ({number.display_number}): {outcome}", highlight=False)


def list_templates(
    tenant_id: TenantOption = None,
    instance: Annotated[str | None, typer.Option(help="Only the templates this number sends (id).")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (APPROVED, PENDING, ...).")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the tenant's stored templates with their status, category and parameters."""

    async def work(context: EngineContext) -> list[TemplateItem]:
        async def load(session: AsyncSession) -> list[TemplateItem]:
            tenant = await tenant_or_only_one(session, tenant_id)
            wanted = service.TemplateFilter(instance_id=instance, status=status)
            numbers = service.numbers_by_scope(await service.tenant_numbers(session, tenant))
            items: list[TemplateItem] = []
            cursor: str | None = None
            while True:
                rows, cursor = await service.list_templates_page(session, tenant, wanted, cursor, MAX_LIMIT)
                items.extend(TemplateItem.of(r, [i.id for i in numbers.get(r.scope, [])]) for r in rows)
                if cursor is None:
                    return items

        return await in_session(context, load)

    items = run_engine(work)
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    shown = table("id", "name", "language", "status", "category", "parameters", "scope")
    for item in items:
        parameters = ", ".join(item.parameter_names) or "-"
        shown.add_row(item.id, item.name, item.language, item.status, item.category, parameters, item.scope)
    print_table(shown)
