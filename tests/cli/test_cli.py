"""The CLI contract, driven as outside scripts drive it: each command with its arguments and
environment, read back from its exit code, stdout and stderr (in this process, see runner.py; the
scheduler runs as a real process, stopped by a signal)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Ticket
from messaging_whatsapp.providers.events import InboundMessage, MessageType
from messaging_whatsapp.worker.ingest import apply_entries
from tests.cli.runner import Completed, process_env, run_cli
from tests.helpers import wait_until
from tests.retention.inbox_data import customer_writes, message_ids, number

BIND_OPTIONS: dict[str, list[str]] = {
    "meta": [
        "--phone-number-id",
        "109283746501928",
        "--waba-id",
        "104857293847561",
        "--access-token",
        "EAAG",
        "--verify-token",
        "vt",
        "--app-secret",
        "as",
    ],
    "twilio": ["--account-sid", "AC123", "--auth-token", "tok"],
    "evolution": ["--instance-name", "loja", "--api-url", "https://evo.example.com", "--api-key", "k"],
    "wuzapi": [
        "--instance-name",
        "loja",
        "--api-url",
        "https://wuz.example.com",
        "--api-key",
        "k",
        "--hmac-key",
        "h" * 32,
    ],
    "simulator": ["--instance-name", "sim"],
}


class Cli:
    """Runs the command line (in this process, as `python -m messaging_whatsapp.cli` runs it) against
    one database."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.env = {
            "DATABASE_URL": database_url,
            "DATA_DIR": str(data_dir),
            "PUBLIC_URL": "https://engine.example.com",
        }
        # The embedded queue: a REDIS_URL of the test environment would reach another engine.
        self.unset: dict[str, str | None] = {"REDIS_URL": None}

    def run(self, *args: str) -> Completed:
        return run_cli(args, {**self.env, **self.unset})

    def process_env(self) -> dict[str, str]:
        """The whole environment of a command run as a process of its own."""
        return process_env({**self.env, **self.unset})

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """The CLI on a fresh embedded or PostgreSQL database, copied migrated (that the first command
    migrates an empty database is shown by test_campaigns_cli.py and test_credentials_cli.py)."""
    if request.param == "sqlite":
        return Cli(request.getfixturevalue("fresh_sqlite_url"), tmp_path)
    return Cli(request.getfixturevalue("fresh_postgres_url"), tmp_path)


def test_tenant_user_bindings_and_listings(cli: Cli) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja Centro")
    assert set(tenant) >= {"id"}
    created = cli.run(
        "create-user",
        "--tenant-id",
        tenant["id"],
        "--email",
        "ana@loja.com.br",
        "--password",
        "s3cret-pass",
        "--role",
        "admin",
    )
    assert created.returncode == 0, created.stderr

    for provider, options in BIND_OPTIONS.items():
        bound = cli.json(
            "bind-tenant",
            "--tenant-id",
            tenant["id"],
            "--provider",
            provider,
            "--display-number",
            "+551140028922",
            *options,
        )
        assert bound["provider"] == provider
        assert bound["webhook_url"].startswith(
            f"https://engine.example.com/webhooks/{provider}/{bound['id']}"
        )
        assert "EAAG" not in json.dumps(bound)

    bindings = cli.json("list-bindings")
    assert sorted(b["provider"] for b in bindings) == sorted(BIND_OPTIONS)
    assert cli.json("list-conversations", "--tenant-id", tenant["id"]) == []
    info = cli.json("stream-info")
    assert any(stream["stream"].endswith("bc:whatsapp:inbound") for stream in info)
    assert cli.json("replay-dlq") == {"replayed": 0}


def test_api_keys_are_listed_without_secrets_and_revoked(cli: Cli) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja")
    other = cli.json("create-tenant", "--name", "Outra loja")
    created = cli.json("create-api-key", "--tenant-id", tenant["id"], "--name", "erp")
    [listed] = cli.json("list-api-keys", "--tenant-id", tenant["id"])
    assert listed["id"] == created["id"]
    assert listed["name"] == "erp"
    assert listed["revoked_at"] is None
    assert created["api_key"].startswith(listed["prefix"])
    assert created["api_key"] not in json.dumps(listed)
    assert cli.json("list-api-keys", "--tenant-id", other["id"]) == []

    elsewhere = cli.run("revoke-api-key", created["id"], "--tenant-id", other["id"])
    assert elsewhere.returncode == 1
    assert "not found" in elsewhere.stderr
    revoked = cli.json("revoke-api-key", created["id"], "--tenant-id", tenant["id"])
    assert revoked["revoked_at"] is not None
    [listed] = cli.json("list-api-keys", "--tenant-id", tenant["id"])
    assert listed["revoked_at"] == revoked["revoked_at"]
    table = cli.run("list-api-keys", "--tenant-id", tenant["id"])
    assert table.returncode == 0, table.stderr
    assert "erp" in table.stdout


