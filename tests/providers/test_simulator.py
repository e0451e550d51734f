"""Simulator provider: builders round-trip through parse, signatures, detection, bad input."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from messaging_whatsapp.providers.base import InstanceSecrets, PayloadError, ProviderName, WebhookRequest
from messaging_whatsapp.providers.events import (
    ConnectionState,
    ConnectionUpdate,
    DeliveryStatus,
    Ignored,
    IgnoredReason,
    InboundMessage,
    Media,
    MessageType,
    NormalisedEvent,
    StatusError,
    StatusUpdate,
)
from messaging_whatsapp.providers.evolution import evolution_provider
from messaging_whatsapp.providers.simulator import (
    SIGNATURE_HEADER,
    build_connection_body,
    build_inbound_message_body,
    build_status_body,
    sign_simulator_body,
    simulator_provider,
)
from messaging_whatsapp.providers.wuzapi import wuzapi_provider

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
INSTANCE = "sim-loja"
MARIA = "5511987654321"
SECRET = "whsec-simulator-0123456789"
T0 = 1763035200


def _request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={"content-type": "application/json", **(headers or {})},
        url="https://api.exemplo.com.br/webhooks/simulator",
    )


def _parse(body: bytes) -> list[NormalisedEvent]:
    return simulator_provider.parse(_request(body))


def _payload(**data: Any) -> bytes:
    """A message event with the builder's data updated by ``data``."""
    envelope = json.loads(build_inbound_message_body(INSTANCE, "SIM-1", MARIA, "Oi", "Maria Souza", T0))
    envelope["data"].update(data)
    return json.dumps(envelope).encode()


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --------------------------------------------------------------------------------------------------
# Builders round-trip


def test_inbound_message_round_trips() -> None:
    body = build_inbound_message_body(
        INSTANCE, "SIM-1", "+" + MARIA, "Oi! Vocês entregam?", "Maria Souza", T0
    )
    assert _parse(body) == [
        InboundMessage(
            provider_message_id="SIM-1",
            phone=MARIA,
            type=MessageType.TEXT,
            timestamp=_at(T0),
            contact_name="Maria Souza",
            text="Oi! Vocês entregam?",
        )
    ]
    assert simulator_provider.routing_key(_request(body)) == INSTANCE


def test_inbound_message_without_a_name() -> None:
    (message,) = _parse(build_inbound_message_body(INSTANCE, "SIM-2", MARIA, "Sair", None, T0))
    assert isinstance(message, InboundMessage)
    assert message.contact_name is None


def test_builder_output_is_the_documented_envelope() -> None:
    body = build_inbound_message_body(INSTANCE, "SIM-1", MARIA, "ção", None, T0)
    assert json.loads(body) == {
        "simulator": True,
        "instance": INSTANCE,
        "event": "message",
        "data": {"id": "SIM-1", "from": MARIA, "name": None, "type": "text", "text": "ção", "timestamp": T0},
    }
    assert "ção".encode() in body  # UTF-8, not \\u escapes


@pytest.mark.parametrize(
    ("status", "expected"),
    [("sent", DeliveryStatus.SENT), ("delivered", DeliveryStatus.DELIVERED), ("read", DeliveryStatus.READ)],
)
def test_status_round_trips(status: str, expected: DeliveryStatus) -> None:
    body = build_status_body(INSTANCE, "wamid.X", status, T0 + 60)
    assert _parse(body) == [StatusUpdate("wamid.X", expected, _at(T0 + 60))]


def test_failed_status_carries_its_error() -> None:
    body = build_status_body(INSTANCE, "wamid.X", "failed", T0, error=("131026", "Message undeliverable"))
    assert _parse(body) == [
        StatusUpdate(
            "wamid.X",
            DeliveryStatus.FAILED,
            _at(T0),
            error=StatusError(code="131026", title="Message undeliverable"),
        )
    ]


def test_failed_status_without_error_still_has_one() -> None:
    (update,) = _parse(build_status_body(INSTANCE, "wamid.X", "failed", T0))
    assert isinstance(update, StatusUpdate)
    assert update.error == StatusError(code="", title="failed")


