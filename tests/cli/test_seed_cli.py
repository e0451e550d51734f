"""Seed 001's command-line examples, run as the seed prints them (`python -m messaging_whatsapp.cli
...`, here the same app in this process), against a running embedded engine and a fake Evolution
API, on both databases.

Only the seed's placeholders are filled in: the tenant's id for `uuid-do-tenant` and `UUID`, the
fake gateway's address and key for Evolution's. `WHATSAPP_PROVIDER=stub` (seed 001's development
mode) is the simulator.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.config import Settings
from tests.cli.runner import Completed, run_cli
from tests.fakes.evolution import FakeEvolution
from tests.fakes.http import FakeHttpServer
from tests.helpers import ServerThread, engine_settings, example_bytes, free_port, wuzapi_signature

# Seed 001, "Configuracao de Tenant" and "CLI", verbatim but for the program's name.
SEED_BIND_META = """bind-tenant \\
  --tenant-id "uuid-do-tenant" \\
  --provider "meta" \\
  --phone-number-id "ID_DO_NUMERO" \\
  --waba-id "ID_DA_CONTA_WABA" \\
  --display-number "+5511999999999" \\
  --access-token "TOKEN_DE_ACESSO" \\
  --verify-token "TOKEN_DE_VERIFICACAO\""""
SEED_EVOLUTION_CREATE = """evolution-create-instance \\
  --tenant-id "uuid-do-tenant" \\
  --instance-name "tenant_123" \\
  --api-url "https://evolution-api.example.com" \\
  --api-key "SUA_API_KEY" \\
  --display-number "+5511999999999\""""
SEED_EVOLUTION_CONNECT = """evolution-connect \\
  --instance-name "tenant_123" \\
  --show-qr"""
SEED_LIST_BINDINGS = "list-bindings"
SEED_LIST_CONVERSATIONS = "list-conversations --tenant-id UUID"
SEED_SEND_TEST = 'send-test --to +5511999999999 --text "Ola!"'
SEED_STREAM_INFO = "stream-info --stream bc:whatsapp:inbound"
SEED_DLQ_INFO = "stream-info --stream bc:whatsapp:dlq"
SEED_REPLAY_DLQ = "replay-dlq --limit 10"
# The CLI section creates "tenant_123" again, without a display number: run under another name,
# since the configuration section's example created that one.
SEED_EVOLUTION_CREATE_CLI = """evolution-create-instance \\
  --tenant-id UUID \\
  --instance-name "tenant_456" \\
  --api-url "https://evolution-api.example.com" \\
  --api-key "SUA_API_KEY\""""
SEED_EVOLUTION_LIST = """evolution-list-instances \\
  --api-url "https://evolution-api.example.com" \\
  --api-key "SUA_API_KEY\""""
SEED_EVOLUTION_STATUS = """evolution-instance-status \\
  --instance-name "tenant_123\""""
SEED_EVOLUTION_LOCAL = """evolution-create-instance \\
  --tenant-id UUID \\
  --instance-name "test_instance" \\
  --api-url "http://localhost:8080" \\
  --api-key "test-key\""""
SEED_KEY = "SUA_API_KEY"


