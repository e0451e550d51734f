"""Meta Cloud API provider: fixtures parse into the right events, signatures, routing, bad input."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from messaging_whatsapp.providers.base import InstanceSecrets, PayloadError, ProviderName, WebhookRequest
from messaging_whatsapp.providers.events import (
    DeliveryStatus,
    Ignored,
    IgnoredReason,
    InboundMessage,
    Media,
    MessageType,
    NormalisedEvent,
    Referral,
    StatusError,
    StatusUpdate,
    Unusable,
)
from messaging_whatsapp.providers.meta import classify_error, meta_provider

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
MAPPING = Path(__file__).resolve().parents[1] / "fixtures" / "common_model_mapping.json"
PHONE_NUMBER_ID = "109283746501928"
MARIA, JOAO, ANA = "5511987654321", "553199887766", "5521976543210"
OUR_WAMID = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjRGOEEyQjdDOUQxRTNBNUI2QwA="


def _request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={"content-type": "application/json", **(headers or {})},
        url="https://api.exemplo.com.br/webhooks/meta",
    )


def _fixture_bytes(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def _parse_fixture(name: str) -> list[NormalisedEvent]:
    return meta_provider.parse(_request(_fixture_bytes(name)))


def _parse_payload(payload: object) -> list[NormalisedEvent]:
    return meta_provider.parse(_request(json.dumps(payload).encode()))


def _only_inbound(events: list[NormalisedEvent]) -> InboundMessage:
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, InboundMessage)
    return event


def _only_status(events: list[NormalisedEvent]) -> StatusUpdate:
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, StatusUpdate)
    return event


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _value(**fields: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551140028922", "phone_number_id": PHONE_NUMBER_ID},
        **fields,
    }


def _envelope(
    *values: dict[str, Any], field: str = "messages", waba: str = "104857293847561"
) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "changes": [{"value": value, "field": field} for value in values]}],
    }


def _message(msg_type: str, body: Any, sender: str = MARIA, **fields: Any) -> dict[str, Any]:
    message = {"from": sender, "id": f"wamid.{msg_type}.1", "timestamp": "1763035200", "type": msg_type}
    if body is not None:
        message[msg_type] = body
    return {**message, **fields}


def _contact(wa_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"profile": {"name": name}, "wa_id": wa_id, **fields}


# --------------------------------------------------------------------------------------------------
# Inbound fixtures


def test_text_message() -> None:
    message = _only_inbound(_parse_fixture("meta_text.json"))
    assert message.provider_message_id == "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBN0YyQzlFMUI0RDhBNkYwRTUzAA=="
    assert message.phone == MARIA
    assert message.contact_name == "Maria Souza"
    assert message.type is MessageType.TEXT
    assert message.text == "Oi! Vocês entregam em Pinheiros hoje?"
    assert message.timestamp == datetime(2025, 11, 13, 12, 0, tzinfo=UTC)
    assert message.timestamp.tzinfo is not None
    assert message.media is None
    assert message.quoted_message_id is None
    assert message.referral is None
    assert message.from_me is False
    assert message.user_id is None


def test_image_message_keeps_caption_on_media() -> None:
    message = _only_inbound(_parse_fixture("meta_image.json"))
    assert message.type is MessageType.IMAGE
    assert message.phone == ANA
    assert message.contact_name == "Ana Lima"
    assert message.media == Media(
        id="1048576231234567", mime_type="image/jpeg", caption="Esse é o modelo que eu quero"
    )
    assert message.text is None
    assert message.timestamp == _utc(1763035700)


def test_voice_note() -> None:
    message = _only_inbound(_parse_fixture("meta_audio_voice.json"))
    assert message.type is MessageType.AUDIO
    assert message.phone == JOAO
    assert message.contact_name == "João Pereira"
    assert message.media == Media(id="2087654312345678", mime_type="audio/ogg; codecs=opus")
    assert message.extra["voice"] is True


def test_document_message() -> None:
    message = _only_inbound(_parse_fixture("meta_document.json"))
    assert message.type is MessageType.DOCUMENT
    assert message.media is not None
    assert message.media.id == "3159753468246801"
    assert message.media.filename == "comprovante-pix-13-11.pdf"
    assert message.media.mime_type == "application/pdf"
    assert message.media.caption == "Comprovante do PIX"
    assert message.timestamp == _utc(1763036100)


def test_location_message() -> None:
    message = _only_inbound(_parse_fixture("meta_location.json"))
    assert message.type is MessageType.LOCATION
    assert message.extra["latitude"] == pytest.approx(-23.5613991)
    assert message.extra["longitude"] == pytest.approx(-46.6913247)
    assert message.extra["name"] == "Largo da Batata"
    assert message.extra["address"] == "Av. Brig. Faria Lima, Pinheiros, São Paulo - SP"


def test_interactive_button_reply() -> None:
    message = _only_inbound(_parse_fixture("meta_interactive_button_reply.json"))
    assert message.type is MessageType.INTERACTIVE
    assert message.button_payload == "confirmar_pedido_88123"
    assert message.text == "Confirmar pedido"
    assert message.quoted_message_id == OUR_WAMID
    assert message.timestamp == _utc(1763035295)


def test_interactive_list_reply() -> None:
    message = _only_inbound(_parse_fixture("meta_interactive_list_reply.json"))
    assert message.type is MessageType.INTERACTIVE
    assert message.button_payload == "horario_14h"
    assert message.text == "14h às 16h"
    assert message.extra["description"] == "Entrega na quinta-feira"
    assert message.quoted_message_id == OUR_WAMID


def test_template_quick_reply_button() -> None:
    message = _only_inbound(_parse_fixture("meta_template_quick_reply_button.json"))
    assert message.type is MessageType.BUTTON
    assert message.button_payload == "PARAR_PROMOCOES"
    assert message.text == "Não quero receber"
    assert message.phone == JOAO
    assert message.quoted_message_id == "wamid.HBgMNTUzMTk5ODg3NzY2FQIAERgSN0MxRTlBM0Y1QjJEOEU0QTYwAA=="


def test_reaction() -> None:
    message = _only_inbound(_parse_fixture("meta_reaction.json"))
    assert message.type is MessageType.REACTION
    assert message.text == "👍"
    assert message.extra["message_id"] == OUR_WAMID


def test_reaction_removed_has_no_text() -> None:
    body = {"message_id": OUR_WAMID}
    message = _only_inbound(_parse_payload(_envelope(_value(messages=[_message("reaction", body)]))))
    assert message.type is MessageType.REACTION
    assert message.text is None
    assert message.extra["message_id"] == OUR_WAMID


def test_click_to_whatsapp_referral() -> None:
    message = _only_inbound(_parse_fixture("meta_referral_ctwa.json"))
    assert message.type is MessageType.TEXT
    assert message.text == "Olá! Tenho interesse e queria mais informações."
    assert message.referral == Referral(
        source_url="https://fb.me/4Kq8ZpT2a",
        source_id="120210987654321098",
        source_type="ad",
        headline="Promoção de Novembro",
        click_id=(
            "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"
        ),
    )


@pytest.mark.parametrize(
    ("msg_type", "expected"),
    [("video", MessageType.VIDEO), ("sticker", MessageType.STICKER)],
)
def test_other_media_types(msg_type: str, expected: MessageType) -> None:
    body = {"id": "999", "mime_type": "video/mp4" if msg_type == "video" else "image/webp"}
    message = _only_inbound(_parse_payload(_envelope(_value(messages=[_message(msg_type, body)]))))
    assert message.type is expected
    assert message.media is not None
    assert message.media.id == "999"


def test_shared_contacts() -> None:
    cards = [{"name": {"formatted_name": "Pedro"}, "phones": [{"phone": "+55 11 91234-5678"}]}]
    message = _only_inbound(_parse_payload(_envelope(_value(messages=[_message("contacts", cards)]))))
    assert message.type is MessageType.CONTACTS
    assert message.extra["contacts"] == cards


def test_unsupported_message_is_unknown_with_errors() -> None:
    errors = [{"code": 131051, "title": "Message type unknown"}]
    raw = _message("unsupported", None, errors=errors)
    message = _only_inbound(_parse_payload(_envelope(_value(messages=[raw]))))
    assert message.type is MessageType.UNKNOWN
    assert message.extra["meta_type"] == "unsupported"
    assert message.extra["errors"] == errors


@pytest.mark.parametrize(
    ("msg_type", "body"),
    [
        ("order", {"catalog_id": "123", "product_items": [{"product_retailer_id": "sku-1", "quantity": 2}]}),
        ("system", {"body": "Maria changed her number", "type": "user_changed_number"}),
    ],
)
def test_order_and_system_are_unknown_with_raw_body(msg_type: str, body: dict[str, Any]) -> None:
    message = _only_inbound(_parse_payload(_envelope(_value(messages=[_message(msg_type, body)]))))
    assert message.type is MessageType.UNKNOWN
    assert message.extra["meta_type"] == msg_type
    assert message.extra[msg_type] == body


def test_flow_reply_keeps_response() -> None:
    reply = {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{}"}}
    message = _only_inbound(_parse_payload(_envelope(_value(messages=[_message("interactive", reply)]))))
    assert message.type is MessageType.INTERACTIVE
    assert message.extra["interactive_type"] == "nfm_reply"
    assert message.extra["nfm_reply"]["response_json"] == "{}"
    assert message.text == "Sent"


def test_business_scoped_user_id_from_message_and_contact() -> None:
    contacts = [_contact(MARIA, "Maria Souza", user_id="BR.1502576394655843")]
    with_field = _message("text", {"body": "oi"}, from_user_id="BR.1502576394655843")
    from_message = _only_inbound(_parse_payload(_envelope(_value(contacts=contacts, messages=[with_field]))))
    assert from_message.user_id == "BR.1502576394655843"
    assert from_message.phone == MARIA
    assert from_message.contact_name == "Maria Souza"

    without_field = _message("text", {"body": "oi"})
    from_contact = _only_inbound(
        _parse_payload(_envelope(_value(contacts=contacts, messages=[without_field])))
    )
    assert from_contact.user_id == "BR.1502576394655843"


def test_username_user_without_phone_is_keyed_by_user_id() -> None:
    contacts = [{"profile": {"name": "maria.s"}, "user_id": "BR.77"}]
    raw = _message("text", {"body": "oi"}, from_user_id="BR.77")
    del raw["from"]
    message = _only_inbound(_parse_payload(_envelope(_value(contacts=contacts, messages=[raw]))))
    assert message.phone is None
    assert message.user_id == "BR.77"
    assert message.contact_name == "maria.s"


def test_contact_name_is_matched_by_wa_id_not_position() -> None:
    contacts = [_contact(ANA, "Ana Lima"), _contact(MARIA, "Maria Souza")]
    messages = [_message("text", {"body": "1"}, sender=MARIA), _message("text", {"body": "2"}, sender=JOAO)]
    events = _parse_payload(_envelope(_value(contacts=contacts, messages=messages)))
    assert [e.contact_name for e in events if isinstance(e, InboundMessage)] == ["Maria Souza", None]


def test_forwarded_flag() -> None:
    raw = _message("text", {"body": "fwd"}, context={"forwarded": True})
    message = _only_inbound(_parse_payload(_envelope(_value(messages=[raw]))))
    assert message.extra["forwarded"] is True
    assert message.quoted_message_id is None


# --------------------------------------------------------------------------------------------------
# Statuses


@pytest.mark.parametrize(
    ("name", "status", "seconds"),
    [
        ("meta_status_sent.json", DeliveryStatus.SENT, 1763035261),
        ("meta_status_delivered.json", DeliveryStatus.DELIVERED, 1763035262),
        ("meta_status_read.json", DeliveryStatus.READ, 1763035275),
    ],
)
def test_delivery_statuses(name: str, status: DeliveryStatus, seconds: int) -> None:
    update = _only_status(_parse_fixture(name))
    assert update.provider_message_id == OUR_WAMID
    assert update.status is status
    assert update.timestamp == _utc(seconds)
    assert update.recipient == MARIA
    assert update.error is None
    assert update.callback_data is None


@pytest.mark.parametrize(
    ("name", "code", "title", "recipient", "number_level"),
    [
        # Outside the 24-hour window and an unreachable person: the sender's doing, no health cost.
        ("meta_status_failed_131047.json", "131047", "Re-engagement message", JOAO, False),
        ("meta_status_failed_131026.json", "131026", "Message undeliverable", ANA, False),
        (
            "meta_status_failed_131049.json",
            "131049",
            "This message was not delivered to maintain healthy ecosystem engagement.",
            ANA,
            True,
        ),
    ],
)
def test_failed_statuses_are_permanent(
    name: str, code: str, title: str, recipient: str, number_level: bool
) -> None:
    update = _only_status(_parse_fixture(name))
    assert update.status is DeliveryStatus.FAILED
    assert update.error == StatusError(code=code, title=title, permanent=True, number_level=number_level)
    assert update.recipient == recipient


def test_callback_data_is_echoed() -> None:
    update = _only_status(_parse_fixture("meta_status_failed_131049.json"))
    assert update.callback_data == "campanha=black-friday;lote=7"


def test_transient_failure_is_not_permanent() -> None:
    failed = {
        "id": OUR_WAMID,
        "status": "failed",
        "timestamp": "1763035300",
        "recipient_id": MARIA,
        "errors": [{"code": 131056, "title": "(Business Account, Consumer Account) pair rate limit hit"}],
    }
    update = _only_status(_parse_payload(_envelope(_value(statuses=[failed]))))
    assert update.error is not None
    assert update.error.code == "131056"
    assert update.error.permanent is False


def test_failed_without_errors_still_carries_an_error() -> None:
    failed = {"id": OUR_WAMID, "status": "failed", "timestamp": "1763035300", "recipient_id": MARIA}
    update = _only_status(_parse_payload(_envelope(_value(statuses=[failed]))))
    assert update.status is DeliveryStatus.FAILED
    assert update.error is not None
    assert update.error.permanent is True


def test_played_counts_as_read() -> None:
    played = {"id": OUR_WAMID, "status": "played", "timestamp": "1763035300", "recipient_id": MARIA}
    assert _only_status(_parse_payload(_envelope(_value(statuses=[played])))).status is DeliveryStatus.READ


def test_unknown_status_is_ignored() -> None:
    deleted = {"id": OUR_WAMID, "status": "deleted", "timestamp": "1763035300", "recipient_id": MARIA}
    events = _parse_payload(_envelope(_value(statuses=[deleted])))
    assert len(events) == 1
    assert isinstance(events[0], Ignored)
    assert events[0].reason is IgnoredReason.UNHANDLED_EVENT


# --------------------------------------------------------------------------------------------------
# Batches, account errors, other fields


def test_multi_entry_batch_yields_every_item_in_order() -> None:
    status = {"id": OUR_WAMID, "status": "delivered", "timestamp": "1763035262", "recipient_id": MARIA}
    first = _envelope(
        _value(contacts=[_contact(MARIA, "Maria Souza")], messages=[_message("text", {"body": "a"})]),
        _value(statuses=[status]),
    )
    other_number = _value(
        contacts=[_contact(ANA, "Ana Lima")],
        messages=[_message("text", {"body": "b"}, sender=ANA), _message("text", {"body": "c"}, sender=ANA)],
    )
    other_number["metadata"]["phone_number_id"] = "555000111222333"
    second = _envelope(other_number, waba="200000000000001")
    payload = {"object": "whatsapp_business_account", "entry": first["entry"] + second["entry"]}

    events = _parse_payload(payload)

    kinds = [type(e) for e in events]
    assert kinds == [InboundMessage, StatusUpdate, InboundMessage, InboundMessage]
    texts = [e.text for e in events if isinstance(e, InboundMessage)]
    assert texts == ["a", "b", "c"]
    assert [e.contact_name for e in events if isinstance(e, InboundMessage)] == [
        "Maria Souza",
        "Ana Lima",
        "Ana Lima",
    ]
    # Routed by the first number found (documented limitation of routing_key).
    assert meta_provider.routing_key(_request(json.dumps(payload).encode())) == PHONE_NUMBER_ID


def test_account_level_errors_are_ignored_with_detail() -> None:
    error = {
        "code": 131045,
        "title": "Incorrect certificate",
        "message": "Incorrect certificate",
        "error_data": {"details": "Message failed to send due to a phone number registration error."},
    }
    events = _parse_payload(_envelope(_value(errors=[error])))
    assert len(events) == 1
    ignored = events[0]
    assert isinstance(ignored, Ignored)
    assert ignored.reason is IgnoredReason.UNHANDLED_EVENT
    assert "131045" in ignored.detail
    assert "registration error" in ignored.detail


def test_non_message_fields_are_ignored() -> None:
    events = _parse_payload(
        _envelope({"event": "APPROVED", "message_template_id": 1}, field="message_template_status_update")
    )
    assert len(events) == 1
    assert isinstance(events[0], Ignored)
    assert events[0].reason is IgnoredReason.UNHANDLED_EVENT
    assert "message_template_status_update" in events[0].detail


def test_other_object_is_ignored() -> None:
    events = _parse_payload({"object": "page", "entry": []})
    assert len(events) == 1
    assert isinstance(events[0], Ignored)


def test_empty_entry_list_yields_nothing() -> None:
    assert _parse_payload({"object": "whatsapp_business_account", "entry": []}) == []


# --------------------------------------------------------------------------------------------------
# Signature


def _signature_example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_fixture_bytes("meta_signature_example.json"))
    return data


def _signed_request(body: bytes, header: str | None) -> WebhookRequest:
    return _request(body, {} if header is None else {"x-hub-signature-256": header})


def test_signature_example_is_valid() -> None:
    example = _signature_example()
    request = _signed_request(example["raw_body"].encode(), example["headers"]["X-Hub-Signature-256"])
    assert meta_provider.verify(
        request, InstanceSecrets(webhook_secret="w", app_secret=example["app_secret"])
    )


def test_signature_is_over_raw_bytes_not_reserialised_json() -> None:
    example = _signature_example()
    reserialised = json.dumps(json.loads(example["raw_body"]), ensure_ascii=False, separators=(",", ":"))
    request = _signed_request(reserialised.encode(), example["headers"]["X-Hub-Signature-256"])
    assert not meta_provider.verify(
        request, InstanceSecrets(webhook_secret="w", app_secret=example["app_secret"])
    )


def test_tampered_body_is_invalid() -> None:
    example = _signature_example()
    tampered = example["raw_body"].replace("Pinheiros", "Pinheir0s").encode()
    request = _signed_request(tampered, example["headers"]["X-Hub-Signature-256"])
    assert not meta_provider.verify(
        request, InstanceSecrets(webhook_secret="w", app_secret=example["app_secret"])
    )


def test_missing_header_is_invalid() -> None:
    example = _signature_example()
    request = _signed_request(example["raw_body"].encode(), None)
    assert not meta_provider.verify(
        request, InstanceSecrets(webhook_secret="w", app_secret=example["app_secret"])
    )


def test_wrong_or_missing_secret_is_invalid() -> None:
    example = _signature_example()
    request = _signed_request(example["raw_body"].encode(), example["headers"]["X-Hub-Signature-256"])
    assert not meta_provider.verify(request, InstanceSecrets(webhook_secret="w", app_secret="0" * 32))
    assert not meta_provider.verify(request, InstanceSecrets(webhook_secret="w"))


@pytest.mark.parametrize("header", ["", "sha256=", "ff60053a5a667d77", "sha1=abc", "sha256=çç"])
def test_malformed_headers_are_invalid(header: str) -> None:
    example = _signature_example()
    request = _signed_request(example["raw_body"].encode(), header)
    assert not meta_provider.verify(
        request, InstanceSecrets(webhook_secret="w", app_secret=example["app_secret"])
    )


def test_fresh_signature_round_trip() -> None:
    body = _fixture_bytes("meta_status_read.json")
    digest = hmac.new(b"another-secret", body, hashlib.sha256).hexdigest()
    request = _signed_request(body, f"sha256={digest}")
    assert meta_provider.verify(request, InstanceSecrets(webhook_secret="w", app_secret="another-secret"))


# --------------------------------------------------------------------------------------------------
# Routing and detection

META_BODIES = sorted(
    p.name
    for p in EXAMPLES.glob("meta_*.json")
    if not any(part in p.name for part in ("_request", "_response", "_signature_", "_verify_"))
)
TWILIO_DESCRIPTORS = sorted(p.name for p in EXAMPLES.glob("twilio_*.json") if "raw_body" in p.read_text())


@pytest.mark.parametrize("name", META_BODIES)
def test_every_meta_body_routes_detects_and_parses(name: str) -> None:
    request = _request(_fixture_bytes(name))
    assert meta_provider.detect(request)
    assert meta_provider.routing_key(request) == PHONE_NUMBER_ID
    events = meta_provider.parse(request)
    assert len(events) == 1
    assert isinstance(events[0], InboundMessage | StatusUpdate)


def test_detect_by_signature_header_alone() -> None:
    assert meta_provider.detect(_request(b"{}", {"x-hub-signature-256": "sha256=00"}))


@pytest.mark.parametrize("name", TWILIO_DESCRIPTORS)
def test_detect_rejects_twilio_webhooks(name: str) -> None:
    descriptor = json.loads(_fixture_bytes(name))
    request = WebhookRequest(
        body=descriptor["raw_body"].encode(),
        headers={k.lower(): v for k, v in descriptor["headers"].items()},
        url=descriptor["url"],
    )
    assert not meta_provider.detect(request)


def test_routing_key_is_none_without_metadata() -> None:
    payload = _envelope({"event": "x"}, field="account_update")
    assert meta_provider.routing_key(_request(json.dumps(payload).encode())) is None


def test_provider_name() -> None:
    assert meta_provider.name is ProviderName.META


# --------------------------------------------------------------------------------------------------
# Bad input: always PayloadError, never another exception


@pytest.mark.parametrize(
    "body",
    [
        b'{"object":"whatsapp_business_account","entry":[{"id":',
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[" * 100_000,
    ],
)
def test_unreadable_bodies(body: bytes) -> None:
    with pytest.raises(PayloadError):
        meta_provider.parse(_request(body))
    with pytest.raises(PayloadError):
        meta_provider.routing_key(_request(body))


@pytest.mark.parametrize("body", [b"[]", b'"whatsapp_business_account"', b"42", b"null"])
def test_non_object_json(body: bytes) -> None:
    with pytest.raises(PayloadError):
        meta_provider.parse(_request(body))
    with pytest.raises(PayloadError):
        meta_provider.routing_key(_request(body))


@pytest.mark.parametrize("entry", [{"id": "1"}, "x", 3, None])
def test_entry_not_a_list(entry: object) -> None:
    payload = {"object": "whatsapp_business_account", "entry": entry}
    with pytest.raises(PayloadError, match="entry"):
        _parse_payload(payload)
    with pytest.raises(PayloadError, match="entry"):
        meta_provider.routing_key(_request(json.dumps(payload).encode()))


def test_missing_entry() -> None:
    with pytest.raises(PayloadError, match="entry"):
        _parse_payload({"object": "whatsapp_business_account"})


@pytest.mark.parametrize("bad_id", [12345, None, "", ["wamid.x"]])
def test_message_id_must_be_a_string(bad_id: object) -> None:
    raw = _message("text", {"body": "oi"}, id=bad_id)
    _only_unusable(_parse_payload(_envelope(_value(messages=[raw]))), r"messages\[0\]\.id")


def test_message_without_id() -> None:
    raw = _message("text", {"body": "oi"})
    del raw["id"]
    _only_unusable(_parse_payload(_envelope(_value(messages=[raw]))), "id")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda m: m.update(timestamp="yesterday"), "timestamp"),
        (lambda m: m.update(timestamp="99999999999999999999"), "timestamp"),
        (lambda m: m.update(timestamp=True), "timestamp"),
        (lambda m: m.pop("timestamp"), "timestamp"),
        (lambda m: m.update(text={"body": 7}), "body"),
        (lambda m: m.update(text="hello"), "text"),
        (lambda m: m.update(type=None), "type"),
        (lambda m: m.update(context="wamid"), "context"),
        (lambda m: m.update(referral=[1]), "referral"),
        (lambda m: m.pop("from"), "from"),
    ],
)
def test_wrong_shapes_inside_a_message(mutate: Any, where: str) -> None:
    raw = _message("text", {"body": "oi"})
    mutate(raw)
    # One bad message is one unusable item: the batch's other items still apply (worker DLQs it).
    _only_unusable(_parse_payload(_envelope(_value(messages=[raw]))), where)


def test_wrong_shapes_inside_a_status() -> None:
    status = {"id": OUR_WAMID, "status": "failed", "timestamp": "1763035300", "errors": [{"code": True}]}
    _only_unusable(_parse_payload(_envelope(_value(statuses=[status]))), "code")
    with pytest.raises(PayloadError, match="statuses"):
        _parse_payload(_envelope(_value(statuses={"id": OUR_WAMID})))
    with pytest.raises(PayloadError, match="value"):
        _parse_payload(
            {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}
        )


def _only_unusable(events: list[NormalisedEvent], match: str) -> Unusable:
    [event] = events
    assert isinstance(event, Unusable)
    assert re.search(match, event.reason), event.reason
    return event


def test_one_bad_item_leaves_the_rest_of_the_batch() -> None:
    good = _message("text", {"body": "oi"}, id="wamid.GOOD")
    bad = _message("text", {"body": "oi"}, id="wamid.BAD")
    del bad["timestamp"]
    status = {"id": OUR_WAMID, "status": "delivered", "timestamp": "1763035300"}
    events = _parse_payload(_envelope(_value(messages=[good, bad], statuses=[status])))
    assert [type(event) for event in events] == [InboundMessage, Unusable, StatusUpdate]
    unusable = events[1]
    assert isinstance(unusable, Unusable)
    assert unusable.item == "entry[0].changes[0].value.messages[1]"
    assert "timestamp" in unusable.reason


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*prefix, index))


def _replaced(payload: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    mutated = copy.deepcopy(payload)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return mutated


@pytest.mark.parametrize(
    "name",
    [
        "meta_referral_ctwa.json",
        "meta_interactive_list_reply.json",
        "meta_location.json",
        "meta_status_failed_131049.json",
    ],
)
def test_any_wrong_type_anywhere_raises_only_payload_error(name: str) -> None:
    payload = json.loads(_fixture_bytes(name))
    for path in _paths(payload):
        for replacement in (None, 7, True, "x", [], {}, [None], {"x": 1}):
            body = json.dumps(_replaced(payload, path, replacement)).encode()
            try:
                events = meta_provider.parse(_request(body))
            except PayloadError:
                continue
            assert isinstance(events, list), path


# --------------------------------------------------------------------------------------------------
# Error classes


def test_classify_error_follows_the_mapping() -> None:
    mapping = json.loads(MAPPING.read_text())["error_classes"]["meta"]
    for code, expected in mapping.items():
        assert classify_error(code) == expected, code


def test_unknown_error_codes_are_fix_request() -> None:
    assert classify_error("999999") == "fix_request"
    assert classify_error("") == "fix_request"


def test_a_batch_of_one_number_is_not_split() -> None:
    body = _fixture_bytes("meta_status_read.json")
    assert meta_provider.split_by_number(_request(body)) == {}


def test_a_batch_of_two_numbers_splits_into_one_body_per_number_in_order() -> None:
    payload = json.loads(_fixture_bytes("meta_text.json"))
    other = copy.deepcopy(payload["entry"][0])
    other["changes"][0]["value"]["metadata"]["phone_number_id"] = "200000000000002"
    other["changes"][0]["value"]["messages"][0]["id"] = "wamid.OTHER"
    # One entry may even hold changes of both numbers.
    payload["entry"][0]["changes"].append(copy.deepcopy(other["changes"][0]))
    payload["entry"].append(other)
    request = _request(json.dumps(payload).encode())
    first_number = meta_provider.routing_key(request)

    parts = meta_provider.split_by_number(request)

    assert list(parts) == [first_number, "200000000000002"]
    ids = {
        number: [event.provider_message_id for event in meta_provider.parse(_request(body))]  # type: ignore[union-attr]
        for number, body in parts.items()
    }
    original = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert ids == {first_number: [original], "200000000000002": ["wamid.OTHER", "wamid.OTHER"]}
    for body in parts.values():
        assert meta_provider.routing_key(_request(body)) in parts
        assert meta_provider.split_by_number(_request(body)) == {}
