"""Twilio WhatsApp provider: fixtures parse into the right events, signatures (cross-checked with the
official twilio-python RequestValidator), routing, bad input."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

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
)
from messaging_whatsapp.providers.twilio import classify_error, twilio_provider
from messaging_whatsapp.providers.twilio_api import status_callback

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
MAPPING = Path(__file__).resolve().parents[1] / "fixtures" / "common_model_mapping.json"
AUTH_TOKEN = "9c2e7a4f1b8d3e6a0c5f2b9e4d7a1c83"
SECRETS = InstanceSecrets(webhook_secret="unused", auth_token=AUTH_TOKEN)
OUR_NUMBER = "551140028922"
FORM = "application/x-www-form-urlencoded"
INBOUND_URL = "https://api.exemplo.com.br/webhooks/twilio/whatsapp"
STATUS_URL = "https://api.exemplo.com.br/webhooks/twilio/status?tenant=loja-centro"
OUR_SID = "SMb3e9a1c7f5d2b8e4a0c6f9d3b1e7a5c2"

DESCRIPTORS = sorted(p.name for p in EXAMPLES.glob("twilio_*.json") if "raw_body" in p.read_text())
META_BODIES = sorted(
    p.name
    for p in EXAMPLES.glob("meta_*.json")
    if not any(part in p.name for part in ("_request", "_response", "_signature_", "_verify_"))
)


def _descriptor(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def _fixture_request(name: str) -> WebhookRequest:
    descriptor = _descriptor(name)
    return WebhookRequest(
        body=descriptor["raw_body"].encode(),
        headers={k.lower(): v for k, v in descriptor["headers"].items()},
        url=descriptor["url"],
    )


def _form_request(
    fields: dict[str, str] | list[tuple[str, str]], url: str = INBOUND_URL, signature: str | None = None
) -> WebhookRequest:
    headers = {"content-type": FORM}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    return WebhookRequest(body=urlencode(fields).encode(), headers=headers, url=url)


def _form_of(name: str) -> dict[str, str]:
    form: dict[str, str] = _descriptor(name)["form"]
    return dict(form)


def _only(events: list[NormalisedEvent]) -> NormalisedEvent:
    assert len(events) == 1
    return events[0]


def _inbound(request: WebhookRequest) -> InboundMessage:
    event = _only(twilio_provider.parse(request))
    assert isinstance(event, InboundMessage)
    return event


def _status(request: WebhookRequest) -> StatusUpdate:
    event = _only(twilio_provider.parse(request))
    assert isinstance(event, StatusUpdate)
    return event


def _status_form(status: str, **fields: str) -> dict[str, str]:
    form = _form_of("twilio_status_sent.json")
    form.update(MessageStatus=status, SmsStatus=status, **fields)
    return form


# --------------------------------------------------------------------------------------------------
# Inbound fixtures


def test_inbound_text() -> None:
    before = datetime.now(UTC)
    message = _inbound(_fixture_request("twilio_inbound.json"))
    after = datetime.now(UTC)
    assert message.provider_message_id == "SM8e2b5d9a1f4c7e0b3a6d9f2c5e8b1a47"
    assert message.phone == "5511987654321"
    assert message.contact_name == "Maria Souza"
    assert message.type is MessageType.TEXT
    assert message.text == "Oi! Vocês entregam em Pinheiros hoje?"
    assert message.media is None
    assert message.quoted_message_id is None
    assert message.referral is None
    # No time in Twilio webhooks: the receipt time, timezone-aware.
    assert before <= message.timestamp <= after
    assert message.timestamp.tzinfo is not None


def test_inbound_media_uses_body_as_caption() -> None:
    message = _inbound(_fixture_request("twilio_inbound_media.json"))
    assert message.provider_message_id == "MM4c8a2e6f0b3d9a7c1e5b8f2d4a6c9e10"
    assert message.phone == "5521976543210"
    assert message.contact_name == "Ana Lima"
    assert message.type is MessageType.IMAGE
    assert message.media == Media(
        url=(
            "https://api.twilio.com/2010-04-01/Accounts/AC3f9e1c7a5b2d4e6f8a0c1b3d5e7f9a2c/Messages/"
            "MM4c8a2e6f0b3d9a7c1e5b8f2d4a6c9e10/Media/ME2b7e1d9c4a6f3b8e0d5c2a9f7e1b4d63"
        ),
        mime_type="image/jpeg",
        caption="Esse é o modelo que eu quero",
    )
    assert message.text is None


def test_inbound_button_reply() -> None:
    message = _inbound(_fixture_request("twilio_inbound_button_reply.json"))
    assert message.provider_message_id == "SM6d0b4f8a2c7e1d5b9f3a0c6e8d2b4f71"
    assert message.type is MessageType.BUTTON
    assert message.button_payload == "CONFIRMAR_88123"
    assert message.text == "Confirmar pedido"
    assert message.quoted_message_id == OUR_SID


def test_inbound_referral_ctwa() -> None:
    form = _form_of("twilio_inbound.json")
    form.update(
        Body="Quero o frete grátis",
        ReferralNumMedia="0",
        ReferralSourceId="120210987654321098",
        ReferralSourceType="ad",
        ReferralSourceUrl="https://fb.me/4Kq8ZpT2a",
        ReferralHeadline="Promoção de Novembro",
        ReferralBody="Frete grátis para toda a capital nesta semana!",
        ReferralCtwaClid="ARAkLkA8rmlFeiCk",
    )
    message = _inbound(_form_request(form))
    assert message.referral == Referral(
        source_url="https://fb.me/4Kq8ZpT2a",
        source_id="120210987654321098",
        source_type="ad",
        headline="Promoção de Novembro",
        click_id="ARAkLkA8rmlFeiCk",
    )
    assert message.text == "Quero o frete grátis"


def test_inbound_location() -> None:
    form = _form_of("twilio_inbound.json")
    form.update(
        MessageType="location",
        Body="",
        Latitude="-23.5613991",
        Longitude="-46.6913247",
        Address="Av. Brig. Faria Lima, Pinheiros",
        Label="Largo da Batata",
    )
    message = _inbound(_form_request(form))
    assert message.type is MessageType.LOCATION
    assert message.extra["latitude"] == pytest.approx(-23.5613991)
    assert message.extra["longitude"] == pytest.approx(-46.6913247)
    assert message.extra["address"] == "Av. Brig. Faria Lima, Pinheiros"
    assert message.extra["name"] == "Largo da Batata"


def test_inbound_optout_from_twelve_digit_id() -> None:
    form = _form_of("twilio_inbound.json")
    form.update(Body="SAIR", WaId="553199887766", From="whatsapp:+553199887766", ProfileName="João Pereira")
    message = _inbound(_form_request(form))
    assert message.phone == "553199887766"
    assert message.text == "SAIR"
    assert message.contact_name == "João Pereira"


def test_phone_falls_back_to_from_without_waid() -> None:
    form = _form_of("twilio_inbound.json")
    del form["WaId"]
    assert _inbound(_form_request(form)).phone == "5511987654321"


@pytest.mark.parametrize(
    ("mime", "expected"),
    [
        ("image/png", MessageType.IMAGE),
        ("video/mp4", MessageType.VIDEO),
        ("audio/ogg", MessageType.AUDIO),
        ("application/pdf", MessageType.DOCUMENT),
    ],
)
def test_type_inferred_from_media_when_message_type_absent(mime: str, expected: MessageType) -> None:
    form = _form_of("twilio_inbound_media.json")
    del form["MessageType"]
    form["MediaContentType0"] = mime
    message = _inbound(_form_request(form))
    assert message.type is expected
    assert message.media is not None
    assert message.media.mime_type == mime


def test_text_inferred_when_message_type_absent() -> None:
    form = _form_of("twilio_inbound.json")
    del form["MessageType"]
    assert _inbound(_form_request(form)).type is MessageType.TEXT


def test_unknown_message_type_is_kept_as_unknown() -> None:
    form = _form_of("twilio_inbound.json")
    form["MessageType"] = "poll"
    message = _inbound(_form_request(form))
    assert message.type is MessageType.UNKNOWN
    assert message.extra["twilio_type"] == "poll"


def test_forwarded_flag() -> None:
    form = _form_of("twilio_inbound.json")
    form["Forwarded"] = "true"
    assert _inbound(_form_request(form)).extra["forwarded"] is True


# --------------------------------------------------------------------------------------------------
# Status callbacks


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("twilio_status_sent.json", DeliveryStatus.SENT),
        ("twilio_status_delivered.json", DeliveryStatus.DELIVERED),
        ("twilio_status_read.json", DeliveryStatus.READ),
    ],
)
def test_status_callbacks(name: str, status: DeliveryStatus) -> None:
    update = _status(_fixture_request(name))
    assert update.provider_message_id == OUR_SID
    assert update.status is status
    assert update.recipient == "5511987654321"
    assert update.error is None
    assert update.timestamp.tzinfo is not None


def test_failed_63016_needs_template() -> None:
    update = _status(_fixture_request("twilio_status_failed_63016.json"))
    assert update.provider_message_id == "SMc7a3e9b1d5f2c8a4e0b6d3f9a1c7e5b2"
    assert update.status is DeliveryStatus.FAILED
    assert update.recipient == "5531999887766"
    assert update.error == StatusError(
        code="63016",
        title=(
            "Failed to send freeform message because you are outside the allowed window. "
            "If you are using WhatsApp, please use a Message Template."
        ),
        permanent=True,
        number_level=False,  # a template missing is the sender's mistake: no health cost
    )
    assert classify_error("63016") == "needs_template"


def test_undelivered_63024_is_permanent_invalid_recipient() -> None:
    form = _status_form("undelivered", ErrorCode="63024", EventType="UNDELIVERED")
    update = _status(_form_request(form, STATUS_URL))
    assert update.status is DeliveryStatus.FAILED
    assert update.error is not None
    assert update.error.code == "63024"
    assert update.error.title == "undelivered"
    assert update.error.permanent is True


def test_error_message_is_used_when_no_channel_message() -> None:
    form = _status_form("failed", ErrorCode="63018", ErrorMessage="Rate limit exceeded")
    update = _status(_form_request(form, STATUS_URL))
    assert update.error == StatusError(
        code="63018", title="Rate limit exceeded", permanent=False, number_level=True
    )


def test_canceled_is_failed_and_permanent() -> None:
    update = _status(_form_request(_status_form("canceled"), STATUS_URL))
    assert update.status is DeliveryStatus.FAILED
    assert update.error is not None
    assert update.error.permanent is True


def test_partially_delivered_is_delivered() -> None:
    update = _status(_form_request(_status_form("partially_delivered"), STATUS_URL))
    assert update.status is DeliveryStatus.DELIVERED


@pytest.mark.parametrize("status", ["accepted", "scheduled", "queued", "sending"])
def test_pending_statuses_are_ignored(status: str) -> None:
    event = _only(twilio_provider.parse(_form_request(_status_form(status), STATUS_URL)))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.PENDING_STATUS


def test_unknown_status_is_ignored() -> None:
    event = _only(twilio_provider.parse(_form_request(_status_form("exploded"), STATUS_URL)))
    assert isinstance(event, Ignored)
    assert event.reason is IgnoredReason.UNHANDLED_EVENT


def test_message_status_with_received_sms_status_is_inbound() -> None:
    form = _form_of("twilio_inbound.json")
    form["MessageStatus"] = "received"
    assert isinstance(_only(twilio_provider.parse(_form_request(form))), InboundMessage)


# --------------------------------------------------------------------------------------------------
# Routing and detection


@pytest.mark.parametrize("name", DESCRIPTORS)
def test_routing_key_is_our_number(name: str) -> None:
    assert twilio_provider.routing_key(_fixture_request(name)) == OUR_NUMBER


def test_routing_key_missing_number_is_none() -> None:
    form = _form_of("twilio_inbound.json")
    del form["To"]
    assert twilio_provider.routing_key(_form_request(form)) is None


@pytest.mark.parametrize("body", [b'{"MessageSid": "SM1"}', b"\xff\xfe", b"a=1&&b", b"just text"])
def test_routing_key_of_unreadable_body(body: bytes) -> None:
    request = WebhookRequest(body=body, headers={"content-type": FORM}, url=INBOUND_URL)
    with pytest.raises(PayloadError):
        twilio_provider.routing_key(request)
    with pytest.raises(PayloadError):
        twilio_provider.parse(request)


@pytest.mark.parametrize("name", DESCRIPTORS)
def test_detect_own_webhooks(name: str) -> None:
    request = _fixture_request(name)
    assert twilio_provider.detect(request)
    unsigned = WebhookRequest(body=request.body, headers={"content-type": FORM}, url=request.url)
    assert twilio_provider.detect(unsigned)


@pytest.mark.parametrize("name", META_BODIES)
def test_detect_rejects_meta_webhooks(name: str) -> None:
    request = WebhookRequest(
        body=(EXAMPLES / name).read_bytes(), headers={"content-type": "application/json"}, url=INBOUND_URL
    )
    assert not twilio_provider.detect(request)


def test_provider_name() -> None:
    assert twilio_provider.name is ProviderName.TWILIO


# --------------------------------------------------------------------------------------------------
# Signature: fixtures


@pytest.mark.parametrize("name", DESCRIPTORS)
def test_every_descriptor_signature_validates(name: str) -> None:
    assert twilio_provider.verify(_fixture_request(name), SECRETS)


@pytest.mark.parametrize("name", DESCRIPTORS)
def test_descriptor_signature_fails_with_another_token(name: str) -> None:
    other = InstanceSecrets(webhook_secret="unused", auth_token="0" * 32)
    assert not twilio_provider.verify(_fixture_request(name), other)


def test_signature_example_inbound_and_status_callback() -> None:
    example = _descriptor("twilio_signature_example.json")
    inbound = _form_request(example["params"], example["url"], example["expected_signature"])
    assert twilio_provider.verify(inbound, SECRETS)
    callback = example["status_callback_example"]
    status = _form_request(callback["params"], callback["url"], callback["expected_signature"])
    assert twilio_provider.verify(status, SECRETS)


def test_signature_covers_the_query_string() -> None:
    callback = _descriptor("twilio_signature_example.json")["status_callback_example"]
    other_tenant = callback["url"].replace("loja-centro", "loja-sul")
    request = _form_request(callback["params"], other_tenant, callback["expected_signature"])
    assert not twilio_provider.verify(request, SECRETS)


def test_tampered_fixture_param_is_rejected() -> None:
    descriptor = _descriptor("twilio_inbound.json")
    form = dict(descriptor["form"], Body="Oi! Vocês entregam em Moema hoje?")
    request = _form_request(form, descriptor["url"], descriptor["headers"]["X-Twilio-Signature"])
    assert not twilio_provider.verify(request, SECRETS)


def test_added_param_is_rejected() -> None:
    descriptor = _descriptor("twilio_inbound.json")
    form = dict(descriptor["form"], Extra="1")
    request = _form_request(form, descriptor["url"], descriptor["headers"]["X-Twilio-Signature"])
    assert not twilio_provider.verify(request, SECRETS)


def test_missing_header_or_token_is_invalid() -> None:
    request = _fixture_request("twilio_inbound.json")
    unsigned = WebhookRequest(body=request.body, headers={"content-type": FORM}, url=request.url)
    assert not twilio_provider.verify(unsigned, SECRETS)
    assert not twilio_provider.verify(request, InstanceSecrets(webhook_secret="unused"))


@pytest.mark.parametrize("signature", ["", "not base64 at all", "çç", "LUmyzpfJp/erWSeNXzV5F/yV6Ko"])
def test_malformed_signatures_are_invalid(signature: str) -> None:
    descriptor = _descriptor("twilio_inbound.json")
    request = _form_request(descriptor["form"], descriptor["url"], signature)
    assert not twilio_provider.verify(request, SECRETS)


# --------------------------------------------------------------------------------------------------
# Signature: cross-checked with the official twilio-python RequestValidator

NEW_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
NEW_SECRETS = InstanceSecrets(webhook_secret="unused", auth_token=NEW_TOKEN)
NEW_PARAMS = {
    "MessageSid": "SM00000000000000000000000000000001",
    "AccountSid": "AC00000000000000000000000000000001",
    "From": "whatsapp:+5521976543210",
    "To": "whatsapp:+551140028922",
    "Body": "Olá & até já: 100% + ação?",
    "ProfileName": "Ana Lima",
    "WaId": "5521976543210",
    "SmsStatus": "received",
    "NumMedia": "0",
    "Empty": "",
}


def _official(url: str, params: Any, algorithm: str | None = None) -> str:
    signature: str = RequestValidator(NEW_TOKEN).compute_signature(url, params, algorithm)
    return signature


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.exemplo.com.br/twilio/inbound",
        "https://hooks.exemplo.com.br/twilio/inbound?tenant=loja-norte&x=a%20b",
        "https://hooks.exemplo.com.br:8443/twilio/inbound?tenant=loja-norte",
        "http://localhost:8000/twilio/inbound",
    ],
)
def test_official_signature_is_accepted(url: str) -> None:
    request = _form_request(NEW_PARAMS, url, _official(url, NEW_PARAMS))
    assert twilio_provider.verify(request, NEW_SECRETS)
    assert RequestValidator(NEW_TOKEN).validate(url, NEW_PARAMS, request.headers["x-twilio-signature"])


@pytest.mark.parametrize(
    ("signed_url", "received_url"),
    [
        (
            "https://hooks.exemplo.com.br:443/twilio/inbound?tenant=a",
            "https://hooks.exemplo.com.br/twilio/inbound?tenant=a",
        ),
        (
            "https://hooks.exemplo.com.br/twilio/inbound?tenant=a",
            "https://hooks.exemplo.com.br:443/twilio/inbound?tenant=a",
        ),
        ("http://hooks.exemplo.com.br:80/twilio/inbound", "http://hooks.exemplo.com.br/twilio/inbound"),
    ],
)
def test_default_port_may_be_present_on_either_side(signed_url: str, received_url: str) -> None:
    request = _form_request(NEW_PARAMS, received_url, _official(signed_url, NEW_PARAMS))
    assert twilio_provider.verify(request, NEW_SECRETS)


def test_non_default_port_is_not_dropped() -> None:
    signed = "https://hooks.exemplo.com.br:8443/twilio/inbound"
    received = "https://hooks.exemplo.com.br:9443/twilio/inbound"
    request = _form_request(NEW_PARAMS, received, _official(signed, NEW_PARAMS))
    assert not twilio_provider.verify(request, NEW_SECRETS)


@pytest.mark.parametrize(
    ("name", "value"), [("Body", "Olá & até já: 100% + ação!"), ("Empty", " "), ("WaId", "1")]
)
def test_tampered_param_is_rejected(name: str, value: str) -> None:
    url = "https://hooks.exemplo.com.br/twilio/inbound?tenant=loja-norte"
    signature = _official(url, NEW_PARAMS)
    request = _form_request(dict(NEW_PARAMS, **{name: value}), url, signature)
    assert not twilio_provider.verify(request, NEW_SECRETS)


class _MultiDict:
    """The smallest multi-valued mapping RequestValidator understands (it calls getall())."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]


