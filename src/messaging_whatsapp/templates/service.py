"""A tenant's stored templates: listed, created for simulator numbers, synced from Meta.

Scope: Meta approves templates per WhatsApp Business Account, so every number of one WABA sends
the same templates (scope ``waba:<id>``); a simulator number has its own (``instance:<id>``).
Twilio's templates are Content SIDs kept in Twilio's Content API and are not stored here; the
gateways (Evolution, WuzAPI) have no templates at all.

The sync reads each WABA's list once (with the token of one of its numbers), upserts every
template and marks REMOVED the ones Meta no longer lists, so they stop being sendable but their
history still reads. A WABA that cannot be read (bad token, no WABA id) is reported by number and
its stored templates are left as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.db import insert_for, new_id
from messaging_whatsapp.errors import Conflict, InvalidInput, UpstreamError
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.service import decrypt_credentials, get_instance
from messaging_whatsapp.pagination import decode_cursor, encode_cursor
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.providers.meta_cloud.management import GraphTemplate, list_templates, placeholders
from messaging_whatsapp.providers.meta_cloud.templates import (
    MessageTemplate,
    TemplateCategory,
    TemplateComponent,
    TemplateParameter,
)
from messaging_whatsapp.providers.outbound import SendError
from messaging_whatsapp.templates.models import (
    UNIQUE_KEY,
    MessageTemplateRow,
    TemplateSource,
    TemplateStatus,
    templates_table,
)
from messaging_whatsapp.templates.schemas import NumberSync, SyncResult, TemplateCreate


def scope_of(instance: WhatsAppInstance) -> str | None:
    """The scope whose templates the number sends: its WABA (Meta), itself (simulator); None for a
    Meta number without a WABA id and for providers whose templates are not stored here."""
    if instance.provider == ProviderName.META.value:
        return f"waba:{instance.waba_id}" if instance.waba_id else None
    if instance.provider == ProviderName.SIMULATOR.value:
        return f"instance:{instance.id}"
    return None


def is_checked(provider: str) -> bool:
    """Whether sends through this provider's numbers are checked against stored templates."""
    return provider in (ProviderName.META.value, ProviderName.SIMULATOR.value)


async def tenant_numbers(session: AsyncSession, tenant_id: str) -> list[WhatsAppInstance]:
    """The tenant's numbers that have stored templates (Meta and simulator), bound ones only."""
    query = (
        select(WhatsAppInstance)
        .where(
            WhatsAppInstance.tenant_id == tenant_id,
            WhatsAppInstance.provider.in_([ProviderName.META.value, ProviderName.SIMULATOR.value]),
            WhatsAppInstance.status != InstanceStatus.UNBOUND.value,
        )
        .order_by(WhatsAppInstance.name, WhatsAppInstance.id)
    )
    return list((await session.scalars(query)).all())


def numbers_by_scope(instances: list[WhatsAppInstance]) -> dict[str, list[WhatsAppInstance]]:
    """scope -> the numbers that send its templates."""
    found: dict[str, list[WhatsAppInstance]] = {}
    for instance in instances:
        scope = scope_of(instance)
        if scope is not None:
            found.setdefault(scope, []).append(instance)
    return found


# --------------------------------------------------------------------------------------------------
# Listing


@dataclass(frozen=True, slots=True)
class TemplateFilter:
    """What a listing keeps: one number's scope, a status, a name (exact or a part of it)."""

    instance_id: str | None = None
    status: str | None = None
    name: str | None = None


