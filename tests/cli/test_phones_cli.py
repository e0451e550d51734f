"""The command line reads a typed phone as the API does, on both databases: a national --to or
--from is a number of the tenant's default country (set by create-tenant and update-tenant),
send-test shows the E.164 it sent to, and what is not a valid number is a one-line error."""

from __future__ import annotations

from tests.cli.test_cli import Cli, cli

__all__ = ["cli"]


def test_send_test_reads_the_phone_with_the_tenants_country(cli: Cli) -> None:
    tenant = cli.json("create-tenant", "--name", "Loja", "--default-country", "br")
    assert tenant["default_country"] == "BR"
    number = cli.json(
        "bind-tenant", "--tenant-id", tenant["id"], "--provider", "simulator", "--instance-name", "s",
        "--display-number", "(11) 4002-8922",
    )  # fmt: skip
    assert number["display_number"] == "+551140028922"
    send = ["send-test", "--tenant-id", tenant["id"], "--instance", number["id"], "--text", "Oi"]
    send += ["--wait", "0.2"]

    sent = cli.json(*send, "--to", "(11) 98765-4321")
    assert (sent["to"], sent["status"]) == ("+5511987654321", "queued")
    for typed, e164 in [("11987654321", "+5511987654321"), ("+1 415 555 2671", "+14155552671")]:
        shown = cli.run(*send, "--to", typed)
        assert shown.returncode == 0, shown.stderr
        assert f"to {e164};" in shown.stderr
    refused = cli.run(*send, "--to", "(11) 9876-543")
    assert refused.returncode == 1
    assert "'(11) 9876-543' is not a valid phone number of BR" in refused.stderr
    assert "Traceback" not in refused.stderr

    unknown = cli.run("update-tenant", "--tenant-id", tenant["id"], "--default-country", "XX")
    assert (unknown.returncode, "unknown country 'XX'" in unknown.stderr) == (1, True)
    changed = cli.json("update-tenant", "--tenant-id", tenant["id"], "--default-country", "us")
    assert changed == {**tenant, "default_country": "US"}
    assert cli.json(*send, "--to", "(415) 555-2671")["to"] == "+14155552671"
    # The customer's number of simulate-inbound is read the same way: no Brazilian mobile in the US.
    customer = cli.run(
        "simulate-inbound", "--instance-id", number["id"], "--text", "Oi", "--from", "11987654321"
    )
    assert (customer.returncode, "not a valid phone number of US" in customer.stderr) == (1, True)