def test_repeated_params_are_sorted_by_value() -> None:
    url = "https://hooks.exemplo.com.br/twilio/inbound"
    pairs = [
        ("MediaUrl", "https://cdn/z.jpg"),
        ("To", "whatsapp:+551140028922"),
        ("MediaUrl", "https://cdn/a.jpg"),
        ("MediaUrl", "https://cdn/m.jpg"),
    ]
    signature = _official(url, _MultiDict(pairs))
    assert twilio_provider.verify(_form_request(pairs, url, signature), NEW_SECRETS)
    reordered = [pairs[2], pairs[0], pairs[3], pairs[1]]
    assert twilio_provider.verify(_form_request(reordered, url, signature), NEW_SECRETS)
    tampered = [*pairs[:3], ("MediaUrl", "https://cdn/n.jpg")]
    assert not twilio_provider.verify(_form_request(tampered, url, signature), NEW_SECRETS)


def test_json_body_is_checked_by_its_sha256() -> None:
    body = '{"MessageSid":"SM1","Body":"Olá"}'
    digest = hashlib.sha256(body.encode()).hexdigest()
    url = f"https://hooks.exemplo.com.br/twilio/json?tenant=a&bodySHA256={digest}"
    signature = _official(url, {})
    assert RequestValidator(NEW_TOKEN).validate(url, body, signature)
    headers = {"content-type": "application/json", "x-twilio-signature": signature}
    assert twilio_provider.verify(WebhookRequest(body=body.encode(), headers=headers, url=url), NEW_SECRETS)
    changed = WebhookRequest(body=body.replace("Olá", "Oi").encode(), headers=headers, url=url)
    assert not twilio_provider.verify(changed, NEW_SECRETS)


