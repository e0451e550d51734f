"""WuzAPI provider: both delivery modes, HMAC and secret verification, routing, parsing, bad input."""

from __future__ import annotations

import hashlib
import hmac
import json
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
    StatusUpdate,
)
from messaging_whatsapp.providers.evolution import evolution_provider
from messaging_whatsapp.providers.simulator import build_status_body, simulator_provider
from messaging_whatsapp.providers.wuzapi import wuzapi_provider

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
MARIA = "5511987654321"
MARIA_JID = f"{MARIA}@s.whatsapp.net"
MARIA_LID = "97318254610077@lid"
OUR_ID = "3EB0C7A1F45D2E8B9A6C31"
USER_ID = "4f7d1c9a2b6e8f03a5c7d9e1b3f5a7c9"
SECRET = "whsec-wuzapi-0123456789"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

DESCRIPTORS = {"wuzapi_rest_examples.json", "wuzapi_hmac_example.json"}
WEBHOOK_FIXTURES = sorted(p.name for p in EXAMPLES.glob("wuzapi_*.json") if p.name not in DESCRIPTORS)
HMAC_EXAMPLE: dict[str, Any] = json.loads((EXAMPLES / "wuzapi_hmac_example.json").read_text(encoding="utf-8"))
HMAC_KEY: str = HMAC_EXAMPLE["hmac_key"]


def _request(
    body: bytes,
    content_type: str = JSON,
    headers: dict[str, str] | None = None,
    path_secret: str | None = None,
) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={"content-type": content_type, **(headers or {})},
        url="https://api.exemplo.com.br/webhooks/wuzapi",
        path_secret=path_secret,
    )


def _hmac_request(mode: str, body: bytes | None = None, signature: str | None = None) -> WebhookRequest:
    example = HMAC_EXAMPLE[mode]
    headers = {name.lower(): value for name, value in example["headers"].items()}
    content_type = headers.pop("content-type")
    if signature is not None:
        headers["x-hmac-signature"] = signature
    raw = body if body is not None else example["raw_body"].encode("utf-8")
    return _request(raw, content_type, headers)


def _fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return payload


def _parse_fixture(name: str) -> list[NormalisedEvent]:
    return wuzapi_provider.parse(_request((EXAMPLES / name).read_bytes()))


def _parse(payload: object) -> list[NormalisedEvent]:
    return wuzapi_provider.parse(_request(json.dumps(payload).encode()))


def _form_body(postmap: dict[str, Any], routing: tuple[str, ...] = ("instanceName", "userID")) -> bytes:
    """Form mode: routing fields beside jsonData, the rest of the postmap inside it."""
    inner = {key: value for key, value in postmap.items() if key not in routing}
    fields = {"jsonData": json.dumps(inner), **{key: postmap[key] for key in routing if key in postmap}}
    return urlencode(sorted(fields.items())).encode()


def _one(events: list[NormalisedEvent]) -> NormalisedEvent:
    assert len(events) == 1
    return events[0]


def _inbound(events: list[NormalisedEvent]) -> InboundMessage:
    event = _one(events)
    assert isinstance(event, InboundMessage)
    return event


def _message(info: dict[str, Any] | None = None, message: dict[str, Any] | None = None) -> dict[str, Any]:
    """wuzapi_message.json with Info fields and/or the Message body replaced."""
    payload = _fixture("wuzapi_message.json")
    payload["event"]["Info"].update(info or {})
    if message is not None:
        payload["event"]["Message"] = message
    return payload


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------------------------------
# Message


def test_text_message() -> None:
    message = _inbound(_parse_fixture("wuzapi_message.json"))
    assert message == InboundMessage(
        provider_message_id="AC4E1B7F2D9A06C3E5B8F1D2A7C9E4B6",
        phone=MARIA,
        type=MessageType.TEXT,
        timestamp=datetime(2025, 11, 13, 12, 0, tzinfo=UTC),
        contact_name="Maria Souza",
        text="Oi! Vocês entregam em Pinheiros hoje?",
        user_id=MARIA_LID,
    )


