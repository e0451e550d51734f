"""Evolution API webhooks (v2, Baileys channel; v1 data shapes accepted): detect, route, verify, parse.

Every POST carries one event: ``{"event": "messages.upsert", "instance": "<name>", "data": {...},
"apikey": ..., ...}`` (tests/fixtures/FORMATS.md section 3). Evolution signs nothing, so verification
accepts any of the secrets an operator can configure (see ``EvolutionProvider.verify``).

Every read of the payload goes through the typed accessors of providers/payload.py, which raise
PayloadError naming the path (``data.key.id``), so a malformed body never escapes as KeyError/TypeError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from messaging_whatsapp.providers import jid
from messaging_whatsapp.providers.base import (
    WEBHOOK_SECRET_HEADER,
    InstanceSecrets,
    PayloadError,
    ProviderName,
    WebhookRequest,
)
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
from messaging_whatsapp.providers.payload import (
    JsonObject,
    as_list,
    as_object,
    body_json_or_none,
    body_object,
    body_str,
    fail,
    from_seconds,
    integer,
    json_str,
    opt_bool,
    opt_number,
    opt_object,
    opt_str,
    req_str,
    secret_matches,
)

_SOURCE = "Evolution"

# Event names are dotted lowercase ("messages.upsert", "group-participants.update"); "call" has no dot.
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*")
_BEARER = "bearer "

# renderStatus.ts: Baileys' numeric WAMessageStatus → the strings Evolution sends.
_NUMERIC_STATUS = {0: "ERROR", 1: "PENDING", 2: "SERVER_ACK", 3: "DELIVERY_ACK", 4: "READ", 5: "PLAYED"}
_STATUS_MAP: dict[str, DeliveryStatus] = {
    "SERVER_ACK": DeliveryStatus.SENT,
    "DELIVERY_ACK": DeliveryStatus.DELIVERED,
    "READ": DeliveryStatus.READ,
    # A played voice note is the strongest proof of reading.
    "PLAYED": DeliveryStatus.READ,
    "ERROR": DeliveryStatus.FAILED,
}

_CONNECTION_STATES = {
    "open": ConnectionState.OPEN,
    "connecting": ConnectionState.CONNECTING,
    "close": ConnectionState.CLOSE,
}

# Wrappers whose "message" holds the real content (v1 and un-flattened payloads).
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)


# --------------------------------------------------------------------------------------------------
# Evolution-specific readers (the generic typed accessors live in providers/payload.py).


def _long(value: object, path: str) -> int:
    """A protobuf 64-bit integer: a number, a numeric string, or a Long object ``{low, high}``."""
    number = integer(value)
    if number is not None:
        return number
    if isinstance(value, dict):
        low, high = value.get("low"), value.get("high")
        # type() is, not isinstance: a bool is an int subclass and never a valid half.
        if type(low) is int and type(high) is int:
            # low is sent as a signed 32-bit int; mask it back to its unsigned bits.
            return (high << 32) | (low & 0xFFFFFFFF)
    raise fail(_SOURCE, f"{path} must be an integer (number, numeric string or {{low, high}}), got {value!r}")


def _data(payload: JsonObject) -> JsonObject:
    if "data" not in payload:
        raise fail(_SOURCE, "data is missing")
    return as_object(_SOURCE, payload["data"], "data")


# --------------------------------------------------------------------------------------------------
# messages.upsert / send.message content


@dataclass(slots=True)
class _Content:
    """The type-specific part of an inbound message, filled by one of the _content_* functions."""

    type: MessageType
    text: str | None = None
    media: Media | None = None
    button_payload: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _content_conversation(message: JsonObject, body: object, path: str) -> _Content:
    if body is not None and not isinstance(body, str):
        raise fail(_SOURCE, f"{path} must be a string, got {type(body).__name__}")
    return _Content(MessageType.TEXT, text=body)


def _content_extended_text(message: JsonObject, body: object, path: str) -> _Content:
    return _Content(MessageType.TEXT, text=opt_str(_SOURCE, as_object(_SOURCE, body, path), "text", path))


_MEDIA_TYPES = {
    "imageMessage": MessageType.IMAGE,
    "videoMessage": MessageType.VIDEO,
    "audioMessage": MessageType.AUDIO,
    "documentMessage": MessageType.DOCUMENT,
    "stickerMessage": MessageType.STICKER,
}


def _media_content(kind: str) -> Callable[[JsonObject, object, str], _Content]:
    def parse(message: JsonObject, body: object, path: str) -> _Content:
        media = as_object(_SOURCE, body, path)
        # With S3 enabled Evolution adds a downloadable mediaUrl; "url" is WhatsApp's encrypted CDN file.
        url = opt_str(_SOURCE, message, "mediaUrl", "data.message") or opt_str(_SOURCE, media, "url", path)
        content = _Content(
            _MEDIA_TYPES[kind],
            # The caption lives on the media only (text stays None), as for every provider.
            media=Media(
                url=url,
                mime_type=opt_str(_SOURCE, media, "mimetype", path),
                caption=opt_str(_SOURCE, media, "caption", path),
                filename=opt_str(_SOURCE, media, "fileName", path),
            ),
        )
        if kind == "audioMessage" and isinstance(media.get("ptt"), bool):
            content.extra["voice"] = media["ptt"]
        if isinstance(message.get("base64"), str):
            # The webhook has base64 enabled: the bytes are in the stored body, no download needed.
            content.extra["base64_in_payload"] = True
        return content

    return parse


def _content_location(message: JsonObject, body: object, path: str) -> _Content:
    location = as_object(_SOURCE, body, path)
    content = _Content(MessageType.LOCATION)
    content.extra["latitude"] = opt_number(_SOURCE, location, "degreesLatitude", path)
    content.extra["longitude"] = opt_number(_SOURCE, location, "degreesLongitude", path)
    for key, name in (("name", "name"), ("address", "address"), ("url", "url")):
        value = opt_str(_SOURCE, location, key, path)
        if value is not None:
            content.extra[name] = value
    return content


def _card(body: object, path: str) -> dict[str, str | None]:
    contact = as_object(_SOURCE, body, path)
    return {
        "name": opt_str(_SOURCE, contact, "displayName", path),
        "vcard": opt_str(_SOURCE, contact, "vcard", path),
    }


def _content_contact(message: JsonObject, body: object, path: str) -> _Content:
    return _Content(MessageType.CONTACTS, extra={"contacts": [_card(body, path)]})


def _content_contacts_array(message: JsonObject, body: object, path: str) -> _Content:
    contacts = as_list(_SOURCE, as_object(_SOURCE, body, path).get("contacts") or [], f"{path}.contacts")
    cards = [_card(item, f"{path}.contacts[{i}]") for i, item in enumerate(contacts)]
    return _Content(MessageType.CONTACTS, extra={"contacts": cards})


def _content_reaction(message: JsonObject, body: object, path: str) -> _Content:
    reaction = as_object(_SOURCE, body, path)
    key = opt_object(_SOURCE, reaction, "key", path) or {}
    content = _Content(MessageType.REACTION)
    # An empty emoji means the reaction was removed; text None says exactly that.
    content.text = opt_str(_SOURCE, reaction, "text", path) or None
    content.extra["message_id"] = opt_str(_SOURCE, key, "id", f"{path}.key")
    return content


def _content_buttons_response(message: JsonObject, body: object, path: str) -> _Content:
    reply = as_object(_SOURCE, body, path)
    return _Content(
        MessageType.BUTTON,
        text=opt_str(_SOURCE, reply, "selectedDisplayText", path),
        button_payload=opt_str(_SOURCE, reply, "selectedButtonId", path),
    )


def _content_template_reply(message: JsonObject, body: object, path: str) -> _Content:
    # A template quick-reply button, like Meta's "button" type.
    reply = as_object(_SOURCE, body, path)
    return _Content(
        MessageType.BUTTON,
        text=opt_str(_SOURCE, reply, "selectedDisplayText", path),
        button_payload=opt_str(_SOURCE, reply, "selectedId", path),
    )


def _content_list_response(message: JsonObject, body: object, path: str) -> _Content:
    reply = as_object(_SOURCE, body, path)
    selected = opt_object(_SOURCE, reply, "singleSelectReply", path) or {}
    content = _Content(MessageType.INTERACTIVE, extra={"interactive_type": "list_reply"})
    content.text = opt_str(_SOURCE, reply, "title", path)
    content.button_payload = opt_str(_SOURCE, selected, "selectedRowId", f"{path}.singleSelectReply")
    return content


def _content_interactive_response(message: JsonObject, body: object, path: str) -> _Content:
    reply = as_object(_SOURCE, body, path)
    content = _Content(MessageType.INTERACTIVE, extra={"interactive_type": "native_flow"})
    text_body = opt_object(_SOURCE, reply, "body", path)
    content.text = None if text_body is None else opt_str(_SOURCE, text_body, "text", f"{path}.body")
    flow = opt_object(_SOURCE, reply, "nativeFlowResponseMessage", path)
    params = (
        None if flow is None else opt_str(_SOURCE, flow, "paramsJson", f"{path}.nativeFlowResponseMessage")
    )
    if params is not None:
        content.extra["params_json"] = params
        content.button_payload = json_str(params, "id")
    return content


_CONTENT: dict[str, Callable[[JsonObject, object, str], _Content]] = {
    "conversation": _content_conversation,
    "extendedTextMessage": _content_extended_text,
    **{kind: _media_content(kind) for kind in _MEDIA_TYPES},
    "locationMessage": _content_location,
    "liveLocationMessage": _content_location,
    "contactMessage": _content_contact,
    "contactsArrayMessage": _content_contacts_array,
    "reactionMessage": _content_reaction,
    "buttonsResponseMessage": _content_buttons_response,
    "templateButtonReplyMessage": _content_template_reply,
    "listResponseMessage": _content_list_response,
    "interactiveResponseMessage": _content_interactive_response,
}


def _unwrap(message: JsonObject, path: str) -> tuple[JsonObject, str]:
    """The innermost message of ephemeral/view-once/document-with-caption wrappers."""
    for _depth in range(4):
        wrapper = next((name for name in _WRAPPERS if isinstance(message.get(name), dict)), None)
        if wrapper is None:
            break
        message = opt_object(_SOURCE, message[wrapper], "message", f"{path}.{wrapper}") or {}
        path = f"{path}.{wrapper}.message"
    return message, path


def _content_kind(message: JsonObject, message_type: str | None) -> str | None:
    """Which key of ``message`` holds the content: messageType when it is there, else the first known."""
    if message_type in _CONTENT and message_type in message:
        return message_type
    return next((kind for kind in _CONTENT if kind in message), None)


def _content(data: JsonObject) -> tuple[_Content, JsonObject, str]:
    """The content, the (unwrapped) message object and its path."""
    message, path = _unwrap(opt_object(_SOURCE, data, "message", "data") or {}, "data.message")
    message_type = opt_str(_SOURCE, data, "messageType", "data")
    kind = _content_kind(message, message_type)
    if kind is None:
        # pollCreationMessage, eventMessage, and whatever WhatsApp adds next: keep the type name.
        return _Content(MessageType.UNKNOWN, extra={"evolution_type": message_type}), message, path
    return _CONTENT[kind](message, message[kind], f"{path}.{kind}"), message, path


def _quoted_id(data: JsonObject, message: JsonObject, path: str) -> str | None:
    """The replied-to message id: top-level contextInfo (v2.2+) or the content's own contextInfo."""
    context = opt_object(_SOURCE, data, "contextInfo", "data")
    stanza = None if context is None else opt_str(_SOURCE, context, "stanzaId", "data.contextInfo")
    if stanza:
        return stanza
    for kind, body in message.items():
        if isinstance(body, dict) and isinstance(body.get("contextInfo"), dict):
            stanza = opt_str(_SOURCE, body["contextInfo"], "stanzaId", f"{path}.{kind}.contextInfo")
            if stanza:
                return stanza
    return None