def test_an_api_key_gets_a_role_and_scopes(cli: Cli) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja")
    created = cli.json(
        "create-api-key",
        "--tenant-id",
        tenant["id"],
        "--name",
        "site",
        "--role",
        "agent",
        "--scope",
        "messages:send",
        "--scope",
        "conversations:read",
    )
    assert (created["role"], created["scopes"]) == ("agent", ["conversations:read", "messages:send"])
    assert cli.json("create-api-key", "--tenant-id", tenant["id"])["scopes"] is None
    for option, message in (
        (["--role", "owner"], "role must be one of"),
        (["--scope", "nope"], "scopes nope"),
    ):
        refused = cli.run("create-api-key", "--tenant-id", tenant["id"], *option)
        assert refused.returncode == 1, option
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert message in refused.stderr


def test_user_mistakes_are_one_line_errors(cli: Cli) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja")
    missing = cli.run(
        "bind-tenant",
        "--tenant-id",
        tenant["id"],
        "--provider",
        "meta",
        "--display-number",
        "+551140028922",
        "--phone-number-id",
        "1",
    )
    assert missing.returncode == 1
    assert "--access-token" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown = cli.run("list-conversations", "--tenant-id", "no-such-tenant")
    assert unknown.returncode == 1
    assert "not found" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad_phone = cli.run(
        "bind-tenant",
        "--tenant-id",
        tenant["id"],
        "--provider",
        "simulator",
        "--instance-name",
        "s",
        "--display-number",
        "abc",
    )
    assert bad_phone.returncode == 1
    assert "Traceback" not in bad_phone.stderr
    cli.json(
        "bind-tenant",
        "--tenant-id",
        tenant["id"],
        "--provider",
        "simulator",
        "--instance-name",
        "s",
        "--display-number",
        "+5511940028922",
    )
    again = cli.run(
        "bind-tenant",
        "--tenant-id",
        tenant["id"],
        "--provider",
        "simulator",
        "--instance-name",
        "s",
        "--display-number",
        "+5511940028922",
    )
    assert again.returncode == 1
    assert "already bound" in again.stderr
    short = cli.run("create-user", "--tenant-id", tenant["id"], "--email", "x@y.z", "--password", "1")
    assert short.returncode == 1
    assert "8 characters" in short.stderr


async def test_the_scheduler_closes_a_ticket_idle_past_the_tenants_time(cli: Cli, tmp_path: Path) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja", "--ticket-inactivity-minutes", "1")
    assert tenant["ticket_inactivity_minutes"] == 1
    negative = cli.run("create-tenant", "--name", "Outra", "--ticket-inactivity-minutes", "-1")
    assert negative.returncode == 1
    assert "ticket inactivity" in negative.stderr
    assert "Traceback" not in negative.stderr
    number = cli.json(
        "bind-tenant", "--tenant-id", tenant["id"], "--provider", "simulator", "--instance-name", "s",
        "--display-number", "+5511940028922",
    )  # fmt: skip
    settings = Settings(_env_file=None, database_url=cli.env["DATABASE_URL"], data_dir=tmp_path)  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    try:
        written = utcnow() - timedelta(minutes=5)
        message = InboundMessage("SIM-1", "5511987654321", MessageType.TEXT, written, text="Oi")
        async with context.sessions() as session, session.begin():
            await apply_entries(
                session, [IngestEntry("e1", tenant["id"], number["id"], written, [message])], "x"
            )
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "messaging_whatsapp.cli", "scheduler"],
            env=cli.process_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            async def closed() -> str | None:
                async with context.sessions() as session:
                    return await session.scalar(select(Ticket.close_reason).where(Ticket.status == "closed"))

            assert await wait_until(closed, what="the scheduler's first pass") == "inactivity"
        finally:
            scheduler.send_signal(signal.SIGINT)
            _, stderr = scheduler.communicate(timeout=30)
        assert scheduler.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        await context.close()


def test_update_tenant_changes_only_what_it_is_given(cli: Cli) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja")
    changed = cli.json("update-tenant", "--tenant-id", tenant["id"], "--ticket-inactivity-minutes", "30")
    assert changed == {**tenant, "ticket_inactivity_minutes": 30}
    for args, error in [
        (["--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--ticket-inactivity-minutes", "-5"], "--ticket-inactivity-minutes"),
    ]:
        refused = cli.run("update-tenant", "--tenant-id", tenant["id"], *args)
        assert refused.returncode == 1
        assert error in refused.stderr
        assert "Traceback" not in refused.stderr
    missing = cli.run("update-tenant", "--tenant-id", "nope", "--name", "X")
    assert (missing.returncode, "not found" in missing.stderr) == (1, True)