def test_message_sent_from_the_business_phone_takes_the_customer_from_the_chat() -> None:
    message = _inbound(_parse_fixture("wuzapi_message_fromme.json"))
    assert message.provider_message_id == "3A0D6B9E4C1F7A2E8B50"
    assert message.from_me is True
    # Sender is the business (551140028922); the customer is the chat.
    assert message.phone == MARIA
    assert message.text == "Maria, seu pedido saiu para entrega 🛵"
    assert message.contact_name is None
    assert message.timestamp == _at("2025-11-13T12:10:00Z")


def test_group_message_is_ignored() -> None:
    event = _one(_parse_fixture("wuzapi_message_group.json"))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.GROUP


def test_group_by_chat_jid_alone_is_ignored() -> None:
    event = _one(_parse(_message({"Chat": "120363041234567890@g.us", "IsGroup": False})))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.GROUP


@pytest.mark.parametrize("chat", ["status@broadcast", "120363000000000001@newsletter"])
def test_status_broadcast_and_newsletter_are_ignored(chat: str) -> None:
    event = _one(_parse(_message({"Chat": chat})))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.BROADCAST


def test_image_uses_the_proto_fields_and_the_downloaded_file_name() -> None:
    message = _inbound(_parse_fixture("wuzapi_message_image.json"))
    assert message.provider_message_id == "F1A7C3E9B5D2084C6E1A9F7B3D5C8E20"
    assert message.type is MessageType.IMAGE
    assert message.text is None
    assert message.media is not None
    assert message.media.url is not None
    assert message.media.url.startswith("https://mmg.whatsapp.net/o1/v/t62.7118-24/")
    assert message.media.mime_type == "image/jpeg"
    assert message.media.caption == "Esse é o modelo que eu quero"
    assert message.media.filename == "F1A7C3E9B5D2084C6E1A9F7B3D5C8E20.jpe"
    assert message.extra == {"base64_in_payload": True}


def test_root_mime_type_fills_in_when_the_proto_has_none() -> None:
    payload = _message(message={"documentMessage": {"URL": "https://mmg/d.enc", "fileName": "boleto.pdf"}})
    payload["mimeType"] = "application/pdf"
    message = _inbound(_parse(payload))
    assert message.type is MessageType.DOCUMENT
    assert message.media == Media(url="https://mmg/d.enc", mime_type="application/pdf", filename="boleto.pdf")
    assert "base64_in_payload" not in message.extra


def test_reaction() -> None:
    message = _inbound(_parse_fixture("wuzapi_message_reaction.json"))
    assert message.type is MessageType.REACTION
    assert message.text == "👍"
    assert message.extra == {"message_id": OUR_ID}


def test_removed_reaction_has_no_text() -> None:
    reaction = {"key": {"ID": OUR_ID, "fromMe": True, "remoteJID": MARIA_JID}, "text": ""}
    message = _inbound(_parse(_message(message={"reactionMessage": reaction})))
    assert message.text is None


def test_voice_note() -> None:
    audio = {"URL": "https://mmg/a.enc", "mimetype": "audio/ogg; codecs=opus", "PTT": True, "seconds": 7}
    message = _inbound(_parse(_message(message={"audioMessage": audio})))
    assert message.type is MessageType.AUDIO
    assert message.extra == {"voice": True}


@pytest.mark.parametrize(
    ("kind", "expected"), [("videoMessage", MessageType.VIDEO), ("stickerMessage", MessageType.STICKER)]
)
def test_video_and_sticker(kind: str, expected: MessageType) -> None:
    message = _inbound(_parse(_message(message={kind: {"URL": "https://mmg/x.enc", "mimetype": "x/y"}})))
    assert message.type is expected
    assert message.media == Media(url="https://mmg/x.enc", mime_type="x/y")