async def list_templates_page(
    session: AsyncSession, tenant_id: str, wanted: TemplateFilter, cursor: str | None, limit: int
) -> tuple[list[MessageTemplateRow], str | None]:
    """The tenant's templates by name, language and id, with the next page's cursor; another
    tenant's instance_id is NotFound."""
    t = MessageTemplateRow
    query = select(t).where(t.tenant_id == tenant_id)
    if wanted.instance_id is not None:
        instance = await get_instance(session, tenant_id, wanted.instance_id)
        query = query.where(t.scope == (scope_of(instance) or f"none:{instance.id}"))
    if wanted.status:
        query = query.where(t.status == wanted.status.upper())
    if wanted.name:
        query = query.where(t.name.contains(wanted.name.lower(), autoescape=True))
    if cursor:
        (name, language), last_id = _decode(cursor)
        query = query.where(
            or_(
                t.name > name,
                and_(t.name == name, t.language > language),
                and_(t.name == name, t.language == language, t.id > last_id),
            )
        )
    query = query.order_by(t.name, t.language, t.id).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = None if last is None else encode_cursor(f"{last.name}\n{last.language}", last.id)
    return rows[:limit], next_cursor


def _decode(cursor: str) -> tuple[tuple[str, str], str]:
    value, last_id = decode_cursor(cursor)
    if not isinstance(value, str) or "\n" not in value:
        raise InvalidInput("cursor is not valid", code="invalid_cursor")
    name, language = value.split("\n", 1)
    return (name, language), last_id


# --------------------------------------------------------------------------------------------------
# Creating (simulator numbers)


async def create_template(
    session: AsyncSession, tenant_id: str, request: TemplateCreate, now: datetime
) -> MessageTemplateRow:
    """A template for a simulator number, approved at once (the simulator has no review); 422 for
    a Meta number (its templates come from Meta's review, by the sync) and for the others."""
    instance = await get_instance(session, tenant_id, request.instance_id)
    _check_creatable(instance)
    components = request.components or [{"type": "BODY", "text": request.body}]
    template = _declared(request.name, request.language, request.category.value, components)
    return await store_local(session, tenant_id, instance, template, now)


def _check_creatable(instance: WhatsAppInstance) -> None:
    """Only simulator numbers get templates created here."""
    if instance.provider == ProviderName.SIMULATOR.value:
        return
    if instance.provider == ProviderName.META.value:
        raise InvalidInput(
            f"{instance.name} is a Meta number: its templates are created and approved in Meta's "
            "WhatsApp Manager and come here by the sync (POST /api/v1/templates/sync)",
            code="templates_come_from_meta",
        )
    if instance.provider == ProviderName.TWILIO.value:
        raise InvalidInput(
            f"{instance.name} is a Twilio number: its templates are Content SIDs created in Twilio's "
            "Content API and are sent by that SID, not stored here",
            code="template_unsupported",
        )
    raise InvalidInput(
        f"{instance.name} ({instance.provider}) cannot send templates: the unofficial gateways send as "
        "WhatsApp Web, which has none",
        code="template_unsupported",
    )


def _declared(name: str, language: str, category: str, components: list[dict[str, Any]]) -> MessageTemplate:
    """The template as the registry's model validates it (Meta's name, language, category and
    component rules), its body parameters read from the body's placeholders."""
    try:
        parts = [_component(component) for component in components]
        template = MessageTemplate(name=name, language=language, category=category, components=parts)
    except (ValidationError, ValueError, TypeError) as exc:
        raise InvalidInput(_first_error(exc), code="invalid_template") from None
    body = template.body
    if body is None or not body.text:
        raise InvalidInput("a template needs a body with text", code="invalid_template")
    names = placeholders(body.text)
    if names and all(n.isdigit() for n in names) and names != [str(i) for i in range(1, len(names) + 1)]:
        raise InvalidInput(
            f"the body's placeholders must be {{{{1}}}} to {{{{{len(names)}}}}} in order, got "
            + ", ".join(f"{{{{{n}}}}}" for n in names),
            code="invalid_template",
        )
    return template


