"""Campaign commands as a user runs them: create, import a CSV, start, status, list, errors."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import Cli


def test_a_campaign_from_the_terminal(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path}/cli.db", tmp_path)
    tenant = cli.json("create-tenant", "--name", "Loja")["id"]
    number = cli.json(
        "bind-tenant",
        "--tenant-id",
        tenant,
        "--provider",
        "simulator",
        "--instance-name",
        "sim",
        "--display-number",
        "+5511940028922",
    )["id"]
    campaign = cli.json(
        "campaign-create",
        "--name",
        "Black Friday",
        "--message",
        "Oi {{name}}",
        "--message",
        "Olá {{name}}",
        "--instance",
        number,
        "--window",
        "08:00-20:00",
        "--weekdays",
        "0,1,2,3,4",
        "--rotation-mode",
        "balanced",
    )
    assert (campaign["status"], campaign["rotation_mode"]) == ("draft", "balanced")
    assert campaign["settings"]["send_window"] == {
        "start": "08:00:00",
        "end": "20:00:00",
        "weekdays": [0, 1, 2, 3, 4],
    }

    rows = ["telefone;nome;cupom"] + [f"(11) 9{index:04d}-0000;Cliente {index};BF" for index in range(1, 301)]
    rows += ["não é telefone;X;", "(11) 90001-0000;Repetido;"]
    csv_file = tmp_path / "lista.csv"
    csv_file.write_bytes("\n".join(rows).encode("latin-1"))
    report = cli.json("campaign-import", campaign["id"], str(csv_file))
    assert (report["added"], report["duplicates"], report["invalid"]) == (300, 1, 1)
    assert report["rejected"][0]["line"] == 302
    shown = cli.run("campaign-import", campaign["id"], str(csv_file))
    assert shown.returncode == 0
    assert "added 0, duplicates 301" in shown.stdout
    assert "importing" in shown.stderr

    started = cli.json("campaign-start", campaign["id"])
    assert started["status"] == "running"
    status = cli.json("campaign-status", campaign["id"])
    assert (status["total_contacts"], status["pending_count"]) == (300, 300)
    assert [item["id"] for item in cli.json("campaign-list")] == [campaign["id"]]
    assert "Black" in cli.run("campaign-list").stdout

    again = cli.run("campaign-start", campaign["id"])
    assert again.returncode == 1
    assert "cannot start a campaign that is running" in again.stderr
    assert "Traceback" not in again.stderr
    missing = cli.run("campaign-import", campaign["id"], str(tmp_path / "nao-existe.csv"))
    assert (missing.returncode, "cannot read" in missing.stderr) == (1, True)
    wrong = cli.run("campaign-create", "--name", "X", "--message", "Oi", "--instance", "nope")
    assert (wrong.returncode, "instance nope not found" in wrong.stderr) == (1, True)
    assert cli.json("campaign-cancel", campaign["id"])["status"] == "cancelled"