def test_location() -> None:
    location = {"degreesLatitude": -23.56, "degreesLongitude": -46.65, "name": "Loja", "URL": "https://m.ps"}
    message = _inbound(_parse(_message(message={"locationMessage": location})))
    assert message.type is MessageType.LOCATION
    assert message.extra == {"latitude": -23.56, "longitude": -46.65, "name": "Loja", "url": "https://m.ps"}


def test_contacts_array() -> None:
    cards = {"contacts": [{"displayName": "Ana", "vcard": "V1"}, {"displayName": "Bia", "vcard": "V2"}]}
    message = _inbound(_parse(_message(message={"contactsArrayMessage": cards})))
    assert message.type is MessageType.CONTACTS
    assert message.extra["contacts"] == [{"name": "Ana", "vcard": "V1"}, {"name": "Bia", "vcard": "V2"}]


def test_extended_text_reply_has_the_quoted_id() -> None:
    body = {"extendedTextMessage": {"text": "Pode ser às 14h", "contextInfo": {"stanzaID": OUR_ID}}}
    message = _inbound(_parse(_message(message=body)))
    assert message.text == "Pode ser às 14h"
    assert message.quoted_message_id == OUR_ID


def test_buttons_reply_reads_the_oneof_display_text() -> None:
    reply = {
        "selectedButtonID": "confirmar_pedido_88123",
        "Response": {"SelectedDisplayText": "Confirmar pedido"},
        "contextInfo": {"stanzaID": OUR_ID},
        "type": 1,
    }
    message = _inbound(_parse(_message(message={"buttonsResponseMessage": reply})))
    assert message.type is MessageType.BUTTON
    assert message.button_payload == "confirmar_pedido_88123"
    assert message.text == "Confirmar pedido"
    assert message.quoted_message_id == OUR_ID


def test_template_quick_reply_and_list_reply() -> None:
    template = {"selectedID": "PARAR_PROMOCOES", "selectedDisplayText": "Parar"}
    message = _inbound(_parse(_message(message={"templateButtonReplyMessage": template})))
    assert (message.type, message.button_payload, message.text) == (
        MessageType.BUTTON,
        "PARAR_PROMOCOES",
        "Parar",
    )
    listed = {"title": "Amanhã", "singleSelectReply": {"selectedRowID": "row_amanha"}}
    message = _inbound(_parse(_message(message={"listResponseMessage": listed})))
    assert (message.type, message.button_payload, message.text) == (
        MessageType.INTERACTIVE,
        "row_amanha",
        "Amanhã",
    )


def test_native_flow_reply() -> None:
    reply = {
        "body": {"text": "Sim"},
        "InteractiveResponseMessage": {"NativeFlowResponseMessage": {"paramsJSON": '{"id":"confirmar"}'}},
    }
    message = _inbound(_parse(_message(message={"interactiveResponseMessage": reply})))
    assert message.type is MessageType.INTERACTIVE
    assert message.button_payload == "confirmar"
    assert message.text == "Sim"


def test_unknown_content_is_kept_as_unknown() -> None:
    message = _inbound(_parse(_message(message={"pollCreationMessageV3": {"name": "?"}})))
    assert message.type is MessageType.UNKNOWN
    assert message.extra == {"wuzapi_types": ["pollCreationMessageV3"]}


@pytest.mark.parametrize(
    ("message", "is_edit"),
    [({"protocolMessage": {"type": 0, "key": {"ID": "X"}}}, False), ({"conversation": "editado"}, True)],
)
def test_revokes_and_edits_are_unhandled(message: dict[str, Any], is_edit: bool) -> None:
    payload = _message(message=message)
    payload["event"]["IsEdit"] = is_edit
    event = _one(_parse(payload))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.UNHANDLED_EVENT


