"""A person's data from the terminal (LGPD): `erase-contact` and `export-contact`."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.cli.support import JsonOption, in_session, print_json, run_engine, stdout
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.inbox.models import Contact
from messaging_whatsapp.phones import InvalidPhone, phone_variants
from messaging_whatsapp.privacy import service
from messaging_whatsapp.privacy.export import export_contact as build_export
from messaging_whatsapp.privacy.schemas import ContactExport, ErasureReport
from messaging_whatsapp.tenancy import service as tenancy_service

PhoneOption = Annotated[
    str,
    typer.Option(
        help="The person's phone, e.g. +5511987654321 or (11) 98765-4321 (a number of the tenant's country)."
    ),
]


async def _phone(session: AsyncSession, tenant_id: str, raw: str) -> str:
    """The tenant's reading of a typed phone (its default country), after checking the tenant."""
    await tenancy_service.get_tenant(session, tenant_id)
    try:
        return await tenancy_service.tenant_phone(session, tenant_id, raw)
    except InvalidPhone as exc:
        raise InvalidPhone(f"--phone: {exc.message}", details=exc.details) from None


def erase_contact(
    tenant_id: Annotated[str, typer.Option()], phone: PhoneOption, as_json: JsonOption = False
) -> None:
    """Erase everything held about a person (LGPD); if they had opted out, they stay unreachable."""

    async def work(context: EngineContext) -> ErasureReport:
        wanted = await in_session(context, lambda s: _phone(s, tenant_id, phone))
        erasure = await service.erase(context, tenant_id, phone=wanted)
        return ErasureReport.model_validate(erasure, from_attributes=True)

    report = run_engine(work)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    stdout.print(
        f"erased: {report.messages} messages, {report.conversations} conversations, "
        f"{report.tickets} tickets, {report.campaign_contacts} campaign rows, "
        f"{report.raw_requests} raw requests, {report.events} events; "
        f"{report.consents_blanked} consent entries blanked"
    )
    if report.suppressed:
        stdout.print("they had opted out: they stay on the suppression list (an HMAC of the phone only)")


def export_contact(tenant_id: Annotated[str, typer.Option()], phone: PhoneOption) -> None:
    """Print everything held about a person as JSON (LGPD's right of access)."""

    async def work(context: EngineContext) -> ContactExport:
        async with context.sessions() as session:
            wanted = await _phone(session, tenant_id, phone)
            contact_id = await session.scalar(
                select(Contact.id)
                .where(Contact.tenant_id == tenant_id, Contact.phone.in_(phone_variants(wanted)))
                .limit(1)
            )
            if contact_id is None:
                raise NotFound(f"no contact with phone {wanted}")
            return await build_export(session, tenant_id, contact_id, utcnow())

    print_json(run_engine(work).model_dump(mode="json"))