def _message_time(data: JsonObject) -> datetime:
    if "messageTimestamp" not in data:
        raise fail(_SOURCE, "data.messageTimestamp is missing")
    return from_seconds(
        _SOURCE, _long(data["messageTimestamp"], "data.messageTimestamp"), "data.messageTimestamp"
    )


def _message(data: JsonObject, force_from_me: bool) -> NormalisedEvent:
    key = opt_object(_SOURCE, data, "key", "data")
    if key is None:
        raise fail(_SOURCE, "data.key is missing")
    message_id = req_str(_SOURCE, key, "id", "data.key")
    remote_jid = req_str(_SOURCE, key, "remoteJid", "data.key")
    ignored = jid.ignored_reason(remote_jid)
    if ignored is not None:
        return Ignored(ignored, f"evolution message {message_id} in {remote_jid}")
    alt = opt_str(_SOURCE, key, "remoteJidAlt", "data.key")
    person = jid.resolve_person(remote_jid, alt)
    if person is None:
        raise fail(
            _SOURCE, f"data.key names no phone number (remoteJid {remote_jid!r}, remoteJidAlt {alt!r})"
        )
    from_me = force_from_me or bool(opt_bool(_SOURCE, key, "fromMe", "data.key"))
    content, message, path = _content(data)
    return InboundMessage(
        provider_message_id=message_id,
        phone=person.phone,
        type=content.type,
        timestamp=_message_time(data),
        # On our own messages pushName is the business's name, not the contact's.
        contact_name=None if from_me else opt_str(_SOURCE, data, "pushName", "data"),
        text=content.text,
        media=content.media,
        quoted_message_id=_quoted_id(data, message, path),
        button_payload=content.button_payload,
        from_me=from_me,
        user_id=person.lid,
        extra=content.extra,
    )


