"""Twilio WhatsApp webhooks (inbound messages and status callbacks): detection, routing, parsing.

Both kinds arrive as ``application/x-www-form-urlencoded`` posts of flat string fields; the
signature check is in providers/twilio_signature.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from messaging_whatsapp.providers.base import InstanceSecrets, ProviderName, WebhookRequest
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
from messaging_whatsapp.providers.outbound import ErrorClass, receipt_error
from messaging_whatsapp.providers.payload import fail
from messaging_whatsapp.providers.twilio_signature import (
    FORM_CONTENT_TYPE,
    SIGNATURE_HEADER,
    SOURCE,
    form_pairs,
    signature_valid,
)

Form = dict[str, str]

# Query parameter of our StatusCallback URLs carrying our own message id (set by twilio_api).
CALLBACK_ID_PARAM = "mw_message_id"
# WhatsApp carries one media per message; Twilio numbers them 0..9 at most.
_MAX_MEDIA = 10

_STATUS_MAP: dict[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    # At least one recipient got it, which is all a 1:1 WhatsApp message has.
    "partially_delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
_PENDING_STATUSES = frozenset({"accepted", "scheduled", "queued", "sending"})
_INBOUND_STATUSES = frozenset({"received", "receiving"})

_TYPE_MAP: dict[str, MessageType] = {
    "text": MessageType.TEXT,
    "image": MessageType.IMAGE,
    "video": MessageType.VIDEO,
    "audio": MessageType.AUDIO,
    "document": MessageType.DOCUMENT,
    "sticker": MessageType.STICKER,
    "location": MessageType.LOCATION,
    "contacts": MessageType.CONTACTS,
    "button": MessageType.BUTTON,
    "interactive": MessageType.INTERACTIVE,
    "reaction": MessageType.REACTION,
}
_MEDIA_TYPES = frozenset(
    {MessageType.IMAGE, MessageType.VIDEO, MessageType.AUDIO, MessageType.DOCUMENT, MessageType.STICKER}
)
_MIME_TYPES: dict[str, MessageType] = {
    "image": MessageType.IMAGE,
    "video": MessageType.VIDEO,
    "audio": MessageType.AUDIO,
}

# Policy from tests/fixtures/common_model_mapping.json (error_classes.twilio), FORMATS.md section 5.5.
ERROR_CLASSES: dict[str, ErrorClass] = {
    **dict.fromkeys(["20429", "63017", "63018", "63012", "30008"], ErrorClass.RETRY),
    "63016": ErrorClass.NEEDS_TEMPLATE,
    **dict.fromkeys(["21211", "21614", "63003", "63024"], ErrorClass.INVALID_RECIPIENT),
    **dict.fromkeys(["63032", "63049"], ErrorClass.DEFER),
    **dict.fromkeys(["21610", "63014"], ErrorClass.OPT_OUT),
    # 21617: the Body is over 1,600 characters, the sender's own mistake (we split long texts first).
    **dict.fromkeys(
        ["21617", "63005", "63019", "63021", "63027", "63028", "63029", "63030"], ErrorClass.FIX_REQUEST
    ),
    **dict.fromkeys(["63001", "63007", "63013", "21408", "20003"], ErrorClass.PAUSE_CHANNEL),
}
# Unknown codes are treated as "fix_request": retrying something we do not understand can loop or spam
# the customer, while fix_request stops this payload and alerts a developer, who can add the code.
UNKNOWN_ERROR_CLASS = ErrorClass.FIX_REQUEST


def classify_error(code: str) -> ErrorClass:
    """Map a Twilio error code to this project's error class (unknown codes → "fix_request")."""
    return ERROR_CLASSES.get(code.strip(), UNKNOWN_ERROR_CLASS)


# --------------------------------------------------------------------------------------------------
# Form reading


def _form(body: bytes) -> Form:
    # Twilio never repeats a field in these webhooks; if one is repeated, the first wins.
    form: Form = {}
    for name, value in form_pairs(body):
        form.setdefault(name, value)
    return form


def _is_status_callback(form: Form) -> bool:
    status = form.get("MessageStatus")
    return (
        status is not None
        and status.lower() not in _INBOUND_STATUSES
        and form.get("SmsStatus", "").lower() != "received"
    )