def test_json_body_without_hash_is_rejected() -> None:
    url = "https://hooks.exemplo.com.br/twilio/json"
    headers = {"content-type": "application/json", "x-twilio-signature": _official(url, {})}
    request = WebhookRequest(body=b'{"MessageSid":"SM1"}', headers=headers, url=url)
    assert not twilio_provider.verify(request, NEW_SECRETS)


def test_shared_key_sha256_signature() -> None:
    url = "https://hooks.exemplo.com.br/twilio/inbound"
    signature = _official(url, NEW_PARAMS, "HMAC_SHA256")
    request = _form_request(NEW_PARAMS, url, signature)
    settings = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    with_settings = WebhookRequest(
        body=request.body,
        headers={**request.headers, "x-twilio-webhooks-signature-settings": settings},
        url=url,
    )
    assert twilio_provider.verify(with_settings, NEW_SECRETS)
    # Without the settings header the default is SHA-1, which this signature is not.
    assert not twilio_provider.verify(request, NEW_SECRETS)


def test_unknown_signature_algorithm_fails_closed() -> None:
    url = "https://hooks.exemplo.com.br/twilio/inbound"
    request = _form_request(NEW_PARAMS, url, _official(url, NEW_PARAMS))
    headers = {**request.headers, "x-twilio-webhooks-signature-settings": "algorithm=HMAC_MD5"}
    assert not twilio_provider.verify(
        WebhookRequest(body=request.body, headers=headers, url=url), NEW_SECRETS
    )


