"""The gateway commands (Evolution API, WuzAPI), run as scripts run them against fake gateways.

Each command runs as `python -m messaging_whatsapp.cli` would (in this process, see runner.py) on a
fresh SQLite database, talking real HTTP to the fake gateways (tests/fakes) served from this process.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import png  # type: ignore[import-untyped]
import pytest
import segno
from cryptography.fernet import Fernet

from messaging_whatsapp.cli.qr import (
    QrDrawError,
    challenge_matrix,
    matrix_from_png,
    matrix_from_text,
    qr_lines,
)
from messaging_whatsapp.crypto import Cipher
from tests.cli.runner import Completed, run_cli
from tests.fakes.evolution import GLOBAL_KEY, FakeEvolution
from tests.fakes.http import FakeHttpServer, Reply
from tests.fakes.wuzapi import ADMIN_TOKEN, LINKING_CODE, FakeUser, FakeWuzapi

PUBLIC_URL = "https://engine.example.com"
NUMBER = "+5511940028922"
BLOCKS = set("█▀▄")
# The code whatsmeow would show for the WuzAPI user the tests create (ref, noise key, identity, adv).
WUZAPI_QR_TEXT = (
    "2@Pq7k1vW9ZcQe3xY0aB4nM8sL2dF6gH1jK5,Xk3o9Qm0Zr1Tt2Yy3Uu4Ii5Oo6Pp7=,Lq8Ww9Ee0Rr1=,Ad2Sf3Gh4=="
)


def go_qrcode_png(text: str, side: int = 256) -> bytes:
    """A PNG like WuzAPI's (skip2/go-qrcode): 1-bit palette, 4-module border, scaled by nearest
    neighbour to 256 pixels, so modules are not a whole number of pixels wide."""
    bitmap = [[bool(v) for v in row] for row in segno.make_qr(text).matrix_iter(scale=1, border=4)]
    per_pixel = len(bitmap) / side
    pixels = [[int(bitmap[int(y * per_pixel)][int(x * per_pixel)]) for x in range(side)] for y in range(side)]
    buffer = io.BytesIO()
    png.Writer(side, side, palette=[(255, 255, 255), (0, 0, 0)], bitdepth=1).write(buffer, pixels)
    return buffer.getvalue()


WUZAPI_QR_PNG = go_qrcode_png(WUZAPI_QR_TEXT)


class QrWuzapi(FakeWuzapi):
    """The fake WuzAPI, whose users' QR codes are real images."""

    def add_user(self, name: str, token: str, **state: Any) -> FakeUser:
        import base64

        state.setdefault("qr", "data:image/png;base64," + base64.b64encode(WUZAPI_QR_PNG).decode())
        return FakeWuzapi.add_user(self, name, token, **state)


