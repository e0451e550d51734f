"""`sync-templates` and `list-templates` as a script runs them, on both databases: the tenant's Meta
numbers synced from the Meta fake, a refused token said on stderr with exit 1, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_seed_cli import SeedCli
from tests.fakes.http import FakeHttpServer
from tests.fakes.meta import MetaGraphFake, meta_template
from tests.helpers import engine_settings, free_port

TOKEN = "EAAG-cli-templates"
WABA = "104857293847561"


@pytest.fixture
def meta() -> Iterator[tuple[MetaGraphFake, str]]:
    fake = MetaGraphFake(token=TOKEN, phone_number_id="109283746501928", waba_id=WABA)
    fake.templates = [
        meta_template("pedido_enviado", "Olá {{1}}, seu pedido {{2}} saiu."),
        meta_template("promo", "Promo {{1}}", status="PENDING", category="MARKETING"),
    ]
    with FakeHttpServer(fake) as server:
        yield fake, f"{server.base_url}/v23.0"


@pytest.fixture(params=["fresh_sqlite_url", "fresh_postgres_url"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> SeedCli:
    settings = engine_settings(request.getfixturevalue(request.param), None, "", tmp_path, free_port())
    return SeedCli(settings, "http://127.0.0.1:9")


def test_sync_and_list_templates(cli: SeedCli, meta: tuple[MetaGraphFake, str]) -> None:
    fake, graph_url = meta
    env = {"META_GRAPH_URL": graph_url}
    tenant = cli.json("create-tenant --name Loja")["id"]
    bind = (
        f"bind-tenant --tenant-id {tenant} --provider meta --display-number +551140028922 "
        f"--phone-number-id 109283746501928 --waba-id {WABA} --access-token {TOKEN} --app-secret segredo-app"
    )
    cli.json(bind)

    synced = cli.json(f"sync-templates --tenant-id {tenant}", env=env)
    assert (synced["added"], synced["updated"], synced["removed"]) == (2, 0, 0)
    assert "templates: 0 added, 0 updated, 0 removed" in cli.ok("sync-templates", env=env)
    listed = cli.json(f"list-templates --tenant-id {tenant}")
    assert [(t["name"], t["status"], t["parameter_count"]) for t in listed] == [
        ("pedido_enviado", "APPROVED", 2),
        ("promo", "PENDING", 1),
    ]
    assert [t["name"] for t in cli.json("list-templates --status APPROVED")] == ["pedido_enviado"]
    assert "pedido_enviado" in cli.ok("list-templates")

    fake.token = "EAAG-another-token"
    error = cli.fails("sync-templates", env=env)
    assert "meta_sync_failed" not in error
    assert "+551140028922" in error
    assert "190" in error
    assert "Traceback" not in error