def _address_digits(value: str | None) -> str | None:
    """E.164 digits of ``whatsapp:+5511...`` / ``+5511...`` / ``5511...``; None if it is not a number."""
    if not value:
        return None
    address = value.strip()
    if address.lower().startswith("whatsapp:"):
        address = address[len("whatsapp:") :]
    digits = address.lstrip("+")
    return digits if digits.isascii() and digits.isdigit() else None


def _required(form: Form, name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise fail(SOURCE, f"{name} is missing or empty")
    return value


def _optional(form: Form, name: str) -> str | None:
    # Twilio sends many fields empty rather than absent; empty means "not given".
    return form.get(name) or None


def _coordinate(form: Form, name: str) -> float | None:
    raw = _optional(form, name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise fail(SOURCE, f"{name} is not a number: {raw!r}") from exc


# --------------------------------------------------------------------------------------------------
# Status callbacks


def _status_error(form: Form, raw_status: str) -> StatusError:
    code = (form.get("ErrorCode") or "").strip()
    title = _optional(form, "ChannelStatusMessage") or _optional(form, "ErrorMessage") or raw_status
    # No code (e.g. canceled) classifies as unknown, hence permanent: nothing suggests a retry helps.
    error_class = classify_error(code)
    return receipt_error(code, title, error_class)


def _callback_data(request: WebhookRequest) -> str | None:
    """Our message id from the StatusCallback URL's query (``mw_message_id``), as the send put it there.

    The query dict is preferred; a request rebuilt from the stored URL alone (the inbound worker) has
    none, so the URL's own query is read then. The value is covered by the signature, which includes
    the full URL.
    """
    value = request.query.get(CALLBACK_ID_PARAM)
    if value is None:
        try:
            values = parse_qs(urlsplit(request.url).query).get(CALLBACK_ID_PARAM)
        except ValueError:
            values = None
        value = values[-1] if values else None
    return (value or "").strip() or None


def _status(form: Form, callback_data: str | None = None) -> NormalisedEvent:
    message_id = _required(form, "MessageSid")
    raw_status = _required(form, "MessageStatus").lower()
    if raw_status in _PENDING_STATUSES:
        return Ignored(IgnoredReason.PENDING_STATUS, f"twilio status {raw_status!r} for {message_id}")
    mapped = _STATUS_MAP.get(raw_status)
    if mapped is None:
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"twilio status {raw_status!r} for {message_id}")
    return StatusUpdate(
        provider_message_id=message_id,
        status=mapped,
        # Status callbacks carry no event time; the receipt time is the best we have.
        timestamp=datetime.now(UTC),
        recipient=_address_digits(form.get("To")),
        error=_status_error(form, raw_status) if mapped is DeliveryStatus.FAILED else None,
        callback_data=callback_data,
    )


# --------------------------------------------------------------------------------------------------
# Inbound messages


@dataclass(slots=True)
class _Content:
    """The type-specific part of an inbound message."""

    type: MessageType
    text: str | None = None
    button_payload: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _message_type(form: Form) -> tuple[MessageType, str | None]:
    """Our type plus Twilio's own name when it is one we do not know."""
    twilio_type = _optional(form, "MessageType")
    if twilio_type is not None:
        mapped = _TYPE_MAP.get(twilio_type.lower())
        return (mapped, None) if mapped is not None else (MessageType.UNKNOWN, twilio_type)
    # Older webhooks lack MessageType: infer it from what is present.
    if _optional(form, "Latitude") is not None:
        return MessageType.LOCATION, None
    mime = _optional(form, "MediaContentType0")
    if mime is not None:
        return _MIME_TYPES.get(mime.split("/", 1)[0].lower(), MessageType.DOCUMENT), None
    if _optional(form, "ButtonPayload") is not None:
        return MessageType.BUTTON, None
    return MessageType.TEXT, None


def _content(form: Form) -> _Content:
    message_type, unknown_name = _message_type(form)
    content = _Content(message_type)
    body = form.get("Body")
    if message_type in (MessageType.BUTTON, MessageType.INTERACTIVE):
        # Quick replies come as ButtonPayload/ButtonText; list-picker replies as ListId/ListTitle.
        content.button_payload = _optional(form, "ButtonPayload") or _optional(form, "ListId")
        content.text = _optional(form, "ButtonText") or _optional(form, "ListTitle") or body
    elif message_type is MessageType.LOCATION:
        content.extra.update(_location_extra(form))
    elif message_type not in _MEDIA_TYPES:
        # Media keep Body as the caption (on Media) only, so text means "typed text" everywhere.
        content.text = body
    if unknown_name is not None:
        content.extra["twilio_type"] = unknown_name
    return content


def _location_extra(form: Form) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "latitude": _coordinate(form, "Latitude"),
        "longitude": _coordinate(form, "Longitude"),
    }
    for name, key in (("Address", "address"), ("Label", "name")):
        value = _optional(form, name)
        if value is not None:
            extra[key] = value
    return extra


