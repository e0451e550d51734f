"""A contact list's phones are read as the API reads them: a national form is a number of the
tenant's default country, and a row that is not a valid number is reported with its line."""

from __future__ import annotations

from sqlalchemy import select

from messaging_whatsapp.campaigns import service
from messaging_whatsapp.campaigns.contacts import add_contacts
from messaging_whatsapp.campaigns.importing import read_csv
from messaging_whatsapp.campaigns.models import Campaign
from messaging_whatsapp.campaigns.schemas import CampaignCreate, ImportReport
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Contact
from tests.helpers import create_tenant

CSV = (
    "telefone;nome\n(11) 98765-4321;Maria\n11987654321;Maria de novo\n+1 415 555 2671;John\n(11) 9876;Erro\n"
)


async def _import(context: EngineContext, tenant_id: str, csv: str) -> tuple[ImportReport, set[str]]:
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session, tenant_id, CampaignCreate(name="Lista"), user_id=None, now=utcnow()
        )
        fresh = await session.get(Campaign, campaign.id)
        assert fresh is not None
        report = await add_contacts(session, fresh, read_csv(csv), now=utcnow())
        phones = set(
            (await session.scalars(select(Contact.phone).where(Contact.tenant_id == tenant_id))).all()
        )
    return report, phones


async def test_a_brazilian_list_reads_national_numbers_as_brazilian(context: EngineContext) -> None:
    report, phones = await _import(context, await create_tenant(context), CSV)
    assert (report.added, report.duplicates, report.invalid) == (2, 1, 1)
    assert phones == {"+5511987654321", "+14155552671"}
    [rejected] = report.rejected
    assert (rejected.line, rejected.phone) == (5, "(11) 9876")
    assert "'(11) 9876' is not a valid phone number of BR" in rejected.reason


async def test_an_american_tenants_list_reads_national_numbers_as_american(context: EngineContext) -> None:
    tenant_id = await create_tenant(context, default_country="US")
    csv = "phone\n(415) 555-2671\n(11) 98765-4321\n+55 11 98765-4321\n5511987654321\n"
    report, phones = await _import(context, tenant_id, csv)
    assert (report.added, report.invalid) == (2, 2)
    assert phones == {"+14155552671", "+5511987654321"}
    assert [(row.line, row.phone) for row in report.rejected] == [
        (3, "(11) 98765-4321"),
        (5, "5511987654321"),
    ]
    assert all("of US" in row.reason for row in report.rejected)