# --------------------------------------------------------------------------------------------------
# messages.update and connection.update


def _status_name(data: JsonObject) -> str:
    value = data.get("status")
    if isinstance(value, int) and not isinstance(value, bool):
        return _NUMERIC_STATUS.get(value, str(value))
    if isinstance(value, str) and value:
        return value.upper()
    raise fail(_SOURCE, f"data.status must be a status name or number, got {value!r}")


def _status_time(data: JsonObject) -> datetime:
    """v1's ``data.datetime`` (unix ms); v2 updates carry no time of their own, so the parse time.

    The envelope's ``date_time`` is no substitute: it is Evolution's local clock labelled "Z"
    (FORMATS.md 3.1) — the fixtures' receipts say 09:01Z for messages sent at 12:01Z — so it can put
    a receipt hours before its message. The parse time is late only by our own queue delay.
    """
    if data.get("datetime") is not None:
        return from_seconds(_SOURCE, _long(data["datetime"], "data.datetime") / 1000, "data.datetime")
    return datetime.now(UTC)


def _status_update(data: JsonObject) -> NormalisedEvent:
    # v2 names the message keyId (messageId is Evolution's database row id); v1 names it id.
    message_id = opt_str(_SOURCE, data, "keyId", "data") or req_str(_SOURCE, data, "id", "data")
    from_me = opt_bool(_SOURCE, data, "fromMe", "data")
    if from_me is None:
        raise fail(_SOURCE, "data.fromMe is missing")
    if not from_me:
        # A receipt for a message the customer sent us (e.g. we marked it read).
        return Ignored(IgnoredReason.SELF_RECEIPT, f"evolution receipt for inbound {message_id}")
    name = _status_name(data)
    if name == "PENDING":
        return Ignored(IgnoredReason.PENDING_STATUS, f"evolution {message_id} PENDING")
    status = _STATUS_MAP.get(name)
    if status is None:
        # DELETED and anything unknown: not a delivery state.
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"evolution status {name} for {message_id}")
    remote_jid = opt_str(_SOURCE, data, "remoteJid", "data")
    return StatusUpdate(
        provider_message_id=message_id,
        status=status,
        timestamp=_status_time(data),
        recipient=jid.phone_digits(remote_jid) if remote_jid else None,
        error=StatusError(code="ERROR", title="Evolution reported status ERROR")
        if status is DeliveryStatus.FAILED
        else None,
    )