class Cli:
    """Runs the CLI (with the gateway commands; in this process, see runner.py) against one database."""

    def __init__(self, tmp_path: Path) -> None:
        self.database = tmp_path / "gateway.db"
        self.key = Fernet.generate_key().decode()
        self.cwd = tmp_path
        self.env: dict[str, str | None] = {
            name: None for name in os.environ if name.startswith(("EVOLUTION_", "WUZAPI_", "WHATSAPP_"))
        }
        self.env.update(
            {
                "REDIS_URL": None,
                "DATABASE_URL": f"sqlite:///{self.database}",
                "DATA_DIR": str(tmp_path),
                "PUBLIC_URL": PUBLIC_URL,
                "WHATSAPP_ENCRYPTION_KEY": self.key,
                # The fake gateways listen on loopback.
                "OUTBOUND_ALLOW_PRIVATE": "true",
            }
        )

    def run(self, *args: str, env: dict[str, str] | None = None) -> Completed:
        return run_cli(args, {**self.env, **(env or {})}, cwd=self.cwd)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Completed:
        result = self.run(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", env=env).stdout)

    def fails(self, *args: str) -> str:
        """Run a command that must fail cleanly; its stderr."""
        result = self.run(*args)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert "error:" in result.stderr
        return result.stderr

    def bindings(self) -> list[dict[str, Any]]:
        """Every binding row, with its credentials decrypted."""
        cipher = Cipher([self.key])
        with sqlite3.connect(self.database) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM whatsapp_instances").fetchall()
        return [
            {**dict(row), "credentials": json.loads(cipher.decrypt(row["credentials_encrypted"]))}
            for row in rows
        ]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def tenant_id(cli: Cli) -> str:
    tenant: dict[str, str] = json.loads(cli.ok("create-tenant", "--name", "Loja Centro", "--json").stdout)
    return tenant["id"]


@pytest.fixture
def evolution() -> Iterator[tuple[FakeEvolution, FakeHttpServer]]:
    fake = FakeEvolution()
    with FakeHttpServer(fake, hold_seconds=2) as server:
        yield fake, server


@pytest.fixture
def wuzapi() -> Iterator[tuple[QrWuzapi, FakeHttpServer]]:
    fake = QrWuzapi()
    with FakeHttpServer(fake, hold_seconds=2) as server:
        yield fake, server


def drawn(matrix: list[list[bool]]) -> str:
    return "\n".join(qr_lines(matrix))


def secret_of(webhook_url: str) -> str:
    return webhook_url.rsplit("/", 1)[1]


# --------------------------------------------------------------------------------------------------
# Evolution API


def test_evolution_create_binds_with_the_instance_token_and_our_webhook(
    cli: Cli, tenant_id: str, evolution: tuple[FakeEvolution, FakeHttpServer]
) -> None:
    fake, server = evolution
    defaults = {
        "EVOLUTION_API_URL": server.base_url,
        "EVOLUTION_API_KEY": GLOBAL_KEY,
        "EVOLUTION_INSTANCE_NAME": "loja",
    }
    created = cli.json(
        "evolution-create-instance", "--tenant-id", tenant_id, "--display-number", NUMBER, env=defaults
    )

    assert created["provider"] == "evolution"
    assert created["instance_name"] == "loja"
    assert created["gateway_state"] == "connecting"
    assert created["own_token"] is True
    url = created["webhook_url"]
    assert url.startswith(f"{PUBLIC_URL}/webhooks/evolution/{created['id']}/")
    on_gateway = fake.instances["loja"]
    assert on_gateway.webhook is not None
    assert on_gateway.webhook["url"] == url
    assert on_gateway.webhook["headers"] == {"x-webhook-secret": secret_of(url)}
    assert "MESSAGES_UPSERT" in on_gateway.webhook["events"]

    [binding] = cli.bindings()
    assert binding["id"] == created["id"]
    assert binding["tenant_id"] == tenant_id
    assert binding["routing_key"] == "loja"
    assert binding["api_url"] == server.base_url
    assert binding["connection_state"] == "connecting"
    assert binding["credentials"]["api_key"] == on_gateway.token
    assert binding["credentials"]["webhook_secret"] == secret_of(url)


def test_evolution_create_failures_leave_no_binding(
    cli: Cli, tenant_id: str, evolution: tuple[FakeEvolution, FakeHttpServer]
) -> None:
    fake, server = evolution
    base = ["evolution-create-instance", "--tenant-id", tenant_id, "--display-number", NUMBER]
    gateway = ["--api-url", server.base_url]

    refused = cli.fails(*base, "--instance-name", "loja", *gateway, "--api-key", "wrong-key")
    assert "Unauthorized" in refused
    assert "401" in refused
    assert "loja" not in fake.instances

    fake.add_instance("taken", state="close")
    taken = cli.fails(*base, "--instance-name", "taken", *gateway, "--api-key", GLOBAL_KEY)
    assert "already in use" in taken
    assert "bind-tenant" in taken

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = cli.fails(
        *base, "--instance-name", "loja", "--api-url", f"http://127.0.0.1:{closed_port}", "--api-key", "k"
    )
    assert "unreachable" in unreachable
    guarded = cli.run(
        *base, "--instance-name", "loja", *gateway, "--api-key", GLOBAL_KEY,
        env={"OUTBOUND_ALLOW_PRIVATE": "false"},
    )  # fmt: skip
    assert guarded.returncode == 1
    assert "not on the public internet" in guarded.stderr
    assert "OUTBOUND_ALLOW_PRIVATE" in guarded.stderr
    assert "Traceback" not in guarded.stderr
    assert "loja" not in fake.instances

    schemeless = cli.fails(*base, "--instance-name", "loja", "--api-url", "evo.example.com", "--api-key", "k")
    assert "http://" in schemeless
    missing = cli.fails(*base, "--instance-name", "loja")
    assert "--api-url" in missing
    assert "--api-key" in missing
    assert "not found" in cli.fails(
        "evolution-create-instance", "--tenant-id", "no-such-tenant", "--display-number", NUMBER,
        "--instance-name", "loja", *gateway, "--api-key", GLOBAL_KEY,
    )  # fmt: skip
    assert cli.bindings() == []

    # Already bound here: refused before the gateway is asked anything.
    cli.json(*base, "--instance-name", "loja", *gateway, "--api-key", GLOBAL_KEY)
    asked = len(server.requests)
    again = cli.fails(*base, "--instance-name", "loja", *gateway, "--api-key", GLOBAL_KEY)
    assert "already bound" in again
    assert len(server.requests) == asked
    assert len(cli.bindings()) == 1


def test_evolution_connect_draws_the_qr_code_and_reports_status(
    cli: Cli, tenant_id: str, evolution: tuple[FakeEvolution, FakeHttpServer]
) -> None:
    fake, server = evolution
    created = cli.json(
        "evolution-create-instance", "--tenant-id", tenant_id, "--display-number", NUMBER,
        "--instance-name", "loja", "--api-url", server.base_url, "--api-key", GLOBAL_KEY,
    )  # fmt: skip
    instance = fake.instances["loja"]
    instance.webhook = None

    shown = cli.ok("evolution-connect", "--instance-name", "loja", "--show-qr").stdout
    code = instance.qrcode["code"]
    assert BLOCKS & set(shown)
    assert drawn(matrix_from_text(code)) in shown
    # The webhook was pointed at us again before connecting, with the instance's own token.
    assert instance.webhook is not None
    assert instance.webhook["url"] == created["webhook_url"]
    webhook_calls = [r for r in server.requests if r.path == "/webhook/set/loja"]
    assert webhook_calls[-1].headers["apikey"] == instance.token

    inverted = cli.ok("evolution-connect", "--instance-id", created["id"], "--show-qr", "--invert-qr").stdout
    assert "\n".join(qr_lines(matrix_from_text(code), invert=True)) in inverted

    answer = cli.json("evolution-connect", "--instance-id", created["id"])
    assert answer["instance_id"] == created["id"]
    assert answer["state"] == "connecting"
    assert answer["qr_code"] == code
    assert answer["pairing_code"] is None
    # --json with --show-qr: stdout stays JSON, the drawing goes to stderr.
    both = cli.run("evolution-connect", "--instance-name", "loja", "--show-qr", "--json")
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout)["qr_code"] == code
    assert drawn(matrix_from_text(code)) in both.stderr

    status = cli.json("evolution-instance-status", "--instance-name", "loja")
    assert status == {
        "instance_id": created["id"],
        "instance_name": "loja",
        "provider": "evolution",
        "state": "connecting",
        "owner": None,
        "recorded_state": "connecting",
    }
    instance.state = "open"
    assert cli.json("evolution-instance-status", "--instance-id", created["id"])["state"] == "open"
    assert "open" in cli.ok("evolution-instance-status", "--instance-name", "loja").stdout
    already = cli.ok("evolution-connect", "--instance-name", "loja", "--show-qr").stdout
    assert "already connected" in already
    assert not BLOCKS & set(already)