def _component(raw: dict[str, Any]) -> TemplateComponent:
    """A component from the API's JSON; a body's parameters come from its text's placeholders."""
    kind = str(raw.get("type", "")).upper()
    text = raw.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{kind or 'component'} text must be a string")
    if kind == "BODY" and text:
        parameters = [TemplateParameter(name=_parameter_name(n)) for n in placeholders(text)]
        return TemplateComponent(type=kind, text=text, parameters=parameters)
    return TemplateComponent(type=kind, text=text)


def _parameter_name(placeholder: str) -> str:
    return placeholder.lower()


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg'].removeprefix('Value error, ')}" if where else error["msg"]
    return str(exc)


async def store_local(
    session: AsyncSession,
    tenant_id: str,
    instance: WhatsAppInstance,
    template: MessageTemplate,
    now: datetime,
) -> MessageTemplateRow:
    """Store a declared template as approved for a simulator number (409 when it has one of that
    name and language already, also when a concurrent request stored it first)."""
    values = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "scope": f"instance:{instance.id}",
        "source": TemplateSource.LOCAL.value,
        "name": template.name,
        "language": template.language,
        "status": TemplateStatus.APPROVED.value,
        "category": template.category.value,
        "components": [c.model_dump(mode="json", exclude_none=True) for c in template.components],
        "body": template.body_text,
        "parameter_names": template.parameter_names,
        "parameter_count": len(template.parameter_names),
        "created_at": now,
        "updated_at": now,
    }
    statement = (
        insert_for(session, templates_table)
        .values(values)
        .on_conflict_do_nothing(index_elements=list(UNIQUE_KEY))
        .returning(templates_table.c.id)
    )
    stored = await session.scalar(statement)
    if stored is None:
        raise Conflict(
            f"{instance.name} already has a template {template.name} ({template.language})",
            code="template_exists",
        )
    row = await session.get(MessageTemplateRow, stored)
    assert row is not None
    return row


async def ensure_local(
    session: AsyncSession,
    tenant_id: str,
    instance: WhatsAppInstance,
    template: MessageTemplate,
    now: datetime,
) -> bool:
    """Store a registered template for a simulator number unless it has it (the demo's, each
    start); whether it was stored now."""
    existing = await session.scalar(
        select(MessageTemplateRow.id).where(
            MessageTemplateRow.tenant_id == tenant_id,
            MessageTemplateRow.scope == f"instance:{instance.id}",
            MessageTemplateRow.name == template.name,
            MessageTemplateRow.language == template.language,
        )
    )
    if existing is not None:
        return False
    await store_local(session, tenant_id, instance, template, now)
    return True


# --------------------------------------------------------------------------------------------------
# Syncing from Meta


async def sync_templates(
    session: AsyncSession, cipher: Cipher, settings: Settings, tenant_id: str, now: datetime
) -> SyncResult:
    """Read every WABA of the tenant's Meta numbers from Meta and store what it lists; 502
    (UpstreamError) when no number could be read, naming each one and why."""
    numbers = [n for n in await tenant_numbers(session, tenant_id) if n.provider == ProviderName.META.value]
    result = SyncResult()
    reports = {n.id: NumberSync(**_number_fields(n)) for n in numbers}
    result.numbers = list(reports.values())
    by_waba: dict[str, list[WhatsAppInstance]] = {}
    for number in numbers:
        if not number.waba_id:
            reports[
                number.id
            ].error = f"no WABA id: set it (PATCH /api/v1/instances/{number.id} with waba_id) to sync"
            continue
        by_waba.setdefault(number.waba_id, []).append(number)
    async with provider_client(max_connections=4) as client:
        for waba_id, sharing in by_waba.items():
            listed = await _read_waba(client, cipher, settings, sharing)
            if isinstance(listed, str):
                for number in sharing:
                    reports[number.id].error = listed
                continue
            added, updated, removed = await _apply(session, tenant_id, f"waba:{waba_id}", listed, now)
            result.added, result.updated, result.removed = (
                result.added + added,
                result.updated + updated,
                result.removed + removed,
            )
            for number in sharing:
                reports[number.id].added, reports[number.id].updated, reports[number.id].removed = (
                    added,
                    updated,
                    removed,
                )
    if numbers and len(result.errors) == len(numbers):
        failures = "; ".join(f"{n.name} ({n.display_number}): {n.error}" for n in result.errors)
        raise UpstreamError(
            f"could not read the templates of any Meta number from Meta: {failures}",
            code="meta_sync_failed",
            details={"numbers": [n.model_dump() for n in result.errors]},
        )
    return result