def test_lid_sender_takes_the_phone_from_sender_alt() -> None:
    payload = _message(
        {"Sender": MARIA_LID, "SenderAlt": MARIA_JID, "Chat": MARIA_LID, "AddressingMode": "lid"}
    )
    message = _inbound(_parse(payload))
    assert message.phone == MARIA
    assert message.user_id == MARIA_LID


def test_lid_sender_without_alt_falls_back_to_a_phone_chat() -> None:
    message = _inbound(_parse(_message({"Sender": MARIA_LID, "SenderAlt": "", "Chat": MARIA_JID})))
    assert message.phone == MARIA
    assert message.user_id == MARIA_LID


def test_from_me_to_a_lid_chat_uses_recipient_alt() -> None:
    payload = _message({"IsFromMe": True, "Sender": "551140028922@s.whatsapp.net", "Chat": MARIA_LID,
                        "RecipientAlt": MARIA_JID})  # fmt: skip
    message = _inbound(_parse(payload))
    assert (message.phone, message.user_id, message.from_me) == (MARIA, MARIA_LID, True)


def test_no_phone_anywhere_is_a_sender_known_by_lid() -> None:
    [message] = _parse(_message({"Sender": MARIA_LID, "SenderAlt": "", "Chat": MARIA_LID}))
    assert isinstance(message, InboundMessage)
    assert (message.phone, message.user_id) == (None, MARIA_LID)


def test_no_phone_and_no_lid_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="no phone number or LID"):
        _parse(_message({"Sender": "", "SenderAlt": "", "Chat": ""}))


# --------------------------------------------------------------------------------------------------
# ReadReceipt


def test_read_receipt_gives_one_status_per_message_id() -> None:
    events = _parse_fixture("wuzapi_readreceipt.json")
    when = _at("2025-11-13T12:01:15Z")
    assert events == [
        StatusUpdate(OUR_ID, DeliveryStatus.READ, when, recipient=MARIA),
        StatusUpdate("3EB0A94D2C7E1F5B8A0D63", DeliveryStatus.READ, when, recipient=MARIA),
    ]


def test_delivered_receipt() -> None:
    assert _parse_fixture("wuzapi_readreceipt_delivered.json") == [
        StatusUpdate(OUR_ID, DeliveryStatus.DELIVERED, _at("2025-11-13T12:01:02Z"), recipient=MARIA)
    ]


def test_read_self_is_a_self_receipt() -> None:
    payload = _fixture("wuzapi_readreceipt.json")
    payload["state"] = "ReadSelf"
    payload["event"]["Type"] = "read-self"
    event = _one(_parse(payload))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.SELF_RECEIPT


@pytest.mark.parametrize(
    ("receipt_type", "status"), [("", DeliveryStatus.DELIVERED), ("read", DeliveryStatus.READ)]
)
def test_receipt_without_state_is_read_from_its_type(receipt_type: str, status: DeliveryStatus) -> None:
    payload = _fixture("wuzapi_readreceipt.json")
    del payload["state"]
    payload["event"]["Type"] = receipt_type
    assert {event.status for event in _parse(payload) if isinstance(event, StatusUpdate)} == {status}


def test_unknown_receipt_state_and_group_receipts_are_ignored() -> None:
    payload = _fixture("wuzapi_readreceipt.json")
    payload["state"] = "Played"
    assert _parse(payload) == [Ignored(IgnoredReason.UNHANDLED_EVENT, "wuzapi receipt state 'Played'")]
    payload = _fixture("wuzapi_readreceipt.json")
    payload["event"].update({"Chat": "120363041234567890@g.us", "IsGroup": True})
    event = _one(_parse(payload))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.GROUP


