"""Evolution API provider: fixtures parse into the right events, verification, routing, bad input.

Also covers the JID helpers (providers/jid.py) both WhatsApp-Web gateways share.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from messaging_whatsapp.providers import jid
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
from messaging_whatsapp.providers.simulator import build_inbound_message_body, simulator_provider
from messaging_whatsapp.providers.wuzapi import wuzapi_provider

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
MARIA, JOAO = "5511987654321", "553199887766"
MARIA_LID, JOAO_LID = "97318254610077@lid", "215870349921654@lid"
OUR_ID = "3EB0C7A1F45D2E8B9A6C31"
API_KEY = "B7C4E1D2-5A6F-4B3C-9D8E-1F2A3B4C5D6E"
SECRET = "whsec-evolution-0123456789"

# Descriptor files (REST calls), not webhook bodies.
DESCRIPTORS = {"evolution_rest_examples.json"}
WEBHOOK_FIXTURES = sorted(p.name for p in EXAMPLES.glob("evolution_*.json") if p.name not in DESCRIPTORS)


def _request(
    body: bytes, headers: dict[str, str] | None = None, path_secret: str | None = None
) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={"content-type": "application/json", **(headers or {})},
        url="https://api.exemplo.com.br/webhooks/evolution",
        path_secret=path_secret,
    )


def _fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return payload


def _parse_fixture(name: str) -> list[NormalisedEvent]:
    return evolution_provider.parse(_request((EXAMPLES / name).read_bytes()))


def _parse(payload: object) -> list[NormalisedEvent]:
    return evolution_provider.parse(_request(json.dumps(payload).encode()))


def _one(events: list[NormalisedEvent]) -> NormalisedEvent:
    assert len(events) == 1
    return events[0]


def _inbound(events: list[NormalisedEvent]) -> InboundMessage:
    event = _one(events)
    assert isinstance(event, InboundMessage)
    return event


def _status(events: list[NormalisedEvent]) -> StatusUpdate:
    event = _one(events)
    assert isinstance(event, StatusUpdate)
    return event


def _upsert(message: dict[str, Any], message_type: str, **key: Any) -> dict[str, Any]:
    """A messages.upsert based on the text fixture with another message body and key fields."""
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["data"]["message"] = message
    payload["data"]["messageType"] = message_type
    payload["data"]["key"].update(key)
    return payload


def _update(**data: Any) -> dict[str, Any]:
    payload = _fixture("evolution_messages_update_read.json")
    payload["data"].update(data)
    return payload


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --------------------------------------------------------------------------------------------------
# messages.upsert fixtures


@pytest.mark.parametrize(
    ("name", "message_id", "phone", "user_id", "kind", "text", "contact", "seconds"),
    [
        ("evolution_messages_upsert_text.json", "AC4E1B7F2D9A06C3E5B8F1D2A7C9E4B6", MARIA, MARIA_LID,
         MessageType.TEXT, "Oi! Vocês entregam em Pinheiros hoje?", "Maria Souza", 1763035200),
        ("evolution_messages_upsert_optout_sair.json", "E5C0A9F3B7D14E2A8C6B0F9D3A7E1C52", JOAO, JOAO_LID,
         MessageType.TEXT, "Sair", "João Pereira", 1763035505),
        ("evolution_messages_upsert_reply_quoted.json", "3A5F1C8E2B7D4A9F06E3", MARIA, MARIA_LID,
         MessageType.TEXT, "Pode ser às 14h", "Maria Souza", 1763035320),
        ("evolution_messages_upsert_image.json", "F1A7C3E9B5D2084C6E1A9F7B3D5C8E20", MARIA, MARIA_LID,
         MessageType.IMAGE, None, "Maria Souza", 1763035680),
        ("evolution_messages_upsert_audio_ptt.json", "0C9E3A7F1B5D2E8A4C6F0B3D9E1A7C58", JOAO, JOAO_LID,
         MessageType.AUDIO, None, "João Pereira", 1763035920),
        ("evolution_messages_upsert_reaction.json", "7D2B9F4E1A6C0E8B3D5F7A9C1E4B6D82", MARIA, MARIA_LID,
         MessageType.REACTION, "👍", "Maria Souza", 1763035400),
        ("evolution_messages_upsert_button_reply.json", "2F8B4D0A6E1C9F3B7D5A0E8C2B6F4D19", MARIA, MARIA_LID,
         MessageType.BUTTON, "Confirmar pedido", "Maria Souza", 1763035295),
    ],
)  # fmt: skip
def test_upsert_fixtures_become_inbound_messages(
    name: str,
    message_id: str,
    phone: str,
    user_id: str,
    kind: MessageType,
    text: str | None,
    contact: str,
    seconds: int,
) -> None:
    message = _inbound(_parse_fixture(name))
    assert message.provider_message_id == message_id
    assert message.phone == phone
    assert message.user_id == user_id
    assert message.type is kind
    assert message.text == text
    assert message.contact_name == contact
    assert message.timestamp == _at(seconds)
    assert message.from_me is False


def test_image_carries_its_media_and_caption() -> None:
    message = _inbound(_parse_fixture("evolution_messages_upsert_image.json"))
    assert message.media is not None
    assert message.media.url is not None
    assert message.media.url.startswith("https://mmg.whatsapp.net/o1/v/t62.7118-24/")
    assert message.media.mime_type == "image/jpeg"
    assert message.media.caption == "Esse é o modelo que eu quero"
    assert message.extra == {"base64_in_payload": True}


def test_voice_note_is_audio_marked_as_voice() -> None:
    message = _inbound(_parse_fixture("evolution_messages_upsert_audio_ptt.json"))
    assert message.media is not None
    assert message.media.mime_type == "audio/ogg; codecs=opus"
    assert message.extra["voice"] is True


def test_reaction_names_the_message_it_reacts_to() -> None:
    message = _inbound(_parse_fixture("evolution_messages_upsert_reaction.json"))
    assert message.extra["message_id"] == OUR_ID


def test_button_reply_has_payload_and_quoted_id_from_the_message_context() -> None:
    message = _inbound(_parse_fixture("evolution_messages_upsert_button_reply.json"))
    assert message.button_payload == "confirmar_pedido_88123"
    assert message.quoted_message_id == OUR_ID


def test_reply_takes_quoted_id_from_top_level_context_info() -> None:
    message = _inbound(_parse_fixture("evolution_messages_upsert_reply_quoted.json"))
    assert message.quoted_message_id == OUR_ID


def test_message_typed_on_the_business_phone_is_from_me_without_a_contact_name() -> None:
    message = _inbound(_parse_fixture("evolution_messages_upsert_fromme.json"))
    assert message.provider_message_id == "3A0D6B9E4C1F7A2E8B50"
    assert message.from_me is True
    assert message.phone == MARIA
    assert message.text == "Maria, seu pedido saiu para entrega 🛵"
    # pushName is "Você" (the business itself), never the customer's name.
    assert message.contact_name is None


def test_send_message_echo_is_from_me() -> None:
    message = _inbound(_parse_fixture("evolution_send_message.json"))
    assert message.provider_message_id == OUR_ID
    assert message.from_me is True
    assert message.phone == MARIA
    assert message.type is MessageType.TEXT
    assert message.text == "Entregamos sim! Pedido até 15h chega hoje."
    assert message.timestamp == _at(1763035260)
    assert message.quoted_message_id is None  # "contextInfo": null


def test_send_message_is_from_me_even_when_the_key_says_otherwise() -> None:
    payload = _fixture("evolution_send_message.json")
    payload["data"]["key"]["fromMe"] = False
    assert _inbound(_parse(payload)).from_me is True


def test_group_message_is_ignored() -> None:
    event = _one(_parse_fixture("evolution_messages_upsert_group.json"))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.GROUP


@pytest.mark.parametrize(
    "remote", ["status@broadcast", "1763035200@broadcast", "120363000000000001@newsletter"]
)
def test_broadcast_status_and_newsletter_messages_are_ignored(remote: str) -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["data"]["key"] = {"remoteJid": remote, "fromMe": False, "id": "B1", "participant": MARIA}
    event = _one(_parse(payload))
    assert event == Ignored(IgnoredReason.BROADCAST, f"evolution message B1 in {remote}")


def test_lid_addressed_message_takes_the_phone_from_remote_jid_alt() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["data"]["key"].update(
        {"remoteJid": MARIA_LID, "remoteJidAlt": f"{MARIA}@s.whatsapp.net", "addressingMode": "lid"}
    )
    message = _inbound(_parse(payload))
    assert message.phone == MARIA
    assert message.user_id == MARIA_LID


def test_lid_without_a_phone_alternate_is_a_sender_known_by_lid() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["data"]["key"].update({"remoteJid": MARIA_LID, "addressingMode": "lid"})
    del payload["data"]["key"]["remoteJidAlt"]
    message = _inbound(_parse(payload))
    assert (message.phone, message.user_id) == (None, MARIA_LID)


def test_seed_000_messages_update_shape_is_a_receipt() -> None:
    # Seed 000's shape: data.key.id + data.update.status, the status Baileys' enum (3 = delivered).
    payload = {
        "event": "messages.update",
        "instance": "tenant_1_inst_1",
        "data": {
            "key": {"remoteJid": f"{MARIA}@s.whatsapp.net", "id": "3EB0B431E4B3"},
            "update": {"status": 3},
        },
    }
    [event] = _parse(payload)
    assert isinstance(event, StatusUpdate)
    assert (event.provider_message_id, event.status, event.recipient) == (
        "3EB0B431E4B3",
        DeliveryStatus.DELIVERED,
        MARIA,
    )
    payload["data"]["update"] = {"status": "READ"}
    assert _parse(payload)[0].status is DeliveryStatus.READ  # type: ignore[union-attr]
    payload["data"]["key"]["fromMe"] = False
    assert isinstance(_parse(payload)[0], Ignored)


def test_phone_jid_with_device_suffix_gives_plain_digits() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["data"]["key"]["remoteJid"] = f"{MARIA}:12@s.whatsapp.net"
    assert _inbound(_parse(payload)).phone == MARIA


def test_v1_extended_text_with_its_own_context_info() -> None:
    payload = _upsert(
        {"extendedTextMessage": {"text": "Pode ser às 14h", "contextInfo": {"stanzaId": OUR_ID}}},
        "extendedTextMessage",
    )
    message = _inbound(_parse(payload))
    assert message.type is MessageType.TEXT
    assert message.text == "Pode ser às 14h"
    assert message.quoted_message_id == OUR_ID


@pytest.mark.parametrize(
    "stamp",
    [1763035200, "1763035200", {"low": 1763035200, "high": 0, "unsigned": False}],
)
def test_message_timestamp_as_number_string_or_long(stamp: object) -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["data"]["messageTimestamp"] = stamp
    assert _inbound(_parse(payload)).timestamp == _at(1763035200)


def test_long_timestamp_with_negative_low_half_is_read_unsigned() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["data"]["messageTimestamp"] = {"low": -1, "high": 0}
    assert _inbound(_parse(payload)).timestamp == _at(0xFFFFFFFF)


def test_document_keeps_its_filename_and_caption() -> None:
    document = {
        "url": "https://mmg.whatsapp.net/d/doc.enc",
        "mimetype": "application/pdf",
        "fileName": "boleto-88123.pdf",
        "caption": "Segue o boleto",
    }
    message = _inbound(_parse(_upsert({"documentMessage": document}, "documentMessage")))
    assert message.type is MessageType.DOCUMENT
    assert message.media == Media(
        url="https://mmg.whatsapp.net/d/doc.enc",
        mime_type="application/pdf",
        caption="Segue o boleto",
        filename="boleto-88123.pdf",
    )
    assert message.text is None


def test_document_with_caption_wrapper_is_unwrapped() -> None:
    wrapped = {"documentWithCaptionMessage": {"message": {"documentMessage": {"fileName": "a.pdf"}}}}
    message = _inbound(_parse(_upsert(wrapped, "documentWithCaptionMessage")))
    assert message.type is MessageType.DOCUMENT
    assert message.media is not None
    assert message.media.filename == "a.pdf"


def test_s3_media_url_is_preferred_to_the_encrypted_cdn_url() -> None:
    message_body: dict[str, Any] = {
        "videoMessage": {"url": "https://mmg.whatsapp.net/v.enc", "mimetype": "video/mp4"},
        "mediaUrl": "https://s3.exemplo.com.br/v.mp4",
    }
    message = _inbound(_parse(_upsert(message_body, "videoMessage")))
    assert message.type is MessageType.VIDEO
    assert message.media is not None
    assert message.media.url == "https://s3.exemplo.com.br/v.mp4"


def test_sticker() -> None:
    message = _inbound(_parse(_upsert({"stickerMessage": {"mimetype": "image/webp"}}, "stickerMessage")))
    assert message.type is MessageType.STICKER
    assert message.media == Media(mime_type="image/webp")


def test_location_has_coordinates_in_extra() -> None:
    location = {"degreesLatitude": -23.5613, "degreesLongitude": -46.6565, "name": "Loja", "address": "Av."}
    message = _inbound(_parse(_upsert({"locationMessage": location}, "locationMessage")))
    assert message.type is MessageType.LOCATION
    assert message.extra == {"latitude": -23.5613, "longitude": -46.6565, "name": "Loja", "address": "Av."}


def test_contact_card() -> None:
    contact = {"displayName": "Ana Lima", "vcard": "BEGIN:VCARD\nEND:VCARD"}
    message = _inbound(_parse(_upsert({"contactMessage": contact}, "contactMessage")))
    assert message.type is MessageType.CONTACTS
    assert message.extra == {"contacts": [{"name": "Ana Lima", "vcard": "BEGIN:VCARD\nEND:VCARD"}]}


def test_template_quick_reply_is_a_button() -> None:
    reply = {"selectedId": "PARAR_PROMOCOES", "selectedDisplayText": "Parar promoções"}
    message = _inbound(_parse(_upsert({"templateButtonReplyMessage": reply}, "templateButtonReplyMessage")))
    assert message.type is MessageType.BUTTON
    assert message.button_payload == "PARAR_PROMOCOES"
    assert message.text == "Parar promoções"


def test_list_reply_is_interactive_with_the_row_id() -> None:
    reply = {"title": "Entrega amanhã", "singleSelectReply": {"selectedRowId": "row_amanha"}}
    message = _inbound(_parse(_upsert({"listResponseMessage": reply}, "listResponseMessage")))
    assert message.type is MessageType.INTERACTIVE
    assert message.button_payload == "row_amanha"
    assert message.text == "Entrega amanhã"


def test_native_flow_reply_takes_the_id_from_params_json() -> None:
    reply = {
        "body": {"text": "Sim"},
        "nativeFlowResponseMessage": {"name": "quick_reply", "paramsJson": '{"id":"confirmar"}'},
    }
    message = _inbound(_parse(_upsert({"interactiveResponseMessage": reply}, "interactiveResponseMessage")))
    assert message.type is MessageType.INTERACTIVE
    assert message.button_payload == "confirmar"
    assert message.text == "Sim"


def test_unknown_message_type_is_kept_as_unknown() -> None:
    message = _inbound(_parse(_upsert({"pollCreationMessage": {"name": "?"}}, "pollCreationMessage")))
    assert message.type is MessageType.UNKNOWN
    assert message.extra == {"evolution_type": "pollCreationMessage"}


# --------------------------------------------------------------------------------------------------
# messages.update


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("evolution_messages_update_server_ack.json", DeliveryStatus.SENT),
        ("evolution_messages_update_delivery_ack.json", DeliveryStatus.DELIVERED),
        ("evolution_messages_update_read.json", DeliveryStatus.READ),
    ],
)
def test_update_fixtures_become_status_updates(name: str, status: DeliveryStatus) -> None:
    before = datetime.now(UTC)
    update = _status(_parse_fixture(name))
    assert update.provider_message_id == OUR_ID  # keyId, not Evolution's row id "messageId"
    assert update.status is status
    assert update.recipient == MARIA
    assert update.error is None
    # v2 updates carry no time; the envelope's date_time is local time mislabelled "Z", so parse time.
    assert before <= update.timestamp <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("PLAYED", DeliveryStatus.READ),
        (2, DeliveryStatus.SENT),
        (3, DeliveryStatus.DELIVERED),
        (4, DeliveryStatus.READ),
        (5, DeliveryStatus.READ),
    ],
)
def test_played_and_numeric_statuses(raw: object, status: DeliveryStatus) -> None:
    assert _status(_parse(_update(status=raw))).status is status


@pytest.mark.parametrize("raw", ["ERROR", 0])
def test_error_status_is_failed(raw: object) -> None:
    update = _status(_parse(_update(status=raw)))
    assert update.status is DeliveryStatus.FAILED
    assert update.error == StatusError(code="ERROR", title="Evolution reported status ERROR")


@pytest.mark.parametrize("raw", ["PENDING", 1])
def test_pending_is_ignored(raw: object) -> None:
    event = _one(_parse(_update(status=raw)))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.PENDING_STATUS


def test_deleted_is_not_a_delivery_status() -> None:
    event = _one(_parse(_update(status="DELETED")))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.UNHANDLED_EVENT


def test_receipt_for_an_inbound_message_is_a_self_receipt() -> None:
    event = _one(_parse(_update(fromMe=False)))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.SELF_RECEIPT


def test_v1_update_shape_uses_id_and_datetime_ms() -> None:
    payload = _fixture("evolution_messages_update_read.json")
    payload["data"] = {
        "remoteJid": f"{MARIA}@s.whatsapp.net",
        "fromMe": True,
        "id": OUR_ID,
        "status": "READ",
        "datetime": 1763035275123,
        "owner": "loja-centro",
    }
    update = _status(_parse(payload))
    assert update.provider_message_id == OUR_ID
    assert update.status is DeliveryStatus.READ
    assert update.timestamp == datetime.fromtimestamp(1763035275.123, UTC)


# --------------------------------------------------------------------------------------------------
# connection.update and everything else


def test_connection_open() -> None:
    assert _one(_parse_fixture("evolution_connection_update_open.json")) == ConnectionUpdate(
        ConnectionState.OPEN, reason="200"
    )


def test_connection_close_keeps_the_status_reason() -> None:
    assert _one(_parse_fixture("evolution_connection_update_close.json")) == ConnectionUpdate(
        ConnectionState.CLOSE, reason="401"
    )


def test_connection_connecting_and_refused() -> None:
    payload = _fixture("evolution_connection_update_open.json")
    payload["data"] = {"instance": "loja-centro", "state": "connecting", "statusReason": 200}
    assert _one(_parse(payload)) == ConnectionUpdate(ConnectionState.CONNECTING, reason="200")
    payload["data"] = {"instance": "loja-centro", "state": "refused", "statusReason": 428}
    assert _one(_parse(payload)) == ConnectionUpdate(ConnectionState.CLOSE, reason="refused")


def test_qrcode_updated_is_unhandled() -> None:
    assert _one(_parse_fixture("evolution_qrcode_updated.json")) == Ignored(
        IgnoredReason.UNHANDLED_EVENT, "qrcode.updated"
    )


@pytest.mark.parametrize(
    "event",
    ["presence.update", "contacts.upsert", "chats.update", "messages.delete", "messages.edited", "call"],
)
def test_other_events_are_unhandled_with_their_name(event: str) -> None:
    payload = _fixture("evolution_qrcode_updated.json")
    payload["event"] = event
    payload["data"] = [{"anything": "goes"}]  # not looked at
    assert _one(_parse(payload)) == Ignored(IgnoredReason.UNHANDLED_EVENT, event)


# --------------------------------------------------------------------------------------------------
# Bad input


def test_truncated_json_is_a_payload_error() -> None:
    body = (EXAMPLES / "evolution_messages_upsert_text.json").read_bytes()[:200]
    with pytest.raises(PayloadError, match="not valid JSON"):
        evolution_provider.parse(_request(body))
    with pytest.raises(PayloadError):
        evolution_provider.routing_key(_request(body))


def _broken(path: tuple[str, ...], value: object) -> dict[str, Any]:
    payload = _fixture("evolution_messages_upsert_text.json")
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_broken(("data",), [{"key": {}}]), "data must be an object"),
        (_broken(("data", "key", "id"), 12345), r"data\.key\.id must be a string"),
        (_broken(("data", "key"), None), r"data\.key is missing"),
        (_broken(("data", "key", "remoteJid"), None), r"data\.key\.remoteJid is missing"),
        (_broken(("data", "messageTimestamp"), True), "messageTimestamp must be an integer"),
        (_broken(("data", "messageTimestamp"), "yesterday"), "messageTimestamp must be an integer"),
        (_broken(("data", "pushName"), 7), r"data\.pushName must be a string"),
        (_broken(("data", "message"), "hello"), r"data\.message must be an object"),
        (_broken(("event",), 5), r"body\.event must be a string"),
        ([1, 2, 3], "body must be an object"),
    ],
)
def test_unusable_upserts_are_payload_errors(payload: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        _parse(payload)


def test_missing_data_and_bad_update_fields_are_payload_errors() -> None:
    payload = _fixture("evolution_messages_update_read.json")
    del payload["data"]
    with pytest.raises(PayloadError, match="data is missing"):
        _parse(payload)
    with pytest.raises(PayloadError, match="fromMe"):
        _parse(_update(fromMe=None))
    with pytest.raises(PayloadError, match="status"):
        _parse(_update(status=None))
    with pytest.raises(PayloadError, match="keyId"):
        _parse(_update(keyId=42))


def test_missing_key_id_is_a_payload_error() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    del payload["data"]["key"]["id"]
    with pytest.raises(PayloadError, match=r"data\.key\.id is missing"):
        _parse(payload)


# --------------------------------------------------------------------------------------------------
# Verification


def _verify(
    headers: dict[str, str] | None = None,
    path_secret: str | None = None,
    body: bytes | None = None,
    secrets: InstanceSecrets | None = None,
) -> bool:
    body = body if body is not None else (EXAMPLES / "evolution_messages_upsert_text.json").read_bytes()
    request = _request(body, headers, path_secret)
    return evolution_provider.verify(request, secrets or InstanceSecrets(webhook_secret=SECRET))


def _no_apikey_body() -> bytes:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["apikey"] = None
    return json.dumps(payload).encode()


def test_verify_accepts_the_secret_in_the_path() -> None:
    assert _verify(path_secret=SECRET, body=_no_apikey_body())


def test_verify_accepts_the_secret_header() -> None:
    assert _verify({"x-webhook-secret": SECRET}, body=_no_apikey_body())


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_verify_accepts_a_bearer_token(scheme: str) -> None:
    assert _verify({"authorization": f"{scheme} {SECRET}"}, body=_no_apikey_body())


def test_verify_accepts_the_body_apikey_equal_to_the_instance_api_key() -> None:
    assert _verify(secrets=InstanceSecrets(webhook_secret=SECRET, api_key=API_KEY))


@pytest.mark.parametrize(
    ("headers", "path_secret"),
    [
        ({}, None),
        ({}, "wrong"),
        ({"x-webhook-secret": "wrong"}, None),
        ({"authorization": f"Basic {SECRET}"}, None),
        ({"authorization": "Bearer wrong"}, None),
        ({"authorization": SECRET}, None),
        ({"x-webhook-secret": "ção-not-ascii"}, None),
    ],
)
def test_verify_rejects_wrong_or_missing_secrets(headers: dict[str, str], path_secret: str | None) -> None:
    # The body's apikey does not match any api_key here (none is configured).
    assert not _verify(headers, path_secret)


def test_verify_rejects_an_apikey_that_differs() -> None:
    assert not _verify(secrets=InstanceSecrets(webhook_secret=SECRET, api_key="other-key"))


def test_empty_apikey_never_matches_an_empty_secret() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    payload["apikey"] = ""
    body = json.dumps(payload).encode()
    assert not _verify(body=body, secrets=InstanceSecrets(webhook_secret="", api_key=""))
    assert not _verify({"x-webhook-secret": ""}, path_secret="", body=body, secrets=InstanceSecrets(""))
    assert not _verify({"authorization": "Bearer "}, body=body, secrets=InstanceSecrets(""))


def test_verify_with_an_unreadable_body_still_answers() -> None:
    assert not _verify(body=b"{not json", secrets=InstanceSecrets(SECRET, api_key=API_KEY))
    assert _verify({"x-webhook-secret": SECRET}, body=b"{not json")


# --------------------------------------------------------------------------------------------------
# Detection and routing


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_detects_and_routes_its_own_fixtures(name: str) -> None:
    request = _request((EXAMPLES / name).read_bytes())
    assert evolution_provider.detect(request)
    assert not wuzapi_provider.detect(request)
    assert not simulator_provider.detect(request)
    assert evolution_provider.routing_key(request) == "loja-centro"


def _other_bodies() -> list[tuple[str, bytes]]:
    bodies = [
        (p.name, p.read_bytes())
        for prefix in ("wuzapi_", "meta_")
        for p in sorted(EXAMPLES.glob(f"{prefix}*.json"))
    ]
    hmac_example = _fixture("wuzapi_hmac_example.json")
    bodies += [
        (f"wuzapi hmac {mode}", hmac_example[mode]["raw_body"].encode())
        for mode in ("json_mode", "form_mode")
    ]
    twilio = _fixture("twilio_inbound.json")
    bodies.append(("twilio form", urlencode(twilio["form"]).encode()))
    bodies.append(("simulator", build_inbound_message_body("loja-centro", "S1", MARIA, "oi", None, 1)))
    return bodies


@pytest.mark.parametrize(("label", "body"), _other_bodies(), ids=lambda value: str(value)[:40])
def test_does_not_detect_other_providers(label: str, body: bytes) -> None:
    assert not evolution_provider.detect(_request(body)), label


def test_detects_nothing_on_junk() -> None:
    for body in (b"", b"{", b"[]", b'{"event": "messages.upsert"}', b'{"event": 5, "instance": "x"}'):
        assert not evolution_provider.detect(_request(body))


def test_routing_key_is_none_without_an_instance_and_rejects_a_non_string() -> None:
    payload = _fixture("evolution_qrcode_updated.json")
    del payload["instance"]
    assert evolution_provider.routing_key(_request(json.dumps(payload).encode())) is None
    payload["instance"] = {"name": "loja-centro"}
    with pytest.raises(PayloadError, match="instance must be a string"):
        evolution_provider.routing_key(_request(json.dumps(payload).encode()))


def test_provider_name() -> None:
    assert evolution_provider.name is ProviderName.EVOLUTION


def test_parse_does_not_mutate_shared_fixture_state() -> None:
    payload = _fixture("evolution_messages_upsert_text.json")
    snapshot = copy.deepcopy(payload)
    _parse(payload)
    assert payload == snapshot


# --------------------------------------------------------------------------------------------------
# JID helpers (providers/jid.py)


@pytest.mark.parametrize(
    ("value", "user", "server"),
    [
        (f"{MARIA}@s.whatsapp.net", MARIA, "s.whatsapp.net"),
        (f"{MARIA}:12@s.whatsapp.net", MARIA, "s.whatsapp.net"),
        ("551140028922.0:12@s.whatsapp.net", "551140028922", "s.whatsapp.net"),
        ("551140028922_1:3@s.whatsapp.net", "551140028922", "s.whatsapp.net"),
        (MARIA_LID, "97318254610077", "lid"),
        ("status@broadcast", "status", "broadcast"),
        (MARIA, MARIA, ""),
    ],
)
def test_split_jid(value: str, user: str, server: str) -> None:
    assert jid.split_jid(value) == (user, server)


def test_jid_kinds() -> None:
    assert jid.is_group("120363041234567890@g.us")
    assert jid.is_broadcast("status@broadcast")
    assert jid.is_newsletter("120363000000000001@newsletter")
    assert jid.is_lid(MARIA_LID)
    assert not jid.is_lid(f"{MARIA}@s.whatsapp.net")
    assert jid.ignored_reason("120363041234567890@g.us") is IgnoredReason.GROUP
    assert jid.ignored_reason("status@broadcast") is IgnoredReason.BROADCAST
    assert jid.ignored_reason(f"{MARIA}@s.whatsapp.net") is None


def test_phone_digits_only_for_phone_jids() -> None:
    assert jid.phone_digits(f"{MARIA}@s.whatsapp.net") == MARIA
    assert jid.phone_digits(f"{MARIA}@c.us") == MARIA
    assert jid.phone_digits(MARIA_LID) is None
    assert jid.phone_digits("120363041234567890@g.us") is None
    assert jid.phone_digits("abc@s.whatsapp.net") is None


def test_resolve_person() -> None:
    phone_jid = f"{MARIA}@s.whatsapp.net"
    assert jid.resolve_person(phone_jid, MARIA_LID) == jid.Person(MARIA, MARIA_LID)
    assert jid.resolve_person(MARIA_LID, phone_jid) == jid.Person(MARIA, MARIA_LID)
    assert jid.resolve_person("97318254610077:3@lid", phone_jid) == jid.Person(MARIA, MARIA_LID)
    assert jid.resolve_person(phone_jid, None) == jid.Person(MARIA, None)
    assert jid.resolve_person(MARIA_LID, None) == jid.Person(None, MARIA_LID)
    assert jid.resolve_person(MARIA_LID, "") == jid.Person(None, MARIA_LID)
    assert jid.resolve_person(None, None) is None