def test_evolution_pairing_code_for_an_instance_made_elsewhere(
    cli: Cli, tenant_id: str, evolution: tuple[FakeEvolution, FakeHttpServer]
) -> None:
    fake, server = evolution
    existing = fake.add_instance("antiga", state="close")
    bound = cli.json(
        "bind-tenant", "--tenant-id", tenant_id, "--provider", "evolution", "--display-number", NUMBER,
        "--instance-name", "antiga", "--api-url", server.base_url, "--api-key", existing.token,
    )  # fmt: skip

    answer = cli.json("evolution-connect", "--instance-name", "antiga", "--pairing-code", "+55 11 94002-8922")
    assert answer["pairing_code"] == existing.qrcode["pairingCode"]
    assert answer["pairing_code"]
    connect = [r for r in server.requests if r.path == "/instance/connect/antiga"][-1]
    assert connect.query == {"number": "5511940028922"}
    assert existing.webhook is not None
    assert existing.webhook["url"] == bound["webhook_url"]
    assert existing.webhook["headers"]["x-webhook-secret"] == secret_of(bound["webhook_url"])

    # Already linking with a QR code: the gateway gives no pairing code, and the command says so.
    existing.qrcode["pairingCode"] = None
    refused = cli.fails("evolution-connect", "--instance-name", "antiga", "--pairing-code", "5511940028922")
    assert "no pairing code" in refused
    assert "not a phone number" in cli.fails(
        "evolution-connect", "--instance-name", "antiga", "--pairing-code", "12"
    )


