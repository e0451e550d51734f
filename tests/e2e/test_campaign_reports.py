"""The campaign API's reports over HTTP, on both deployments: the timeline and the CSV exports of
contacts and logs, tenant-scoped and for supervisors and admins only."""

from __future__ import annotations

import csv
import io

from sqlalchemy import update

from messaging_whatsapp.campaigns.models import CampaignContact
from messaging_whatsapp.db import utcnow
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import bind, create_tenant


async def test_the_timeline_and_the_exports_answer_the_callers_campaign_only(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    number, _ = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name="sim-reports",
    )
    headers = await auth_headers(engine, tenant_id, "sara@loja.com.br", role="supervisor")
    body = {
        "name": "Páscoa",
        "instance_ids": [number.id],
        "messages": [{"content": "Oi {{name}}"}],
        "contacts": [{"phone": "+5511987654001", "name": "Lia"}, {"phone": "+5511987654002", "name": "Rui"}],
    }
    created = await engine.http.post("/api/v1/campaigns", json=body, headers=headers)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    sent_at = utcnow().replace(second=10, microsecond=0)
    async with engine.context.sessions() as session, session.begin():
        await session.execute(
            update(CampaignContact)
            .where(CampaignContact.campaign_id == campaign_id)
            .values(status="sent", instance_id=number.id, sent_at=sent_at)
        )

    timeline = await engine.http.get(f"/api/v1/campaigns/{campaign_id}/timeline", headers=headers)
    assert timeline.status_code == 200, timeline.text
    found = timeline.json()
    assert found["bucket"] == "minute"
    assert (found["sent"], found["delivered"], found["read"], found["failed"]) == ([2], [0], [0], [0])
    assert [(n["display_number"], n["sent"]) for n in found["numbers"]] == [("+551140028922", [2])]
    hourly = await engine.http.get(f"/api/v1/campaigns/{campaign_id}/timeline?bucket=hour", headers=headers)
    assert hourly.json()["times"][0].startswith(sent_at.strftime("%Y-%m-%dT%H:00:00"))
    wrong = await engine.http.get(f"/api/v1/campaigns/{campaign_id}/timeline?bucket=week", headers=headers)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "validation_error")

    contacts = await engine.http.get(f"/api/v1/campaigns/{campaign_id}/contacts/export", headers=headers)
    assert contacts.status_code == 200
    assert contacts.headers["content-type"].startswith("text/csv")
    assert "attachment" in contacts.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(contacts.text)))
    assert [(row[0], row[1], row[2]) for row in rows[1:]] == [
        ("+5511987654001", "Lia", "sent"),
        ("+5511987654002", "Rui", "sent"),
    ]
    failed = await engine.http.get(
        f"/api/v1/campaigns/{campaign_id}/contacts/export?status=failed", headers=headers
    )
    assert len(list(csv.reader(io.StringIO(failed.text)))) == 1
    logs = await engine.http.get(
        f"/api/v1/campaigns/{campaign_id}/logs/export?log_type=created", headers=headers
    )
    assert [row[1] for row in list(csv.reader(io.StringIO(logs.text)))[1:]] == ["created"]

    # Another tenant's admin finds nothing; an agent of the same tenant may not ask.
    other = await auth_headers(engine, await create_tenant(engine.context, "Outra"), "rui@outra.com.br")
    agent = await auth_headers(engine, tenant_id, "ivo@loja.com.br", role="agent")
    for path in ("timeline", "contacts/export", "logs/export"):
        url = f"/api/v1/campaigns/{campaign_id}/{path}"
        assert (await engine.http.get(url, headers=other)).status_code == 404
        assert (await engine.http.get(url, headers=agent)).status_code == 403
