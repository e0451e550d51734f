"""`publish-event` on both databases, as an operator runs it: the entry it appends is the
events:materials format, an id published twice is handled once, and mistakes are one-line errors."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.notifications.models import InboundEvent
from messaging_whatsapp.worker.notifications import NotificationsWorker
from tests.cli.test_cli import Cli


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """The CLI on a fresh embedded or PostgreSQL database."""
    if request.param == "sqlite":
        return Cli(request.getfixturevalue("fresh_sqlite_url"), tmp_path)
    return Cli(request.getfixturevalue("fresh_postgres_url"), tmp_path)


async def test_publish_event_appends_the_materials_format(cli: Cli) -> None:
    tenant_id = cli.json("create-tenant", "--name", "Loja")["id"]
    payload = json.dumps({"customer_phone": "+5511988887777", "customer_name": "Ana"})
    args = ["publish-event", "--tenant-id", tenant_id, "--type", "quote_created", "--payload", payload]
    first = cli.json(*args, "--id", "quote-1")
    again = cli.json(*args, "--id", "quote-1")
    assert (first["id"], first["status"], again["id"]) == ("quote-1", "accepted", "quote-1")

    refused = cli.run(
        "publish-event", "--tenant-id", tenant_id, "--type", "quote_created", "--payload", "[1]"
    )
    assert (refused.returncode, refused.stderr.strip()) == (1, "error: --payload must be a JSON object")
    unknown = cli.run("publish-event", "--tenant-id", "nope", "--type", "quote_created", "--payload", "{}")
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "error: tenant nope not found")

    settings = Settings(_env_file=None, database_url=cli.env["DATABASE_URL"], data_dir=cli.env["DATA_DIR"])  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    try:
        stored = await context.streams.entries_before(
            context.names.materials, utcnow() + timedelta(minutes=1)
        )
        assert [entry.fields["event_id"] for entry in stored] == ["quote-1", "quote-1"]
        fields = stored[0].fields
        assert (fields["event_type"], fields["tenant_id"]) == ("quote_created", tenant_id)
        assert json.loads(fields["payload"]) == json.loads(payload)
        assert "occurred_at" in fields
        assert (await NotificationsWorker(context).run_once(block_ms=0)).read == 2
        async with context.sessions() as session:
            rows = (await session.scalars(select(InboundEvent))).all()
        assert [(row.event_id, row.outcome, row.reason) for row in rows] == [
            ("quote-1", "skipped", "no_mapping")
        ]
    finally:
        await context.close()