def test_evolution_list_instances(
    cli: Cli, tenant_id: str, evolution: tuple[FakeEvolution, FakeHttpServer]
) -> None:
    fake, server = evolution
    created = cli.json(
        "evolution-create-instance", "--tenant-id", tenant_id, "--display-number", NUMBER,
        "--instance-name", "loja", "--api-url", server.base_url, "--api-key", GLOBAL_KEY,
    )  # fmt: skip
    other = fake.add_instance("outra", state="open", owner="5511988887777")

    listed = cli.json("evolution-list-instances", "--api-url", server.base_url, "--api-key", GLOBAL_KEY)
    assert sorted(listed, key=lambda row: row["name"]) == [
        {"name": "loja", "state": "connecting", "owner": None, "bound_instance_id": created["id"]},
        {"name": "outra", "state": "open", "owner": "5511988887777", "bound_instance_id": None},
    ]
    assert other.token not in json.dumps(listed)
    table = cli.ok(
        "evolution-list-instances",
        env={"EVOLUTION_API_URL": server.base_url, "EVOLUTION_API_KEY": GLOBAL_KEY},
    ).stdout
    assert "outra" in table
    assert other.token not in table

    refused = cli.fails("evolution-list-instances", "--api-url", server.base_url, "--api-key", "nope")
    assert "401" in refused


def test_evolution_errors_are_one_line(
    cli: Cli, tenant_id: str, evolution: tuple[FakeEvolution, FakeHttpServer]
) -> None:
    fake, server = evolution
    created = cli.json(
        "evolution-create-instance", "--tenant-id", tenant_id, "--display-number", NUMBER,
        "--instance-name", "loja", "--api-url", server.base_url, "--api-key", GLOBAL_KEY,
    )  # fmt: skip

    assert "not found" in cli.fails("evolution-connect", "--instance-id", "no-such-id", "--show-qr")
    assert "no evolution instance named 'nada'" in cli.fails(
        "evolution-instance-status", "--instance-name", "nada"
    )
    assert "exactly one" in cli.fails("evolution-connect")
    assert "exactly one" in cli.fails(
        "evolution-connect", "--instance-id", created["id"], "--instance-name", "loja"
    )

    fake.instances["loja"].token = "ROTATED"
    for command in ("evolution-connect", "evolution-instance-status"):
        refused = cli.fails(command, "--instance-name", "loja")
        assert "Unauthorized" in refused
        assert "401" in refused
        assert "check the key" in refused

    server.script(
        Reply(500, {"status": 500, "error": "Internal Server Error", "response": {"message": "[boom]"}})
    )
    fake.instances["loja"].token = cli.bindings()[0]["credentials"]["api_key"]
    crashed = cli.fails("evolution-instance-status", "--instance-name", "loja")
    assert "[boom]" in crashed

    del fake.instances["loja"]
    gone = cli.fails("evolution-connect", "--instance-name", "loja")
    assert "does not exist" in gone


# --------------------------------------------------------------------------------------------------
# WuzAPI


def test_wuzapi_create_connect_and_draw_the_png_qr_code(
    cli: Cli, tenant_id: str, wuzapi: tuple[QrWuzapi, FakeHttpServer]
) -> None:
    fake, server = wuzapi
    result = cli.ok(
        "wuzapi-connect", "--create", "--tenant-id", tenant_id, "--instance-name", "loja",
        "--display-number", NUMBER, "--api-url", server.base_url, "--admin-token", ADMIN_TOKEN, "--show-qr",
    )  # fmt: skip

    # WuzAPI gives only a PNG: the modules read back from it are the code's own.
    assert drawn(matrix_from_text(WUZAPI_QR_TEXT)) in result.stdout
    assert "bound as instance" in result.stdout
    [user] = fake.users.values()
    [binding] = cli.bindings()
    assert user.name == "loja"
    assert binding["credentials"]["api_key"] == user.token
    assert binding["connection_state"] == "close"
    secret = binding["credentials"]["webhook_secret"]
    assert user.webhook == f"{PUBLIC_URL}/webhooks/wuzapi/{binding['id']}/{secret}"
    assert "Message" in user.events.split(",")
    created_call = next(r for r in server.requests if r.path == "/admin/users")
    assert created_call.headers["authorization"] == ADMIN_TOKEN
    assert ADMIN_TOKEN not in json.dumps(binding["credentials"])

    answer = cli.json("wuzapi-connect", "--instance-name", "loja")
    assert answer["state"] == "connecting"
    assert answer["qr_image_base64"]
    assert answer["qr_code"] is None
    paired = cli.json("wuzapi-connect", "--instance-id", binding["id"], "--pairing-code", "5511940028922")
    assert paired["pairing_code"] == LINKING_CODE
    text = cli.ok("wuzapi-connect", "--instance-name", "loja", "--pairing-code", "5511940028922").stdout
    assert LINKING_CODE in text

    status = cli.json("wuzapi-instance-status", "--instance-name", "loja")
    assert status["state"] == "connecting"
    user.logged_in = True
    assert cli.json("wuzapi-instance-status", "--instance-id", binding["id"])["state"] == "open"
    assert "already connected" in cli.ok("wuzapi-connect", "--instance-name", "loja", "--show-qr").stdout

    listed = cli.json("wuzapi-list-instances", "--api-url", server.base_url, "--admin-token", ADMIN_TOKEN)
    assert listed == [{"name": "loja", "state": "open", "owner": None, "bound_instance_id": binding["id"]}]