# --------------------------------------------------------------------------------------------------
# Lifecycle and other events


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Connected", ConnectionUpdate(ConnectionState.OPEN)),
        ("Disconnected", ConnectionUpdate(ConnectionState.CLOSE, reason="disconnected")),
        ("LoggedOut", ConnectionUpdate(ConnectionState.CLOSE, reason="logged_out")),
        ("TemporaryBan", ConnectionUpdate(ConnectionState.CLOSE, reason="temporary_ban")),
    ],
)
def test_lifecycle_events(kind: str, expected: ConnectionUpdate) -> None:
    payload = _fixture("wuzapi_connected.json")
    payload["type"] = kind
    if kind == "LoggedOut":
        payload["event"] = {"OnConnect": False, "Reason": 401}
    assert _parse(payload) == [expected]


def test_connected_and_disconnected_fixtures() -> None:
    assert _parse_fixture("wuzapi_connected.json") == [ConnectionUpdate(ConnectionState.OPEN)]
    assert _parse_fixture("wuzapi_disconnected.json") == [
        ConnectionUpdate(ConnectionState.CLOSE, reason="disconnected")
    ]


@pytest.mark.parametrize("kind", ["Presence", "ChatPresence", "HistorySync", "QRTimeout", "PairSuccess"])
def test_other_events_are_unhandled(kind: str) -> None:
    payload = _fixture("wuzapi_connected.json")
    payload["type"] = kind
    assert _parse(payload) == [Ignored(IgnoredReason.UNHANDLED_EVENT, f"wuzapi {kind}")]


def test_qr_fixture_is_unhandled() -> None:
    assert _parse_fixture("wuzapi_qr.json") == [Ignored(IgnoredReason.UNHANDLED_EVENT, "wuzapi QR")]


# --------------------------------------------------------------------------------------------------
# Form mode


def test_hmac_example_form_body_parses_like_json_mode_and_the_fixture() -> None:
    from_form = wuzapi_provider.parse(_hmac_request("form_mode"))
    from_json = wuzapi_provider.parse(_hmac_request("json_mode"))
    assert from_form == from_json == _parse_fixture("wuzapi_message.json")
    assert wuzapi_provider.routing_key(_hmac_request("form_mode")) == "loja-centro"


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_every_fixture_parses_the_same_in_form_mode(name: str) -> None:
    form = _request(_form_body(_fixture(name)), FORM)
    assert wuzapi_provider.detect(form)
    assert wuzapi_provider.parse(form) == _parse_fixture(name)
    assert wuzapi_provider.routing_key(form) == "loja-centro"


def test_old_form_build_routes_by_token() -> None:
    postmap = {"type": "Connected", "event": {}, "token": "wz-tk-7Hq2Lm9Xp4Rv"}
    request = _request(_form_body(postmap, routing=("token",)), FORM)
    assert wuzapi_provider.detect(request)
    assert wuzapi_provider.routing_key(request) == "wz-tk-7Hq2Lm9Xp4Rv"
    assert wuzapi_provider.parse(request) == [ConnectionUpdate(ConnectionState.OPEN)]


def test_form_body_without_a_content_type_is_still_read_as_a_form() -> None:
    body = _form_body(_fixture("wuzapi_connected.json"))
    request = WebhookRequest(body=body, headers={}, url="https://x")
    assert wuzapi_provider.parse(request) == [ConnectionUpdate(ConnectionState.OPEN)]


# --------------------------------------------------------------------------------------------------
# Routing


def test_routing_prefers_instance_name_then_user_id() -> None:
    payload = _fixture("wuzapi_connected.json")
    assert wuzapi_provider.routing_key(_request(json.dumps(payload).encode())) == "loja-centro"
    del payload["instanceName"]
    assert wuzapi_provider.routing_key(_request(json.dumps(payload).encode())) == USER_ID
    del payload["userID"]
    assert wuzapi_provider.routing_key(_request(json.dumps(payload).encode())) is None


def test_routing_key_of_an_unreadable_body_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        wuzapi_provider.routing_key(_request(b'{"type": "Message", '))
    with pytest.raises(PayloadError, match="no jsonData"):
        wuzapi_provider.routing_key(_request(b"instanceName=loja-centro", FORM))


