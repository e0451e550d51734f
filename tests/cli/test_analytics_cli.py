"""`rebuild-analytics` recomputes the rollup from the stored messages, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from messaging_whatsapp.analytics.models import hours_table
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from tests.cli.test_cli import Cli
from tests.retention.inbox_data import customer_writes, number


@pytest.fixture(params=["sqlite", "postgresql"])
def analytics_cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """The CLI on a fresh embedded or PostgreSQL database."""
    if request.param == "sqlite":
        return Cli(request.getfixturevalue("fresh_sqlite_url"), tmp_path)
    return Cli(request.getfixturevalue("fresh_postgres_url"), tmp_path)


async def test_rebuild_analytics_counts_every_stored_message(analytics_cli: Cli, tmp_path: Path) -> None:
    cli = analytics_cli
    tenant = cli.json("create-tenant", "--name", "Loja")
    settings = Settings(_env_file=None, database_url=cli.env["DATABASE_URL"], data_dir=tmp_path)  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    try:
        instance_id = await number(context, tenant["id"])
        await customer_writes(context, tenant["id"], instance_id, "5511987654321", days_ago=3)
        await customer_writes(context, tenant["id"], instance_id, "5511987654322")

        rebuilt = cli.json("rebuild-analytics")
        again = cli.json("rebuild-analytics", "--tenant-id", tenant["id"])

        assert rebuilt["hours"] >= 2
        assert again["hours"] == rebuilt["hours"]
        async with context.sessions() as session:
            inbound = await session.scalar(
                select(func.sum(hours_table.c.inbound)).where(hours_table.c.tenant_id == tenant["id"])
            )
        assert inbound == 2
        plain = cli.run("rebuild-analytics")
        assert (plain.returncode, "recomputed" in plain.stdout) == (0, True)
    finally:
        await context.close()