# --------------------------------------------------------------------------------------------------
# Bad input inside a readable form


@pytest.mark.parametrize("missing", ["MessageSid"])
def test_inbound_without_id(missing: str) -> None:
    form = _form_of("twilio_inbound.json")
    del form[missing]
    with pytest.raises(PayloadError, match=missing):
        twilio_provider.parse(_form_request(form))


def test_inbound_without_sender() -> None:
    form = _form_of("twilio_inbound.json")
    del form["WaId"]
    form["From"] = "whatsapp:"
    with pytest.raises(PayloadError, match="WaId"):
        twilio_provider.parse(_form_request(form))


def test_status_without_id() -> None:
    form = _status_form("delivered")
    form["MessageSid"] = ""
    with pytest.raises(PayloadError, match="MessageSid"):
        twilio_provider.parse(_form_request(form, STATUS_URL))


def test_non_numeric_coordinates() -> None:
    form = _form_of("twilio_inbound.json")
    form.update(MessageType="location", Latitude="north", Longitude="-46.69")
    with pytest.raises(PayloadError, match="Latitude"):
        twilio_provider.parse(_form_request(form))


@pytest.mark.parametrize(
    "name",
    ["twilio_inbound_button_reply.json", "twilio_inbound_media.json", "twilio_status_failed_63016.json"],
)
def test_any_field_removed_or_garbled_raises_only_payload_error(name: str) -> None:
    form = _form_of(name)
    for field in form:
        for replacement in (None, "", "whatsapp:", "x", "ção", "-1"):
            mutated = {k: v for k, v in form.items() if k != field}
            if replacement is not None:
                mutated[field] = replacement
            try:
                events = twilio_provider.parse(_form_request(mutated))
            except PayloadError:
                continue
            assert len(events) == 1, field