# --------------------------------------------------------------------------------------------------
# Verification


@pytest.mark.parametrize("mode", ["json_mode", "form_mode"])
def test_hmac_example_verifies_in_both_modes(mode: str) -> None:
    secrets = InstanceSecrets(webhook_secret=SECRET, hmac_key=HMAC_KEY)
    assert wuzapi_provider.verify(_hmac_request(mode), secrets)


@pytest.mark.parametrize("mode", ["json_mode", "form_mode"])
def test_tampered_body_fails_hmac(mode: str) -> None:
    raw = HMAC_EXAMPLE[mode]["raw_body"].encode("utf-8")
    tampered = raw.replace(b"Pinheiros", b"Perdizes")
    assert tampered != raw
    secrets = InstanceSecrets(webhook_secret=SECRET, hmac_key=HMAC_KEY)
    assert not wuzapi_provider.verify(_hmac_request(mode, body=tampered), secrets)


def test_hmac_is_required_when_a_key_is_set() -> None:
    secrets = InstanceSecrets(webhook_secret=SECRET, hmac_key=HMAC_KEY)
    body = HMAC_EXAMPLE["json_mode"]["raw_body"].encode("utf-8")
    # Neither a missing header nor the webhook secret will do once the instance has a key.
    assert not wuzapi_provider.verify(
        _request(body, headers={"x-webhook-secret": SECRET}, path_secret=SECRET), secrets
    )
    assert not wuzapi_provider.verify(_hmac_request("json_mode", signature=""), secrets)
    assert not wuzapi_provider.verify(_hmac_request("json_mode", signature="zz-not-hex-é"), secrets)
    wrong_key = InstanceSecrets(webhook_secret=SECRET, hmac_key="another-key-of-at-least-32-chars!!")
    assert not wuzapi_provider.verify(_hmac_request("json_mode"), wrong_key)


def test_hmac_hex_case_is_ignored() -> None:
    body = b'{"type":"Connected","event":{},"instanceName":"loja-centro","userID":"u"}'
    digest = hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest().upper()
    request = _request(body, headers={"x-hmac-signature": digest})
    assert wuzapi_provider.verify(request, InstanceSecrets(webhook_secret=SECRET, hmac_key=HMAC_KEY))


def test_without_hmac_key_the_webhook_secret_is_required() -> None:
    body = (EXAMPLES / "wuzapi_connected.json").read_bytes()
    secrets = InstanceSecrets(webhook_secret=SECRET)
    assert wuzapi_provider.verify(_request(body, path_secret=SECRET), secrets)
    assert wuzapi_provider.verify(_request(body, headers={"x-webhook-secret": SECRET}), secrets)
    assert not wuzapi_provider.verify(_request(body), secrets)
    assert not wuzapi_provider.verify(_request(body, path_secret="wrong"), secrets)
    assert not wuzapi_provider.verify(_request(body, headers={"x-webhook-secret": "wrong"}), secrets)
    assert not wuzapi_provider.verify(_request(body, path_secret=""), InstanceSecrets(webhook_secret=""))


# --------------------------------------------------------------------------------------------------
# Bad input


def test_truncated_json_is_a_payload_error() -> None:
    body = (EXAMPLES / "wuzapi_message.json").read_bytes()[:300]
    with pytest.raises(PayloadError, match="not valid JSON"):
        wuzapi_provider.parse(_request(body))


def test_form_with_non_json_json_data_is_a_payload_error() -> None:
    body = urlencode({"jsonData": "{not json", "instanceName": "loja-centro"}).encode()
    with pytest.raises(PayloadError, match="jsonData is not valid JSON"):
        wuzapi_provider.parse(_request(body, FORM))
    body = urlencode({"jsonData": "[1, 2]", "instanceName": "loja-centro"}).encode()
    with pytest.raises(PayloadError, match="jsonData must be an object"):
        wuzapi_provider.parse(_request(body, FORM))