def test_builders_refuse_unknown_statuses_and_states() -> None:
    with pytest.raises(ValueError, match="status"):
        build_status_body(INSTANCE, "wamid.X", "queued", T0)
    with pytest.raises(ValueError, match="refused"):
        build_connection_body(INSTANCE, "refused")


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        ("open", None, ConnectionUpdate(ConnectionState.OPEN)),
        ("connecting", None, ConnectionUpdate(ConnectionState.CONNECTING)),
        ("close", "logged_out", ConnectionUpdate(ConnectionState.CLOSE, reason="logged_out")),
    ],
)
def test_connection_round_trips(state: str, reason: str | None, expected: ConnectionUpdate) -> None:
    assert _parse(build_connection_body(INSTANCE, state, reason)) == [expected]


# --------------------------------------------------------------------------------------------------
# The rest of the format


def test_message_with_media_quote_button_and_from_me() -> None:
    media = {
        "url": "https://sim/img.jpg",
        "mime_type": "image/jpeg",
        "caption": "olha",
        "filename": "img.jpg",
    }
    body = _payload(
        type="image", text=None, media=media, quoted_id="SIM-0", button_payload="B1", from_me=True
    )
    (message,) = _parse(body)
    assert isinstance(message, InboundMessage)
    assert message.type is MessageType.IMAGE
    assert message.media == Media(
        url="https://sim/img.jpg", mime_type="image/jpeg", caption="olha", filename="img.jpg"
    )
    assert message.quoted_message_id == "SIM-0"
    assert message.button_payload == "B1"
    assert message.from_me is True
    assert message.text is None


def test_type_defaults_to_text() -> None:
    envelope = json.loads(_payload())
    del envelope["data"]["type"]
    (message,) = _parse(json.dumps(envelope).encode())
    assert isinstance(message, InboundMessage)
    assert message.type is MessageType.TEXT


def test_unknown_event_is_unhandled() -> None:
    envelope = json.loads(_payload())
    envelope["event"] = "typing"
    assert _parse(json.dumps(envelope).encode()) == [
        Ignored(IgnoredReason.UNHANDLED_EVENT, "simulator typing")
    ]


# --------------------------------------------------------------------------------------------------
# Signatures


def test_sign_simulator_body_is_sha256_hmac_hex() -> None:
    body = build_status_body(INSTANCE, "wamid.X", "read", T0)
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign_simulator_body(SECRET, body) == expected


def test_signed_body_verifies_and_tampering_fails() -> None:
    body = build_status_body(INSTANCE, "wamid.X", "read", T0)
    signature = sign_simulator_body(SECRET, body)
    secrets = InstanceSecrets(webhook_secret=SECRET)
    assert simulator_provider.verify(_request(body, {SIGNATURE_HEADER: signature}), secrets)
    tampered = body.replace(b'"read"', b'"sent"')
    assert not simulator_provider.verify(_request(tampered, {SIGNATURE_HEADER: signature}), secrets)
    wrong_secret = InstanceSecrets(webhook_secret="another-secret")
    assert not simulator_provider.verify(_request(body, {SIGNATURE_HEADER: signature}), wrong_secret)
    assert not simulator_provider.verify(_request(body, {SIGNATURE_HEADER: ""}), secrets)
    assert not simulator_provider.verify(_request(body, {SIGNATURE_HEADER: "sha256=é"}), secrets)


def test_a_request_with_neither_signature_nor_secret_is_refused() -> None:
    # A forged "connection: close" or "SAIR" naming a known instance must not be taken.
    body = build_connection_body(INSTANCE, "close")
    assert not simulator_provider.verify(_request(body), InstanceSecrets(webhook_secret=SECRET))


def test_the_secret_in_the_url_path_authenticates_an_unsigned_request() -> None:
    body = build_connection_body(INSTANCE, "open")
    secrets = InstanceSecrets(webhook_secret=SECRET)
    assert simulator_provider.verify(replace(_request(body), path_secret=SECRET), secrets)
    assert not simulator_provider.verify(replace(_request(body), path_secret="guess"), secrets)
    assert not simulator_provider.verify(replace(_request(body), path_secret=""), InstanceSecrets(""))