# --------------------------------------------------------------------------------------------------
# Error classes


def test_classify_error_follows_the_mapping() -> None:
    mapping = json.loads(MAPPING.read_text())["error_classes"]["twilio"]
    for code, expected in mapping.items():
        assert classify_error(code) == expected, code


def test_unknown_error_codes_are_fix_request() -> None:
    assert classify_error("99999") == "fix_request"


# --------------------------------------------------------------------------------------------------
# Our message id in the StatusCallback URL (mw_message_id, put there by the send adapter)

OUR_MESSAGE_ID = "0b4f2c1e-7d3a-4e8b-9c6f-1a2b3c4d5e6f"


def _callback_request(url: str, signature: str | None = None) -> WebhookRequest:
    """A status callback as the webhook API builds it: the full URL and its query parameters."""
    plain = _form_request(_status_form("delivered"), url, signature)
    return WebhookRequest(
        body=plain.body, headers=plain.headers, url=url, query=dict(parse_qsl(urlsplit(url).query))
    )


def test_status_callback_url_query_gives_callback_data() -> None:
    url = status_callback(STATUS_URL, OUR_MESSAGE_ID)
    signature = _official(url, _status_form("delivered"))
    request = _callback_request(url, signature)
    assert twilio_provider.verify(request, NEW_SECRETS)
    update = _status(request)
    assert update.callback_data == OUR_MESSAGE_ID
    assert update.provider_message_id == OUR_SID


