"""A tenant's raw webhook requests in the DLQ go after its retention days, on every stream backend
(Redis, the queue table on SQLite and on PostgreSQL); the DLQ entries of other tenants, those
that are no raw request and those whose tenant cannot be read stay for the global retention."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.retention.raw_requests import raw_request_tenant
from messaging_whatsapp.retention.service import apply_retention_everywhere
from tests.helpers import create_tenant
from tests.retention.inbox_data import set_retention

GROUP = "workers"


@pytest.fixture(params=["table-sqlite", "table-postgresql", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, stream_prefix: str) -> Settings:
    """A database of this test's own, its streams in the database's queue table or in Redis (under
    this test's prefix, deleted after)."""
    database = "fresh_sqlite_url" if request.param == "table-sqlite" else "fresh_postgres_url"
    redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        request.getfixturevalue("redis_cleanup")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=request.getfixturevalue(database),
        redis_url=redis_url,
        stream_prefix=stream_prefix,
        data_dir=tmp_path,
    )


@pytest.fixture
async def context(settings: Settings) -> AsyncIterator[EngineContext]:
    """An engine context on those settings."""
    context = await EngineContext.open(settings)
    yield context
    await context.close()


def raw_request(tenant_id: str | None, n: int) -> dict[str, str]:
    """An inbound entry as the webhook receiver appends it."""
    fields = {
        "provider": "simulator",
        "instance_id": f"instance-{n}",
        "content_type": "application/json",
        "body": json.dumps({"from": "5511987654321", "text": f"pedido {n}"}),
        "url": "https://engine.example.com/webhooks/simulator",
        "received_at": utcnow().isoformat(),
    }
    if tenant_id is not None:
        fields["tenant_id"] = tenant_id
    return fields


async def dead_letter(context: EngineContext, stream: str, entries: list[dict[str, str]]) -> None:
    """Append the entries to `stream` and dead-letter them, as a worker does when they keep failing."""
    await context.streams.ensure_group(stream, GROUP)
    await context.streams.append_many(stream, entries)
    for entry in await context.streams.read(stream, GROUP, "w1", count=len(entries)):
        await context.streams.dead_letter(stream, GROUP, entry, "apply failed: boom")


async def dlq(context: EngineContext) -> list[dict[str, str]]:
    """The original fields of every DLQ entry, oldest first (a non-record's own fields)."""
    entries = await context.streams.entries_before(
        context.names.dlq, utcnow() + timedelta(days=1), count=1000
    )
    return [
        json.loads(entry.fields["fields"]) if "fields" in entry.fields else entry.fields for entry in entries
    ]


async def test_a_tenants_raw_requests_go_after_its_days_and_the_rest_stays(context: EngineContext) -> None:
    weekly = await create_tenant(context, "Loja A")
    monthly = await create_tenant(context, "Loja B")
    forever = await create_tenant(context, "Loja C")
    await set_retention(context, weekly, raw_requests=7)
    await set_retention(context, monthly, raw_requests=30)
    names = context.names
    await dead_letter(
        context,
        names.inbound,
        [raw_request(weekly, 1), raw_request(monthly, 2), raw_request(forever, 3), raw_request(weekly, 4)],
    )
    await dead_letter(context, names.inbound, [raw_request(None, 5)])
    # Not raw requests: a message the sender gave up on, and an entry that is no DLQ record.
    await dead_letter(context, names.outbound, [{"message_id": "m-1", "tenant_id": weekly}])
    await context.streams.append(names.dlq, {"note": "appended by hand"})

    assert [r.total for r in await apply_retention_everywhere(context, utcnow())] == [0, 0]
    assert len(await dlq(context)) == 7

    eight_days_on = utcnow() + timedelta(days=8)
    dry = await apply_retention_everywhere(context, eight_days_on, dry_run=True)
    assert [(r.tenant_id, r.as_json()["raw_requests"]["count"]) for r in dry] == [(weekly, 2), (monthly, 0)]
    assert len(await dlq(context)) == 7

    reports = await apply_retention_everywhere(context, eight_days_on)

    assert [(r.tenant_id, r.as_json()["raw_requests"]["count"]) for r in reports] == [
        (weekly, 2),
        (monthly, 0),
    ]
    assert [
        fields.get("instance_id") or fields.get("message_id") or fields["note"]
        for fields in await dlq(context)
    ] == [
        "instance-2",
        "instance-3",
        "instance-5",
        "m-1",
        "appended by hand",
    ]
    month_on = utcnow() + timedelta(days=31)
    [_, monthly_report] = await apply_retention_everywhere(context, month_on)
    assert monthly_report.as_json()["raw_requests"]["count"] == 1
    assert len(await dlq(context)) == 4


def test_a_raw_requests_tenant_is_read_from_the_inbound_entry_it_records() -> None:
    record = {"stream": "bc:whatsapp:inbound", "fields": json.dumps({"tenant_id": "t1", "body": "{}"})}
    assert raw_request_tenant(record, "bc:whatsapp:inbound") == "t1"
    assert raw_request_tenant(record, "other:bc:whatsapp:inbound") is None
    assert raw_request_tenant({**record, "fields": "not json"}, "bc:whatsapp:inbound") is None
    assert raw_request_tenant({**record, "fields": json.dumps({"body": "{}"})}, "bc:whatsapp:inbound") is None
    assert raw_request_tenant({"note": "x"}, "bc:whatsapp:inbound") is None