async def test_erase_contact_and_export_contact(cli: Cli) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja")
    number = cli.json(
        "bind-tenant", "--tenant-id", tenant["id"], "--provider", "simulator", "--instance-name", "s",
        "--display-number", "+5511940028922",
    )  # fmt: skip
    settings = Settings(
        _env_file=None, database_url=cli.env["DATABASE_URL"], data_dir=Path(cli.env["DATA_DIR"])
    )  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    try:
        for n, text in enumerate(("Oi", "Sair")):
            message = InboundMessage(f"SIM-{n}", "5511987654321", MessageType.TEXT, utcnow(), text=text)
            async with context.sessions() as session, session.begin():
                entry = IngestEntry(f"e{n}", tenant["id"], number["id"], utcnow(), [message])
                await apply_entries(session, [entry], "x")
    finally:
        await context.close()

    printed = cli.run("export-contact", "--tenant-id", tenant["id"], "--phone", "(11) 98765-4321")
    assert printed.returncode == 0, printed.stderr
    exported = json.loads(printed.stdout)
    assert [m["content"] for m in exported["messages"]] == ["Oi", "Sair"]
    assert [c["source"] for c in exported["consents"]] == ["keyword"]

    # The national form of the number names the same person.
    erased = cli.json("erase-contact", "--tenant-id", tenant["id"], "--phone", "(11) 98765-4321")
    assert (erased["messages"], erased["conversations"], erased["suppressed"]) == (2, 1, True)
    again = cli.json("erase-contact", "--tenant-id", tenant["id"], "--phone", "+5511987654321")
    assert (again["contact_id"], again["messages"], again["suppressed"]) == (None, 0, True)
    text = cli.run("erase-contact", "--tenant-id", tenant["id"], "--phone", "+5511987654321")
    assert "suppression list" in text.stdout

    for args, error in [
        (["--phone", "+5521999990000"], "nothing is held"),
        (["--phone", "12"], "--phone"),
    ]:
        refused = cli.run("erase-contact", "--tenant-id", tenant["id"], *args)
        assert (refused.returncode, error in refused.stderr, "Traceback" in refused.stderr) == (
            1,
            True,
            False,
        )
    missing = cli.run("export-contact", "--tenant-id", tenant["id"], "--phone", "+5511987654321")
    assert (missing.returncode, "no contact" in missing.stderr) == (1, True)


async def test_retention_is_set_and_applied_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja")
    other = cli.json("create-tenant", "--name", "Outra")
    changed = cli.json(
        "update-tenant", "--tenant-id", tenant["id"],
        "--retention-messages-days", "30", "--retention-closed-tickets-days", "90",
        "--retention-raw-requests-days", "7",
    )  # fmt: skip
    assert changed == {
        **tenant,
        "retention_messages_days": 30,
        "retention_closed_tickets_days": 90,
        "retention_raw_requests_days": 7,
    }
    off = cli.json("update-tenant", "--tenant-id", tenant["id"], "--retention-closed-tickets-days", "off")
    assert (off["retention_messages_days"], off["retention_closed_tickets_days"]) == (30, None)
    cli.json("update-tenant", "--tenant-id", other["id"], "--retention-messages-days", "60")
    for value in ("0", "3651", "month"):
        refused = cli.run("update-tenant", "--tenant-id", tenant["id"], "--retention-messages-days", value)
        assert refused.returncode == 1, value
        assert "--retention-messages-days must be 1 to 3650 days, or off to keep forever" in refused.stderr
        assert refused.stderr.count("\n") == 1, refused.stderr
    settings = Settings(_env_file=None, database_url=cli.env["DATABASE_URL"], data_dir=tmp_path)  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    try:
        for tenant_id in (tenant["id"], other["id"]):
            instance_id = await number(context, tenant_id)
            await customer_writes(context, tenant_id, instance_id, "5511987654321", days_ago=45)
            await customer_writes(context, tenant_id, instance_id, "5511987654321")

        dry = cli.run("apply-retention", "--dry-run", "--json")

        assert dry.returncode == 0, dry.stderr
        report = json.loads(dry.stdout)
        assert report["dry_run"] is True
        [mine, theirs] = report["tenants"]
        assert (mine["tenant_id"], mine["messages"]["days"], mine["messages"]["count"]) == (
            tenant["id"],
            30,
            1,
        )
        assert (mine["closed_tickets"], mine["raw_requests"]["count"]) == (None, 0)
        assert (theirs["tenant_id"], theirs["messages"]["count"]) == (other["id"], 0)
        assert mine["messages"]["cutoff"] < report["now"]
        assert "[2/2] Outra" in dry.stderr
        assert [len(await message_ids(context, t)) for t in (tenant["id"], other["id"])] == [2, 2]

        done = cli.json("apply-retention", "--tenant-id", tenant["id"])
        assert [(t["tenant_id"], t["messages"]["count"]) for t in done["tenants"]] == [(tenant["id"], 1)]
        assert [len(await message_ids(context, t)) for t in (tenant["id"], other["id"])] == [1, 2]
        table = cli.run("apply-retention", "--dry-run")
        assert (table.returncode, "dry run" in table.stdout, "Loja" in table.stdout) == (0, True, True)
        missing = cli.run("apply-retention", "--tenant-id", "nope")
        assert (missing.returncode, "not found" in missing.stderr) == (1, True)
    finally:
        await context.close()
