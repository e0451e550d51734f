"""update-binding, unbind and rotate-keys as scripts run them, and an engine that finds its key
from any directory, or refuses to start naming the key it needs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from messaging_whatsapp.cli.app import app
from messaging_whatsapp.config import get_settings
from messaging_whatsapp.crypto import key_id, read_key_file, write_key_file
from messaging_whatsapp.providers.simulator import build_inbound_message_body
from tests.helpers import free_port

PROJECT = Path(__file__).resolve().parents[2]
TWILIO = ["--provider", "twilio", "--display-number", "+551140028922", "--account-sid", "AC1"]


class InProcessCli:
    """The real command-line app run in this process (a subprocess per command costs seconds)."""

    def __init__(self, database_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("DATA_DIR", str(data_dir))
        monkeypatch.delenv("REDIS_URL", raising=False)
        monkeypatch.delenv("WHATSAPP_ENCRYPTION_KEY", raising=False)
        get_settings.cache_clear()
        self.runner = CliRunner()

    def run(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args))

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(params=["sqlite", "postgresql"])
def in_process(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InProcessCli]:
    """The CLI on a fresh embedded or PostgreSQL database, with its key file in tmp_path."""
    url = (
        f"sqlite:///{tmp_path}/cli.db"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    yield InProcessCli(url, tmp_path, monkeypatch)
    get_settings.cache_clear()


def test_update_binding_unbind_and_rotate_keys(in_process: InProcessCli, tmp_path: Path) -> None:
    cli = in_process
    tenant = cli.json("create-tenant", "--name", "Loja")["id"]
    bound = cli.json("bind-tenant", "--tenant-id", tenant, *TWILIO, "--auth-token", "old-token-1234567890")

    changed = cli.run(
        "update-binding", bound["id"], "--auth-token", "new-token-0987654321", "--daily-limit", "40", "--json"
    )
    assert changed.exit_code == 0, changed.stderr
    assert "new-token" not in changed.stdout
    assert json.loads(changed.stdout)["changed"] == ["auth_token", "daily_limit"]
    assert json.loads(changed.stdout)["daily_limit"] == 40
    refused = cli.run("update-binding", bound["id"], "--access-token", "EAAG")
    assert refused.exit_code == 1
    assert "access_token: not a setting of a twilio number" in refused.stderr

    assert cli.json("unbind", bound["id"])["status"] == "unbound"
    again = cli.json("bind-tenant", "--tenant-id", tenant, *TWILIO, "--auth-token", "third-token-123456789")
    assert (again["id"], again["status"]) == (bound["id"], "active")

    old_keys = read_key_file(tmp_path / "encryption.key")
    rotated = cli.json("rotate-keys", "--new-key")
    assert rotated["new_key"] is True
    assert [(c["label"], c["rotated"]) for c in rotated["columns"]] == [
        ("instance credentials", 1),
        ("tenant suppression keys", 0),
        ("webhook subscription secrets", 0),
        ("tenant AI keys", 0),
    ]
    assert rotated["old_keys_in_use"] == []
    assert cli.json("rotate-keys")["columns"][0] == {
        "label": "instance credentials",
        "values": 1,
        "rotated": 0,
        "already_current": 1,
        "changed_meanwhile": 0,
    }
    # The old key retired: the engine opens (it checks every stored value) with the new one alone.
    keys = read_key_file(tmp_path / "encryption.key")
    assert keys[1:] == old_keys
    write_key_file(tmp_path / "encryption.key", keys[:1])
    assert cli.json("list-bindings")[0]["status"] == "active"


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "messaging_whatsapp.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_from_another_directory_finds_the_key_or_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    # DATA_DIR relative: to the project's directory, wherever the command runs.
    data_dir = os.path.relpath(tmp_path / "data", PROJECT)
    monkeypatch.chdir(here)
    cli = InProcessCli(f"sqlite:///{tmp_path}/engine.db", Path(data_dir), monkeypatch)
    monkeypatch.setenv("PUBLIC_URL", f"http://127.0.0.1:{port}")
    tenant_id = cli.json("create-tenant", "--name", "Loja")["id"]
    options = ["--provider", "simulator", "--display-number", "+551140028922", "--instance-name", "sim"]
    webhook = cli.json("bind-tenant", "--tenant-id", tenant_id, *options)["webhook_url"]
    get_settings.cache_clear()
    key_file = tmp_path / "data" / "encryption.key"
    assert key_file.exists()
    assert not (here / "data").exists()
    env = dict(os.environ)

    server = subprocess.Popen(
        [sys.executable, "-m", "messaging_whatsapp.cli", "serve", "--role", "webhook", "--port", str(port)],
        env=env,
        cwd=elsewhere,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        body = build_inbound_message_body("sim", "SIM-1", "5511987654321", "Oi", "Maria", 1763035300)
        answer = httpx.post(
            f"http://127.0.0.1:{port}{urlsplit(webhook).path}",
            content=body,
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
    assert not (elsewhere / "data").exists()

    needed = key_id(read_key_file(key_file)[0])
    key_file.rename(tmp_path / "backup.key")
    refused = _run(["serve", "--role", "webhook", "--port", str(port)], env, elsewhere)
    assert refused.returncode == 1
    assert f"cannot start: 1 instance credentials encrypted with key {needed}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not key_file.exists()