def test_callback_data_is_read_from_the_url_when_the_query_dict_is_empty() -> None:
    # The inbound worker rebuilds the request from the stored URL alone.
    url = status_callback(STATUS_URL, OUR_MESSAGE_ID)
    assert _status(_form_request(_status_form("read"), url)).callback_data == OUR_MESSAGE_ID


def test_callback_data_of_a_failed_status() -> None:
    url = status_callback(STATUS_URL, OUR_MESSAGE_ID)
    update = _status(_form_request(_status_form("failed", ErrorCode="63016"), url))
    assert update.status is DeliveryStatus.FAILED
    assert update.callback_data == OUR_MESSAGE_ID


@pytest.mark.parametrize(
    "url",
    [STATUS_URL, f"{STATUS_URL}&mw_message_id=", "https://api.exemplo.com.br/webhooks/twilio/status"],
)
def test_no_callback_data_without_our_id(url: str) -> None:
    assert _status(_callback_request(url)).callback_data is None


def test_callback_data_is_covered_by_the_signature() -> None:
    url = status_callback(STATUS_URL, OUR_MESSAGE_ID)
    signature = _official(url, _status_form("delivered"))
    forged = status_callback(STATUS_URL, "someone-elses-message")
    assert not twilio_provider.verify(_callback_request(forged, signature), NEW_SECRETS)
    assert twilio_provider.verify(_callback_request(url, signature), NEW_SECRETS)
