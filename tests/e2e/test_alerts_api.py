"""The alerts API on a running engine, both deployments: supervisors and admins list alerts and rules,
only admins change a rule, each tenant sees and changes only its own, bad input is a 4xx naming
the problem; the workers keep the alert signals as webhooks arrive and messages go."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update

from messaging_whatsapp.alerts.models import SendMinute, WebhookMark
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.simulator import build_inbound_message_body
from messaging_whatsapp.worker.scheduler import Scheduler
from tests.e2e.conftest import RunningEngine, auth_headers
from tests.helpers import bind, create_tenant, wait_until


async def _critical_number(engine: RunningEngine, tenant_id: str, name: str) -> str:
    instance, _ = await bind(
        engine.context, tenant_id, provider="simulator", display_number="+551140028922", instance_name=name
    )
    async with engine.context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance).where(WhatsAppInstance.id == instance.id).values(health_score=12.0)
        )
    return instance.id


async def test_alerts_and_rules_by_role_and_tenant(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    other_id = await create_tenant(engine.context, "Outra")
    admin = await auth_headers(engine, tenant_id, "ana@loja.com.br", "admin")
    supervisor = await auth_headers(engine, tenant_id, "lia@loja.com.br", "supervisor")
    agent = await auth_headers(engine, tenant_id, "bia@loja.com.br", "agent")
    other_admin = await auth_headers(engine, other_id, "rui@outra.com.br", "admin")
    instance_id = await _critical_number(engine, tenant_id, "sim-alerta")
    await _critical_number(engine, other_id, "sim-outra")
    await Scheduler(engine.context).evaluate_alerts()

    listed = await engine.http.get("/api/v1/alerts", params={"state": "open"}, headers=supervisor)
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert (item["kind"], item["instance_id"], item["value"], item["threshold"]) == (
        "health_critical",
        instance_id,
        12.0,
        40.0,
    )
    assert (item["state"], item["severity"], item["resolved_at"]) == ("open", "critical", None)
    assert (await engine.http.get("/api/v1/alerts?state=resolved", headers=admin)).json()["items"] == []
    assert len((await engine.http.get("/api/v1/alerts", headers=other_admin)).json()["items"]) == 1
    assert (await engine.http.get("/api/v1/alerts", headers=agent)).status_code == 403
    assert (await engine.http.get("/api/v1/alerts/rules", headers=agent)).status_code == 403

    rules = (await engine.http.get("/api/v1/alerts/rules", headers=supervisor)).json()["items"]
    assert {rule["kind"]: rule["threshold"] for rule in rules} == {
        "send_error_rate": 5.0,
        "provider_latency": 5000.0,
        "consecutive_failures": 3.0,
        "number_disconnected": 60.0,
        "health_critical": 40.0,
        "webhook_silence": 1800.0,
    }
    changed = await engine.http.put(
        "/api/v1/alerts/rules/health_critical", json={"threshold": 10}, headers=supervisor
    )
    assert (changed.status_code, changed.json()["error"]["code"]) == (403, "forbidden")
    changed = await engine.http.put(
        "/api/v1/alerts/rules/send_error_rate",
        json={"threshold": 2.5, "window_seconds": 600, "min_count": 50},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["threshold"], changed.json()["window_seconds"], changed.json()["min_count"]) == (
        2.5,
        600,
        50,
    )
    disabled = await engine.http.put(
        "/api/v1/alerts/rules/health_critical", json={"enabled": False}, headers=admin
    )
    assert disabled.json()["enabled"] is False
    await Scheduler(engine.context).evaluate_alerts()

    resolved = (await engine.http.get("/api/v1/alerts?state=resolved", headers=admin)).json()["items"]
    assert [(a["id"], a["state"]) for a in resolved] == [(item["id"], "resolved")]
    # The other tenant's rules and alert are its own.
    other_rules = (await engine.http.get("/api/v1/alerts/rules", headers=other_admin)).json()["items"]
    assert all(rule["enabled"] for rule in other_rules)
    assert {r["kind"]: r["threshold"] for r in other_rules}["send_error_rate"] == 5.0
    other_open = (await engine.http.get("/api/v1/alerts?state=open", headers=other_admin)).json()["items"]
    assert len(other_open) == 1


async def test_bad_input_is_a_4xx_naming_the_problem(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id)
    for path, body, status, code, words in (
        ("/api/v1/alerts/rules/everything", {"enabled": False}, 404, "not_found", "no alert rule"),
        ("/api/v1/alerts/rules/send_error_rate", {"threshold": 0}, 422, "invalid_rule", "threshold"),
        ("/api/v1/alerts/rules/send_error_rate", {"threshold": 101}, 422, "invalid_rule", "threshold"),
        ("/api/v1/alerts/rules/send_error_rate", {"window_seconds": 30}, 422, "invalid_rule", "window"),
        ("/api/v1/alerts/rules/health_critical", {"min_count": 5}, 422, "invalid_rule", "no min_count"),
        ("/api/v1/alerts/rules/health_critical", {"threshold": "high"}, 422, "validation_error", "threshold"),
        ("/api/v1/alerts/rules/health_critical", {"severity": "low"}, 422, "validation_error", "severity"),
    ):
        answer = await engine.http.put(path, json=body, headers=admin)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (body, answer.text)
        assert words in answer.text, answer.text
    for params in ({"state": "closed"}, {"limit": 0}, {"cursor": "nonsense"}):
        answer = await engine.http.get("/api/v1/alerts", params=params, headers=admin)
        assert 400 <= answer.status_code < 500, (params, answer.text)


async def test_alerts_are_paged(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id)
    for index in range(3):
        await _critical_number(engine, tenant_id, f"sim-page-{index}")
    await Scheduler(engine.context).evaluate_alerts()
    first = (await engine.http.get("/api/v1/alerts?limit=2", headers=admin)).json()
    assert len(first["items"]) == 2
    second = (
        await engine.http.get(
            "/api/v1/alerts", params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin
        )
    ).json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = {a["id"] for a in first["items"]} | {a["id"] for a in second["items"]}
    assert len(ids) == 3


async def test_the_workers_keep_the_alert_signals(engine: RunningEngine) -> None:
    tenant_id = await create_tenant(engine.context)
    admin = await auth_headers(engine, tenant_id)
    instance, url = await bind(
        engine.context,
        tenant_id,
        provider="simulator",
        display_number="+551140028922",
        instance_name="sim-sinais",
    )
    body = build_inbound_message_body("sim-sinais", "wamid-1", "5511987654321", "Oi", "Maria", 1763035300)
    answer = await engine.http.post(
        urlsplit(url).path, content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200, answer.text

    async def marked() -> WebhookMark | None:
        async with engine.context.sessions() as session:
            return await session.get(WebhookMark, instance.id)

    mark = await wait_until(marked, what="the webhook mark")
    assert utcnow() - mark.received_at < timedelta(minutes=2)

    sent = await engine.http.post(
        "/api/v1/messages", json={"to": "+5511987654321", "text": "Olá"}, headers=admin
    )
    assert sent.status_code == 202, sent.text

    async def counted() -> SendMinute | None:
        async with engine.context.sessions() as session:
            row = await session.scalar(select(SendMinute).where(SendMinute.instance_id == instance.id))
            return row if row is not None and row.sent + row.failed >= 1 else None

    minute = await wait_until(counted, what="the send minute")
    assert minute.tenant_id == tenant_id
    assert minute.latency_calls == minute.sent + minute.failed