def test_wuzapi_create_with_json_output(
    cli: Cli, tenant_id: str, wuzapi: tuple[QrWuzapi, FakeHttpServer]
) -> None:
    fake, server = wuzapi
    answer = cli.json(
        "wuzapi-connect", "--create", "--tenant-id", tenant_id, "--instance-name", "loja",
        "--display-number", NUMBER, "--pairing-code", NUMBER,
        env={"WUZAPI_API_URL": server.base_url, "WUZAPI_ADMIN_TOKEN": ADMIN_TOKEN},
    )  # fmt: skip
    assert answer["pairing_code"] == LINKING_CODE
    assert answer["created"]["id"] == answer["instance_id"]
    assert answer["created"]["provider"] == "wuzapi"
    assert answer["created"]["webhook_url"] == next(iter(fake.users.values())).webhook


def test_wuzapi_errors_leave_no_binding(
    cli: Cli, tenant_id: str, wuzapi: tuple[QrWuzapi, FakeHttpServer]
) -> None:
    fake, server = wuzapi
    create = [
        "wuzapi-connect", "--create", "--tenant-id", tenant_id, "--instance-name", "loja",
        "--display-number", NUMBER, "--api-url", server.base_url,
    ]  # fmt: skip
    refused = cli.fails(*create, "--admin-token", "wrong")
    assert "unauthorized" in refused.lower()
    assert "401" in refused
    assert "--admin-token" in cli.fails(*create)
    assert cli.bindings() == []
    assert fake.users == {}

    assert "no wuzapi instance named 'loja'" in cli.fails("wuzapi-connect", "--instance-name", "loja")
    assert "not found" in cli.fails("wuzapi-instance-status", "--instance-id", "no-such-id")
    assert "go with --create" in cli.fails(
        "wuzapi-connect", "--instance-name", "loja", "--tenant-id", tenant_id
    )
    assert "401" in cli.fails("wuzapi-list-instances", "--api-url", server.base_url, "--admin-token", "x")

    # The number is bound through WuzAPI: the Evolution commands do not take it.
    cli.ok(*create, "--admin-token", ADMIN_TOKEN)
    [binding] = cli.bindings()
    assert "is a wuzapi instance" in cli.fails("evolution-connect", "--instance-id", binding["id"])

    # A user token the gateway no longer knows: the stored credentials are refused.
    fake.users.clear()
    assert "401" in cli.fails("wuzapi-connect", "--instance-name", "loja", "--show-qr")


# --------------------------------------------------------------------------------------------------
# QR codes from images (in process)


@pytest.mark.parametrize("length", [10, 120, 400, 1200])
def test_png_modules_read_back_at_fractional_scale(length: int) -> None:
    text = "2@" + ("Ab3+/" * length)[:length]
    assert matrix_from_png(go_qrcode_png(text)) == matrix_from_text(text)


def test_png_modules_read_back_from_an_rgba_image_with_margin() -> None:
    buffer = io.BytesIO()
    segno.make_qr("2@evolution,qr").save(buffer, kind="png", scale=5, border=2, dark="#123", light="#fafafa")
    assert matrix_from_png(buffer.getvalue()) == matrix_from_text("2@evolution,qr")


def test_unreadable_qr_images_are_errors() -> None:
    with pytest.raises(QrDrawError):
        challenge_matrix(None, "iVBORw0KGgoAAAANSUhEUgAAAQAAAAEAAQMAAABmvDolAAAABlBMVEX")
    blank = io.BytesIO()
    png.Writer(40, 40, greyscale=True).write(blank, [[255] * 40] * 40)
    with pytest.raises(QrDrawError, match="no QR code"):
        matrix_from_png(blank.getvalue())
    assert challenge_matrix(None, None) is None