def test_non_utf8_form_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="UTF-8"):
        wuzapi_provider.parse(_request(b"jsonData=\xff\xfe", FORM))


def _broken_message(path: tuple[str, ...], value: object) -> dict[str, Any]:
    payload = _fixture("wuzapi_message.json")
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_broken_message(("event",), [1, 2]), "event must be an object"),
        (_broken_message(("event", "Info"), None), r"event\.Info must be an object"),
        (_broken_message(("event", "Info", "ID"), 12345), r"event\.Info\.ID must be a string"),
        (_broken_message(("event", "Info", "ID"), ""), r"event\.Info\.ID is missing"),
        (_broken_message(("event", "Info", "IsFromMe"), "yes"), "IsFromMe must be a boolean"),
        (_broken_message(("event", "Info", "Timestamp"), "yesterday"), "RFC 3339"),
        (_broken_message(("event", "Info", "Timestamp"), 1763035200), "Timestamp must be a string"),
        (_broken_message(("event", "Message"), {"conversation": 5}), "conversation must be a string"),
        (_broken_message(("type",), None), r"body\.type is missing"),
        ({"instanceName": "x", "userID": "y"}, r"body\.type is missing"),
    ],
)
def test_unusable_messages_are_payload_errors(payload: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        _parse(payload)


def test_missing_event_and_bad_receipt_ids_are_payload_errors() -> None:
    payload = _fixture("wuzapi_message.json")
    del payload["event"]
    with pytest.raises(PayloadError, match=r"body\.event is missing"):
        _parse(payload)
    receipt = _fixture("wuzapi_readreceipt.json")
    receipt["event"]["MessageIDs"] = "3EB0"
    with pytest.raises(PayloadError, match="MessageIDs must be a list"):
        _parse(receipt)
    receipt["event"]["MessageIDs"] = [OUR_ID, 7]
    with pytest.raises(PayloadError, match=r"MessageIDs\[1\]"):
        _parse(receipt)


# --------------------------------------------------------------------------------------------------
# Detection


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_detects_its_own_fixtures_and_no_other_provider_does(name: str) -> None:
    request = _request((EXAMPLES / name).read_bytes())
    assert wuzapi_provider.detect(request)
    assert not evolution_provider.detect(request)
    assert not simulator_provider.detect(request)


@pytest.mark.parametrize("mode", ["json_mode", "form_mode"])
def test_detects_the_hmac_example_bodies(mode: str) -> None:
    request = _hmac_request(mode)
    assert wuzapi_provider.detect(request)
    assert not evolution_provider.detect(request)


def _other_bodies() -> list[bytes]:
    bodies = [
        p.read_bytes() for prefix in ("evolution_", "meta_") for p in sorted(EXAMPLES.glob(f"{prefix}*.json"))
    ]
    twilio = _fixture("twilio_inbound.json")
    bodies.append(urlencode(twilio["form"]).encode())
    bodies.append(build_status_body("loja-centro", OUR_ID, "read", 1763035275))
    return bodies


@pytest.mark.parametrize("body", _other_bodies(), ids=lambda body: body[:30].decode(errors="replace"))
def test_does_not_detect_other_providers(body: bytes) -> None:
    content_type = JSON if body.lstrip().startswith(b"{") else FORM
    assert not wuzapi_provider.detect(_request(body, content_type))


def test_does_not_detect_a_meta_body() -> None:
    meta = b'{"object":"whatsapp_business_account","entry":[]}'
    assert not wuzapi_provider.detect(_request(meta))


def test_detects_nothing_on_junk() -> None:
    for body in (b"", b"{", b'{"type": "Message"}', b'{"type": 1, "event": {}, "userID": "u"}', b"a=b&c=d"):
        assert not wuzapi_provider.detect(_request(body))


def test_provider_name() -> None:
    assert wuzapi_provider.name is ProviderName.WUZAPI
