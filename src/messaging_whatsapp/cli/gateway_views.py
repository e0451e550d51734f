"""What the gateway commands print: created instances, connect answers (QR code or pairing code),
states and listings, as text or as `--json`."""

from __future__ import annotations

import sys
from typing import Any

from rich.markup import escape

from messaging_whatsapp.cli.qr import QrDrawError, challenge_matrix, draw_qr
from messaging_whatsapp.cli.support import fail, print_json, stderr, stdout
from messaging_whatsapp.cli.support import table as support_table
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances.gateway import (
    ConnectResult,
    CreatedInstance,
    InstanceStatus,
    ListedInstance,
)
from messaging_whatsapp.instances.schemas import BoundInstance, InstanceItem
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.events import ConnectionState
from messaging_whatsapp.providers.outbound import SendError

GATEWAY_NAMES = {ProviderName.EVOLUTION: "Evolution API", ProviderName.WUZAPI: "WuzAPI"}
_HINTS = {
    "unauthorized": "check the key or token",
    "forbidden": "check the key or token",
    "instance_exists": "it already exists on the gateway: bind it with bind-tenant, then connect it",
    "instance_not_found": "the instance does not exist on the gateway (deleted there?)",
    "connect_error": "is the gateway running at that URL?",
    "unknown_outcome": "the gateway did not answer in time; check its state before trying again",
}


def say(message: str, *, to_stderr: bool = False) -> None:
    """A line of plain text (no markup: names come from the gateway)."""
    (stderr if to_stderr else stdout).print(message, markup=False, highlight=False, soft_wrap=True)


def gateway_message(provider: ProviderName, exc: SendError) -> str:
    """What the gateway refused, with a hint at the usual cause."""
    status = f", HTTP {exc.http_status}" if exc.http_status else ""
    hint = _HINTS.get(exc.code)
    return f"{GATEWAY_NAMES[provider]}: {exc.title} ({exc.code}{status})" + (f"; {hint}" if hint else "")


def created_json(created: CreatedInstance) -> dict[str, Any]:
    """A created and bound instance as `--json` prints it."""
    item = InstanceItem.of(created.instance, utcnow())
    bound = BoundInstance(**item.model_dump(), webhook_url=created.webhook_url)
    return {
        **bound.model_dump(mode="json"),
        "tenant_id": created.instance.tenant_id,
        "api_url": created.instance.api_url,
        "gateway_state": created.gateway.state.value,
        "own_token": created.own_token,
    }


def show_created(provider: ProviderName, created: CreatedInstance) -> None:
    """Say what was created and bound."""
    instance = created.instance
    say(
        f"{provider.value} instance {instance.instance_name} created on {instance.api_url} and bound as "
        f"instance {instance.id} (number {instance.display_number or 'learnt once a phone is linked'})"
    )
    say(f"gateway state: {created.gateway.state.value}; webhook registered")
    if not created.own_token:
        say("the gateway returned no instance token: the global key is stored for this instance")


def _connect_json(result: ConnectResult) -> dict[str, Any]:
    challenge = result.challenge
    return {
        "instance_id": result.instance.id,
        "instance_name": result.instance.instance_name,
        "provider": result.instance.provider,
        "state": challenge.state.value,
        "qr_code": challenge.qr_code,
        "qr_image_base64": challenge.qr_image_base64,
        "pairing_code": challenge.pairing_code,
    }


def show_connect(
    provider: ProviderName,
    result: ConnectResult,
    *,
    show_qr: bool,
    pairing: bool,
    invert: bool,
    as_json: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    """Print the connect answer; exit 1 when what was asked for (QR, pairing code) did not come."""
    challenge = result.challenge
    name = result.instance.instance_name or result.instance.routing_key
    if as_json:
        print_json({**_connect_json(result), **(extra or {})})
    if challenge.state is ConnectionState.OPEN:
        if not as_json:
            say(f"{name} is already connected (state open): nothing to scan")
        return
    if pairing:
        if not challenge.pairing_code:
            raise fail(
                f"{GATEWAY_NAMES[provider]} returned no pairing code for {name} (state "
                f"{challenge.state.value}); it may already be waiting for a QR code: try again shortly"
            )
        if not as_json:
            say(f"pairing code for {name}: {challenge.pairing_code}")
            say(
                "on the phone: WhatsApp > Linked devices > Link a device > Link with phone number "
                "instead, then type the code"
            )
        return
    if show_qr:
        try:
            matrix = challenge_matrix(challenge.qr_code, challenge.qr_image_base64)
        except QrDrawError as exc:
            raise fail(f"could not draw the QR code: {exc}") from None
        if matrix is None:
            raise fail(f"{GATEWAY_NAMES[provider]} has no QR code for {name} yet; try again in a few seconds")
        if not as_json:
            say(f"scan with WhatsApp on the phone (Linked devices > Link a device) to connect {name}:")
        # With --json, stdout is the JSON alone: the drawing goes to stderr.
        draw_qr(matrix, sys.stderr if as_json else sys.stdout, invert=invert)
        if not as_json and not invert:
            say("(drawn for a dark terminal; add --invert-qr on a light background)")
        return
    if not as_json:
        ready = challenge.qr_code or challenge.qr_image_base64
        state = challenge.state.value
        say(
            f"{name}: state {state}; "
            + ("a QR code is ready: add --show-qr to draw it" if ready else "no QR yet")
        )


def _status_json(status: InstanceStatus) -> dict[str, Any]:
    return {
        "instance_id": status.instance.id,
        "instance_name": status.instance.instance_name,
        "provider": status.instance.provider,
        "state": status.gateway.state.value,
        "owner": status.gateway.owner,
        "recorded_state": status.instance.connection_state,
    }


def show_status(status: InstanceStatus, as_json: bool) -> None:
    """The gateway's state of an instance next to ours."""
    if as_json:
        print_json(_status_json(status))
        return
    owner = f", number {status.gateway.owner}" if status.gateway.owner else ""
    say(
        f"{status.instance.instance_name} (instance {status.instance.id}): gateway says "
        f"{status.gateway.state.value}{owner}; recorded here: {status.instance.connection_state}"
    )


def show_listing(items: list[ListedInstance], as_json: bool) -> None:
    """The gateway's instances and which are bound here."""
    # Instance tokens are secrets: never shown.
    rows = [
        {
            "name": item.gateway.name,
            "state": item.gateway.state.value,
            "owner": item.gateway.owner,
            "bound_instance_id": item.bound_instance_id,
        }
        for item in items
    ]
    if as_json:
        print_json(rows)
        return
    table = support_table("name", "state", "number", "bound as", ids=("bound as",))
    for row in rows:
        table.add_row(
            escape(str(row["name"])), str(row["state"]), row["owner"] or "", row["bound_instance_id"] or "-"
        )
    stdout.print(table)