def _media(form: Form) -> Media | None:
    url, mime = _optional(form, "MediaUrl0"), _optional(form, "MediaContentType0")
    if url is None and mime is None:
        return None
    return Media(url=url, mime_type=mime, caption=_optional(form, "Body"))


def _additional_media(form: Form) -> list[dict[str, str | None]]:
    return [
        {"url": _optional(form, f"MediaUrl{i}"), "mime_type": _optional(form, f"MediaContentType{i}")}
        for i in range(1, _MAX_MEDIA)
        if _optional(form, f"MediaUrl{i}") is not None
    ]


def _referral(form: Form) -> Referral | None:
    referral = Referral(
        source_url=_optional(form, "ReferralSourceUrl"),
        source_id=_optional(form, "ReferralSourceId"),
        source_type=_optional(form, "ReferralSourceType"),
        headline=_optional(form, "ReferralHeadline"),
        click_id=_optional(form, "ReferralCtwaClid"),
    )
    return None if referral == Referral() else referral


def _inbound_extra(form: Form, content: _Content) -> dict[str, Any]:
    extra = dict(content.extra)
    for name, key in (("Forwarded", "forwarded"), ("FrequentlyForwarded", "frequently_forwarded")):
        if (form.get(name) or "").lower() == "true":
            extra[key] = True
    more_media = _additional_media(form)
    if more_media:
        extra["additional_media"] = more_media
    return extra


def _sender(form: Form) -> str:
    phone = _address_digits(form.get("WaId")) or _address_digits(form.get("From"))
    if phone is None:
        raise fail(SOURCE, "neither WaId nor From holds a phone number")
    return phone


def _inbound(form: Form) -> InboundMessage:
    content = _content(form)
    return InboundMessage(
        provider_message_id=_required(form, "MessageSid"),
        phone=_sender(form),
        type=content.type,
        # Inbound webhooks carry no message time; the receipt time is the best we have.
        timestamp=datetime.now(UTC),
        contact_name=_optional(form, "ProfileName"),
        text=content.text,
        media=_media(form),
        quoted_message_id=_optional(form, "OriginalRepliedMessageSid"),
        button_payload=content.button_payload,
        referral=_referral(form),
        extra=_inbound_extra(form, content),
    )


# --------------------------------------------------------------------------------------------------
# X-Twilio-Signature


# --------------------------------------------------------------------------------------------------


class TwilioProvider:
    """WebhookProvider for Twilio's WhatsApp channel (Programmable Messaging)."""

    name: ProviderName = ProviderName.TWILIO

    def detect(self, request: WebhookRequest) -> bool:
        """True when Twilio's signature header is set or the body is a Twilio-looking form."""
        if SIGNATURE_HEADER in request.headers:
            return True
        body = request.body
        return request.content_type == FORM_CONTENT_TYPE and (
            b"AccountSid=AC" in body or b"MessageSid=" in body
        )

    def routing_key(self, request: WebhookRequest) -> str | None:
        """Our WhatsApp number as E.164 digits: ``To`` of inbound messages, ``From`` of status callbacks."""
        form = _form(request.body)
        return _address_digits(form.get("From" if _is_status_callback(form) else "To"))

    def verify(self, request: WebhookRequest, secrets: InstanceSecrets) -> bool:
        """Check ``X-Twilio-Signature`` with the auth token, following twilio-python's RequestValidator."""
        return secrets.auth_token is not None and signature_valid(request, secrets.auth_token)

    def parse(self, request: WebhookRequest) -> list[NormalisedEvent]:
        """One event per post: a StatusUpdate/Ignored for status callbacks, an InboundMessage otherwise."""
        form = _form(request.body)
        if _is_status_callback(form):
            return [_status(form, _callback_data(request))]
        return [_inbound(form)]


twilio_provider = TwilioProvider()
