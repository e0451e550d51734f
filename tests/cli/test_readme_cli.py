"""The command line as the README shows it to a new user: the only tenant taken without
--tenant-id, numbers named by name, ids never cut, plain lines off a terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from messaging_whatsapp.campaigns.models import CampaignInstance, CampaignMessage
from messaging_whatsapp.campaigns.schemas import CampaignItem, WaitingReason
from messaging_whatsapp.cli.campaigns import status_line
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from tests.cli.test_seed_cli import SeedCli
from tests.helpers import engine_settings, free_port


async def _stored(cli: SeedCli, query: Any) -> list[Any]:
    settings = Settings(_env_file=None, database_url=cli.env["DATABASE_URL"], data_dir=cli.env["DATA_DIR"])  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    try:
        async with context.sessions() as session:
            return list((await session.scalars(query)).all())
    finally:
        await context.close()


async def _numbers_of(cli: SeedCli, campaign_id: str) -> list[str]:
    return await _stored(
        cli, select(CampaignInstance.instance_id).where(CampaignInstance.campaign_id == campaign_id)
    )


@pytest.fixture(params=["fresh_sqlite_url", "fresh_postgres_url"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> SeedCli:
    settings = engine_settings(request.getfixturevalue(request.param), None, "", tmp_path, free_port())
    return SeedCli(settings, "http://127.0.0.1:9")


def test_a_single_tenant_and_named_numbers_need_no_ids(cli: SeedCli) -> None:
    tenant = cli.json("create-tenant --name Loja")["id"]
    assert cli.json("list-conversations") == []
    assert cli.json("list-users") == []
    assert cli.json("list-api-keys") == []
    sim = cli.json(f"bind-tenant --tenant-id {tenant} --display-number +5511940028922 --instance-name sim")

    assert cli.json("pause-instance sim")["status"] == "paused"
    assert cli.json(f"resume-instance {sim['id']}")["status"] == "active"
    campaign = cli.json('campaign-create --name BF --message "Oi {{name}}" --instance sim')
    assert asyncio.run(_numbers_of(cli, campaign["id"])) == [sim["id"]]
    assert "instance nada not found" in cli.fails("campaign-create --name X --message Oi --instance nada")
    # An approved template as a variation, for official numbers (checked by the API's rules).
    templated = cli.json(
        'campaign-create --name T --instance sim --template novidades --template-param "{{name}}"'
    )
    stored = asyncio.run(
        _stored(cli, select(CampaignMessage.template).where(CampaignMessage.campaign_id == templated["id"]))
    )
    assert stored == [{"name": "novidades", "language": "pt_BR", "parameters": ["{{name}}"]}]
    assert "--template-param needs --template" in cli.fails(
        "campaign-create --name U --instance sim --template-param x"
    )

    # Not a terminal: the status as one plain line, the live view's redraws left out.
    line = cli.ok(f"campaign-status {campaign['id']} --no-follow")
    assert (
        line == f"{campaign['id']} draft: 0.0% of 0, pending 0, sent 0, delivered 0, read 0, failed 0, "
        "opted out 0, skipped 0\n"
    )
    # A running campaign that sends nothing says why, on the same line.
    waiting = CampaignItem.model_validate(campaign).model_copy(
        update={
            "status": "running",
            "waiting_reason": WaitingReason(
                code="send_window", message="outside the send window 03:00-03:30"
            ),
        }
    )
    assert status_line(waiting).endswith("; waiting: outside the send window 03:00-03:30")
    cli.ok(f"campaign-cancel {campaign['id']}")
    assert cli.ok(f"campaign-status {campaign['id']}").startswith(f"{campaign['id']} cancelled: ")

    # 80 columns: the ids whole, whatever else has to give.
    for listing, wanted in (("list-bindings", sim["id"]), ("campaign-list", campaign["id"])):
        shown = cli.ok(listing, env={"COLUMNS": "80"})
        assert wanted in shown, shown
        assert max(len(row) for row in shown.splitlines()) <= 80

    other = cli.json("create-tenant --name Outra")["id"]
    for listing in ("list-conversations", "list-users", "list-api-keys"):
        assert "there are several tenants: say which with --tenant-id" in cli.fails(listing)
    assert cli.json("list-users", "--tenant-id", other) == []
    cli.json(f"bind-tenant --tenant-id {other} --display-number +5511940028923 --instance-name s2 --name sim")
    assert "several instances are named 'sim'" in cli.fails("pause-instance sim")