class SeedCli:
    """Runs seed 001's commands (in this process, as `python -m messaging_whatsapp.cli` would run
    them: the same app, arguments and environment), with seed 001's environment."""

    def __init__(self, settings: Settings, evolution_url: str) -> None:
        self.evolution_url = evolution_url
        self.tenant_id = ""
        self.env: dict[str, str | None] = {
            name: None for name in os.environ if name.startswith(("EVOLUTION_", "WUZAPI_", "WHATSAPP_"))
        }
        self.env.update(
            {
                "REDIS_URL": None,
                "STREAM_PREFIX": settings.stream_prefix,
                "DATABASE_URL": settings.database_url,
                "DATA_DIR": str(settings.data_dir),
                "PUBLIC_URL": settings.public_url,
                "WHATSAPP_PROVIDER": "stub",
                "WHATSAPP_APP_SECRET": "seu_app_secret_do_facebook",
                "META_GRAPH_URL": "http://127.0.0.1:9/graph",
                "OUTBOUND_ALLOW_PRIVATE": "true",
            }
        )

    def run(self, command: str, *extra: str, env: dict[str, str] | None = None) -> Completed:
        filled = (
            command.replace("uuid-do-tenant", self.tenant_id)
            .replace("UUID", self.tenant_id)
            .replace("https://evolution-api.example.com", self.evolution_url)
            .replace("http://localhost:8080", self.evolution_url)
            .replace("test-key", SEED_KEY)
            .replace("\\\n", " ")  # a shell's line continuation
        )
        return run_cli([*shlex.split(filled), *extra], {**self.env, **(env or {})})

    def ok(self, command: str, *extra: str, env: dict[str, str] | None = None) -> str:
        result = self.run(command, *extra, env=env)
        assert result.returncode == 0, (command, result.stderr)
        return result.stdout

    def json(self, command: str, *extra: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.ok(command, *extra, "--json", env=env))

    def fails(self, command: str, *extra: str, env: dict[str, str] | None = None) -> str:
        result = self.run(command, *extra, env=env)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result.stderr