def _number_fields(number: WhatsAppInstance) -> dict[str, Any]:
    return {
        "instance_id": number.id,
        "name": number.name,
        "display_number": number.display_number,
        "waba_id": number.waba_id,
    }


async def _read_waba(
    client: httpx.AsyncClient, cipher: Cipher, settings: Settings, sharing: list[WhatsAppInstance]
) -> list[GraphTemplate] | str:
    """The WABA's templates, read with the first of its numbers that Meta answers; else why not."""
    error = "no access token"
    for number in sharing:
        token = decrypt_credentials(number, cipher).get("access_token", "")
        if not token:
            continue
        try:
            return await list_templates(client, settings.meta_graph_url, number.waba_id or "", token)
        except SendError as exc:
            status = f"HTTP {exc.http_status}, " if exc.http_status else ""
            error = f"Meta's template list failed ({status}code {exc.code}): {exc.title}"
    return error


async def _apply(
    session: AsyncSession, tenant_id: str, scope: str, listed: list[GraphTemplate], now: datetime
) -> tuple[int, int, int]:
    """Upsert the listed templates of a scope and mark REMOVED the stored ones Meta no longer
    lists; (added, updated, removed)."""
    t = MessageTemplateRow
    stored = {
        (row.name, row.language): row
        for row in (await session.scalars(select(t).where(t.tenant_id == tenant_id, t.scope == scope))).all()
    }
    updated = 0
    fresh: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for template in listed:
        key = (template.name, template.language)
        if key in seen:
            continue
        seen.add(key)
        values = _synced_values(template, now)
        row = stored.get(key)
        if row is None:
            fresh.append(
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "scope": scope,
                    "created_at": now,
                    "updated_at": now,
                    **values,
                }
            )
            continue
        if any(getattr(row, column) != value for column, value in values.items() if column != "synced_at"):
            updated += 1
            values["updated_at"] = now
        for column, value in values.items():
            setattr(row, column, value)
    added = await _insert_new(session, fresh)
    gone = [
        row.id for key, row in stored.items()
        if key not in seen and row.status != TemplateStatus.REMOVED.value
    ]  # fmt: skip
    if gone:
        await session.execute(
            update(t)
            .where(t.tenant_id == tenant_id, t.id.in_(gone))
            .values(status=TemplateStatus.REMOVED.value, synced_at=now, updated_at=now)
        )
    await session.flush()
    return added, updated, len(gone)


async def _insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert templates the scope did not have; one a concurrent sync inserted first is left to it
    (same source, same values), so two admins syncing at once never collide."""
    if not rows:
        return 0
    inserted = 0
    for row in rows:  # one statement per row: JSON columns and a few dozen templates per sync
        statement = (
            insert_for(session, templates_table)
            .values(row)
            .on_conflict_do_nothing(index_elements=list(UNIQUE_KEY))
        )
        inserted += (await session.execute(statement.returning(templates_table.c.id))).first() is not None
    return inserted


def _synced_values(template: GraphTemplate, now: datetime) -> dict[str, Any]:
    names = template.parameter_names
    return {
        "source": TemplateSource.META.value,
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "category": template.category or TemplateCategory.UTILITY.value,
        "components": template.components,
        "body": template.body_text,
        "parameter_names": names,
        "parameter_count": len(names),
        "meta_template_id": template.meta_id,
        "synced_at": now,
    }
