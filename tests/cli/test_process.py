"""The command line as a real process, where the other CLI tests run it in this one (runner.py): the
console script `make install` puts on the path, and `python -m messaging_whatsapp.cli` exiting 1
with a one-line error for a user's mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.cli.runner import process_env


def run_process(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_console_script_lists_every_command() -> None:
    script = Path(sys.executable).parent / "messaging-whatsapp"
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable} (not installed with make install)")
    listed = run_process([str(script), "--help"], process_env({}))
    assert listed.returncode == 0, listed.stderr
    for command in ("migrate", "bind-tenant", "campaign-list", "list-templates"):
        assert command in listed.stdout
    assert "Create or upgrade the database schema." in listed.stdout


def test_a_users_mistake_exits_1_with_one_line_on_stderr(fresh_sqlite_url: str, tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    env = {"DATABASE_URL": fresh_sqlite_url, "DATA_DIR": str(tmp_path), "WHATSAPP_ENCRYPTION_KEY": key}
    env = process_env({**env, "REDIS_URL": None})
    command = [sys.executable, "-m", "messaging_whatsapp.cli", "list-conversations", "--tenant-id", "nope"]
    refused = run_process(command, env)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "not found" in refused.stderr
    assert refused.stdout == ""