def test_a_signature_cannot_be_checked_without_a_secret() -> None:
    body = build_connection_body(INSTANCE, "open")
    signature = sign_simulator_body("", body)
    assert not simulator_provider.verify(_request(body, {SIGNATURE_HEADER: signature}), InstanceSecrets(""))


# --------------------------------------------------------------------------------------------------
# Bad input


def _with_data(data: object) -> bytes:
    envelope = json.loads(_payload())
    envelope["data"] = data
    return json.dumps(envelope).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_payload()[:40], "not valid JSON"),
        (b"[]", "body must be an object"),
        (_with_data([{"id": "SIM-1"}]), "data must be an object"),
        (_payload(id=12345), r"data\.id must be a string"),
        (_payload(id=None), r"data\.id is missing"),
        (_payload(timestamp="1763035200"), "timestamp must be unix seconds"),
        (_payload(timestamp=True), "timestamp must be unix seconds"),
        (_payload(timestamp=10**15), "out of range"),
        (_payload(timestamp=10**20), "must be unix seconds"),  # past 64 bits JSON gives a float
        (_payload(**{"from": "Maria"}), "phone number as digits"),
        (_payload(type="hologram"), "not a message type"),
        (_payload(from_me="yes"), "from_me must be a boolean"),
        (_payload(media=["x"]), r"data\.media must be an object"),
        (
            build_status_body(INSTANCE, "X", "read", T0).replace(b'"read"', b'"seen"'),
            "data.status must be one of",
        ),
        (
            build_connection_body(INSTANCE, "open").replace(b'"open"', b'"half"'),
            "not open, connecting or close",
        ),
    ],
)
def test_unusable_bodies_are_payload_errors(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        _parse(body)


def test_missing_data_is_a_payload_error() -> None:
    envelope = json.loads(_payload())
    del envelope["data"]
    with pytest.raises(PayloadError, match="data is missing"):
        _parse(json.dumps(envelope).encode())


def test_routing_key_of_junk_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        simulator_provider.routing_key(_request(b'{"simulator": tru'))


# --------------------------------------------------------------------------------------------------
# Detection


def _own_bodies() -> list[bytes]:
    return [
        build_inbound_message_body(INSTANCE, "SIM-1", MARIA, "Oi", None, T0),
        build_status_body(INSTANCE, "wamid.X", "delivered", T0),
        build_connection_body(INSTANCE, "close", "logged_out"),
    ]


@pytest.mark.parametrize("body", _own_bodies())
def test_detects_its_own_bodies_and_the_gateways_do_not(body: bytes) -> None:
    request = _request(body)
    assert simulator_provider.detect(request)
    assert not evolution_provider.detect(request)
    assert not wuzapi_provider.detect(request)


def _other_bodies() -> list[bytes]:
    bodies = [
        p.read_bytes()
        for prefix in ("evolution_", "wuzapi_", "meta_")
        for p in sorted(EXAMPLES.glob(f"{prefix}*.json"))
    ]
    twilio = json.loads((EXAMPLES / "twilio_inbound.json").read_text(encoding="utf-8"))
    bodies.append(urlencode(twilio["form"]).encode())
    bodies.append(b'{"object":"whatsapp_business_account","entry":[]}')
    return bodies


@pytest.mark.parametrize("body", _other_bodies(), ids=lambda body: body[:30].decode(errors="replace"))
def test_does_not_detect_other_providers(body: bytes) -> None:
    assert not simulator_provider.detect(_request(body))


def test_simulator_flag_must_be_true() -> None:
    assert not simulator_provider.detect(_request(b'{"simulator": "true", "instance": "x"}'))
    assert not simulator_provider.detect(_request(b'{"simulator": 1, "instance": "x"}'))


def test_provider_name() -> None:
    assert simulator_provider.name is ProviderName.SIMULATOR