def _connection_update(data: JsonObject) -> NormalisedEvent:
    state = req_str(_SOURCE, data, "state", "data")
    reason = data.get("statusReason")
    if reason is not None and (isinstance(reason, bool) or not isinstance(reason, int | str)):
        raise fail(_SOURCE, f"data.statusReason must be a number, got {type(reason).__name__}")
    if state == "refused":
        # The QR code limit was reached: the session is closed until someone scans again.
        return ConnectionUpdate(ConnectionState.CLOSE, reason="refused")
    mapped = _CONNECTION_STATES.get(state)
    if mapped is None:
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"evolution connection state {state!r}")
    return ConnectionUpdate(mapped, reason=None if reason is None else str(reason))


# --------------------------------------------------------------------------------------------------


def _is_evolution(payload: object) -> bool:
    if not isinstance(payload, dict) or "instance" not in payload:
        return False
    event = payload.get("event")
    # "type" is WuzAPI's marker and "simulator" ours: excluding them keeps detection exclusive.
    return (
        isinstance(event, str)
        and _EVENT_NAME.fullmatch(event) is not None
        and "type" not in payload
        and "simulator" not in payload
    )


class EvolutionProvider:
    """WebhookProvider for Evolution API (Baileys channel)."""

    name: ProviderName = ProviderName.EVOLUTION

    def detect(self, request: WebhookRequest) -> bool:
        """True for a JSON object with a dotted lowercase ``event`` and an ``instance`` key."""
        if b'"event"' not in request.body or b'"instance"' not in request.body:
            return False
        return _is_evolution(body_json_or_none(request))

    def routing_key(self, request: WebhookRequest) -> str | None:
        """The top-level ``instance`` (the Evolution instance name), or None when it is absent."""
        payload = body_object(_SOURCE, request)
        instance = opt_str(_SOURCE, payload, "instance", "body")
        return instance or None

    def verify(self, request: WebhookRequest, secrets: InstanceSecrets) -> bool:
        """Accept any secret an operator can configure, compared in constant time.

        Evolution signs nothing, so the request is genuine when the webhook secret is in the URL path,
        in ``x-webhook-secret``, or in ``Authorization: Bearer <secret>``, or when the body's
        ``apikey`` equals the instance API key (Evolution only sends it when it is exposed).
        """
        secret = secrets.webhook_secret
        authorization = request.headers.get("authorization", "")
        bearer = authorization[len(_BEARER) :].strip() if authorization.lower().startswith(_BEARER) else None
        # Evaluate every check (no short-circuit) so timing does not reveal which one matched.
        checks = [
            secret_matches(request.path_secret, secret),
            secret_matches(request.headers.get(WEBHOOK_SECRET_HEADER), secret),
            secret_matches(bearer, secret),
            # The envelope's apikey is null unless the instance exposes it.
            secret_matches(body_str(request, "apikey"), secrets.api_key),
        ]
        return any(checks)

    def parse(self, request: WebhookRequest) -> list[NormalisedEvent]:
        """The one event of the POST: a message, a receipt, a connection change, or Ignored."""
        payload = body_object(_SOURCE, request)
        event = req_str(_SOURCE, payload, "event", "body")
        try:
            return [_parse_event(payload, event)]
        except PayloadError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # Belt and braces: the accessors above already raise PayloadError with a path.
            raise fail(_SOURCE, f"unusable ({type(exc).__name__}: {exc})") from exc


def _parse_event(payload: JsonObject, event: str) -> NormalisedEvent:
    if event == "messages.upsert":
        return _message(_data(payload), force_from_me=False)
    if event == "send.message":
        # Echo of a message sent through Evolution's API (ours, or another tool's on this instance).
        return _message(_data(payload), force_from_me=True)
    if event == "messages.update":
        return _status_update(_data(payload))
    if event == "connection.update":
        return _connection_update(_data(payload))
    return Ignored(IgnoredReason.UNHANDLED_EVENT, event)


evolution_provider = EvolutionProvider()