@pytest.fixture(params=["fresh_sqlite_url", "fresh_postgres_url"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """An embedded engine (API, webhook, workers) serving a database of this test's own; the
    simulator reads every message at once, so a followed send ends quickly."""
    port = free_port()
    settings = engine_settings(request.getfixturevalue(request.param), None, "", tmp_path, port)
    settings = settings.model_copy(
        update={"simulator_failure_rate": 0.0, "simulator_read_rate": 1.0, "simulator_receipt_delay_ms": 10}
    )
    with ServerThread(create_app(settings, Role.ALL), port, settings):
        yield settings


@pytest.fixture
def evolution() -> Iterator[tuple[FakeEvolution, FakeHttpServer]]:
    fake = FakeEvolution(global_key=SEED_KEY)
    with FakeHttpServer(fake, hold_seconds=2) as server:
        yield fake, server


def test_every_example_of_seed_001_runs_as_printed(
    engine: Settings, evolution: tuple[FakeEvolution, FakeHttpServer]
) -> None:
    fake, server = evolution
    cli = SeedCli(engine, server.base_url)
    cli.tenant_id = cli.json("create-tenant --name Loja")["id"]

    # Development mode: WHATSAPP_PROVIDER=stub binds a simulator when --provider is not given, and
    # --provider stub is the simulator too.
    bind = f"bind-tenant --tenant-id {cli.tenant_id} --display-number"
    by_default = cli.json(f"{bind} +5511940028922 --instance-name sim")
    by_name = cli.json(f"{bind} +5511940028923 --instance-name sim2 --provider stub")
    assert (by_default["provider"], by_name["provider"]) == ("simulator", "simulator")
    unknown = cli.fails(
        f"{bind} +5511940028924 --instance-name x", env={"WHATSAPP_PROVIDER": "carrier-pigeon"}
    )
    assert "WHATSAPP_PROVIDER: unknown provider 'carrier-pigeon'" in unknown

    # One tenant: send-test needs no --tenant-id; it follows the message to read.
    sent = cli.ok(SEED_SEND_TEST)
    assert "read" in sent

    meta = cli.json(SEED_BIND_META)
    assert (meta["provider"], meta["display_number"]) == ("meta", "+5511999999999")
    created = cli.json(SEED_EVOLUTION_CREATE)
    assert (created["instance_name"], created["display_number"]) == ("tenant_123", "+5511999999999")
    assert fake.instances["tenant_123"].webhook is not None
    drawn = cli.ok(SEED_EVOLUTION_CONNECT)
    assert set("█▀▄") & set(drawn)

    # Without a display number: bound now, the number learnt once a phone is linked.
    unlinked = cli.json(SEED_EVOLUTION_CREATE_CLI)
    assert unlinked["display_number"] == ""
    local = cli.json(SEED_EVOLUTION_LOCAL)
    assert (local["instance_name"], local["display_number"]) == ("test_instance", "")
    fake.instances["test_instance"].state = "open"
    fake.instances["test_instance"].owner_jid = "5511988887777@s.whatsapp.net"
    linked = cli.json('evolution-instance-status --instance-name "test_instance"')
    assert linked["state"] == "open"

    listed = {item["name"]: item for item in cli.json(SEED_EVOLUTION_LIST)}
    assert listed["tenant_123"]["bound_instance_id"] == created["id"]
    status = cli.json(SEED_EVOLUTION_STATUS)
    assert (status["instance_id"], status["state"]) == (created["id"], "connecting")

    bindings = {item["id"]: item for item in cli.json(SEED_LIST_BINDINGS)}
    assert bindings[local["id"]]["display_number"] == "+5511988887777"
    assert bindings[unlinked["id"]]["display_number"] == ""
    assert "tenant_123" in cli.ok(SEED_LIST_BINDINGS)
    [conversation] = cli.json(SEED_LIST_CONVERSATIONS)
    assert conversation["contact"]["phone"] == "+5511999999999"

    [inbound] = cli.json(SEED_STREAM_INFO)
    assert inbound["stream"] == "bc:whatsapp:inbound"
    assert [stream["stream"] for stream in cli.json(SEED_DLQ_INFO)] == ["bc:whatsapp:dlq"]
    assert "unknown stream" in cli.fails("stream-info --stream bc:whatsapp:nada")
    assert cli.json(SEED_REPLAY_DLQ) == {"replayed": 0}

    # Several tenants: send-test says to name one, and sends with --tenant-id.
    other = cli.json("create-tenant --name Outra")["id"]
    cli.json(f"bind-tenant --tenant-id {other} --display-number +5521940028925 --instance-name sim-outra")
    refused = cli.fails(SEED_SEND_TEST)
    assert "there are several tenants: say which with --tenant-id" in refused
    assert "several tenants" in cli.fails(SEED_LIST_CONVERSATIONS.replace(" --tenant-id UUID", ""))
    followed = cli.json(SEED_SEND_TEST, "--tenant-id", other)
    assert (followed["instance_id"], followed["status"]) == (
        cli.json(SEED_LIST_BINDINGS, "--tenant-id", other)[0]["id"],
        "read",
    )


def test_seed_003s_webhook_path_is_an_alias_of_the_wuzapi_webhook(engine: Settings) -> None:
    cli = SeedCli(engine, "http://127.0.0.1:9")
    cli.tenant_id = cli.json("create-tenant --name Loja")["id"]
    hmac_key = "a8F3kL9pQ2wE7rT5yU1iO4pA6sD0fG3hJ5"
    number = cli.json(
        f"bind-tenant --tenant-id {cli.tenant_id} --provider wuzapi --instance-name loja-centro "
        f"--api-url https://wuz.example.com --api-key wuz-token --hmac-key {hmac_key} "
        "--display-number +551140028922"
    )
    body = example_bytes("wuzapi_message.json")
    path = f"/api/v1/whatsapp/w/webhook/{number['id']}"
    with httpx.Client(base_url=engine.public_url, timeout=10) as http:
        signed = {"content-type": "application/json", "x-hmac-signature": wuzapi_signature(body, hmac_key)}
        accepted = http.post(path, content=body, headers=signed)
        assert (accepted.status_code, accepted.json()["provider"]) == (200, "wuzapi")
        forged = {**signed, "x-hmac-signature": wuzapi_signature(body, "another-key-entirely-0123456789")}
        assert http.post(path, content=body, headers=forged).status_code == 401
