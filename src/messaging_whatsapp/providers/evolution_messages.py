"""Evolution's messages (`messages.upsert`, and `send.message` for our own): the sender, whatever the
content is (text, media, location, contacts, reactions, button, template and list replies), the
quoted message and the time, as an InboundMessage.

Every read goes through the typed accessors of providers/payload.py, which raise PayloadError
naming the path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from messaging_whatsapp.providers import jid
from messaging_whatsapp.providers.ad_referral import content_contexts, first_ad_referral
from messaging_whatsapp.providers.events import Ignored, InboundMessage, Media, MessageType, NormalisedEvent
from messaging_whatsapp.providers.payload import (
    JsonObject,
    as_list,
    as_object,
    fail,
    from_seconds,
    integer,
    json_str,
    opt_bool,
    opt_number,
    opt_object,
    opt_str,
    req_str,
)

SOURCE = "Evolution"

# Wrappers whose "message" holds the real content (v1 and un-flattened payloads).
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)


def long_integer(value: object, path: str) -> int:
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
    raise fail(SOURCE, f"{path} must be an integer (number, numeric string or {{low, high}}), got {value!r}")


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
        raise fail(SOURCE, f"{path} must be a string, got {type(body).__name__}")
    return _Content(MessageType.TEXT, text=body)


def _content_extended_text(message: JsonObject, body: object, path: str) -> _Content:
    return _Content(MessageType.TEXT, text=opt_str(SOURCE, as_object(SOURCE, body, path), "text", path))


_MEDIA_TYPES = {
    "imageMessage": MessageType.IMAGE,
    "videoMessage": MessageType.VIDEO,
    "audioMessage": MessageType.AUDIO,
    "documentMessage": MessageType.DOCUMENT,
    "stickerMessage": MessageType.STICKER,
}


def _media_content(kind: str) -> Callable[[JsonObject, object, str], _Content]:
    def parse(message: JsonObject, body: object, path: str) -> _Content:
        media = as_object(SOURCE, body, path)
        # With S3 enabled Evolution adds a downloadable mediaUrl; "url" is WhatsApp's encrypted CDN file.
        url = opt_str(SOURCE, message, "mediaUrl", "data.message") or opt_str(SOURCE, media, "url", path)
        content = _Content(
            _MEDIA_TYPES[kind],
            # The caption lives on the media only (text stays None), as for every provider.
            media=Media(
                url=url,
                mime_type=opt_str(SOURCE, media, "mimetype", path),
                caption=opt_str(SOURCE, media, "caption", path),
                filename=opt_str(SOURCE, media, "fileName", path),
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
    location = as_object(SOURCE, body, path)
    content = _Content(MessageType.LOCATION)
    content.extra["latitude"] = opt_number(SOURCE, location, "degreesLatitude", path)
    content.extra["longitude"] = opt_number(SOURCE, location, "degreesLongitude", path)
    for key, name in (("name", "name"), ("address", "address"), ("url", "url")):
        value = opt_str(SOURCE, location, key, path)
        if value is not None:
            content.extra[name] = value
    return content


def _card(body: object, path: str) -> dict[str, str | None]:
    contact = as_object(SOURCE, body, path)
    return {
        "name": opt_str(SOURCE, contact, "displayName", path),
        "vcard": opt_str(SOURCE, contact, "vcard", path),
    }


def _content_contact(message: JsonObject, body: object, path: str) -> _Content:
    return _Content(MessageType.CONTACTS, extra={"contacts": [_card(body, path)]})


def _content_contacts_array(message: JsonObject, body: object, path: str) -> _Content:
    contacts = as_list(SOURCE, as_object(SOURCE, body, path).get("contacts") or [], f"{path}.contacts")
    cards = [_card(item, f"{path}.contacts[{i}]") for i, item in enumerate(contacts)]
    return _Content(MessageType.CONTACTS, extra={"contacts": cards})


def _content_reaction(message: JsonObject, body: object, path: str) -> _Content:
    reaction = as_object(SOURCE, body, path)
    key = opt_object(SOURCE, reaction, "key", path) or {}
    content = _Content(MessageType.REACTION)
    # An empty emoji means the reaction was removed; text None says exactly that.
    content.text = opt_str(SOURCE, reaction, "text", path) or None
    content.extra["message_id"] = opt_str(SOURCE, key, "id", f"{path}.key")
    return content


def _content_buttons_response(message: JsonObject, body: object, path: str) -> _Content:
    reply = as_object(SOURCE, body, path)
    return _Content(
        MessageType.BUTTON,
        text=opt_str(SOURCE, reply, "selectedDisplayText", path),
        button_payload=opt_str(SOURCE, reply, "selectedButtonId", path),
    )


def _content_template_reply(message: JsonObject, body: object, path: str) -> _Content:
    # A template quick-reply button, like Meta's "button" type.
    reply = as_object(SOURCE, body, path)
    return _Content(
        MessageType.BUTTON,
        text=opt_str(SOURCE, reply, "selectedDisplayText", path),
        button_payload=opt_str(SOURCE, reply, "selectedId", path),
    )


def _content_list_response(message: JsonObject, body: object, path: str) -> _Content:
    reply = as_object(SOURCE, body, path)
    selected = opt_object(SOURCE, reply, "singleSelectReply", path) or {}
    content = _Content(MessageType.INTERACTIVE, extra={"interactive_type": "list_reply"})
    content.text = opt_str(SOURCE, reply, "title", path)
    content.button_payload = opt_str(SOURCE, selected, "selectedRowId", f"{path}.singleSelectReply")
    return content


def _content_interactive_response(message: JsonObject, body: object, path: str) -> _Content:
    reply = as_object(SOURCE, body, path)
    content = _Content(MessageType.INTERACTIVE, extra={"interactive_type": "native_flow"})
    text_body = opt_object(SOURCE, reply, "body", path)
    content.text = None if text_body is None else opt_str(SOURCE, text_body, "text", f"{path}.body")
    flow = opt_object(SOURCE, reply, "nativeFlowResponseMessage", path)
    params = (
        None if flow is None else opt_str(SOURCE, flow, "paramsJson", f"{path}.nativeFlowResponseMessage")
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
        message = opt_object(SOURCE, message[wrapper], "message", f"{path}.{wrapper}") or {}
        path = f"{path}.{wrapper}.message"
    return message, path


def _content_kind(message: JsonObject, message_type: str | None) -> str | None:
    """Which key of ``message`` holds the content: messageType when it is there, else the first known."""
    if message_type in _CONTENT and message_type in message:
        return message_type
    return next((kind for kind in _CONTENT if kind in message), None)


def _content(data: JsonObject) -> tuple[_Content, JsonObject, str]:
    """The content, the (unwrapped) message object and its path."""
    message, path = _unwrap(opt_object(SOURCE, data, "message", "data") or {}, "data.message")
    message_type = opt_str(SOURCE, data, "messageType", "data")
    kind = _content_kind(message, message_type)
    if kind is None:
        # pollCreationMessage, eventMessage, and whatever WhatsApp adds next: keep the type name.
        return _Content(MessageType.UNKNOWN, extra={"evolution_type": message_type}), message, path
    return _CONTENT[kind](message, message[kind], f"{path}.{kind}"), message, path


def _quoted_id(data: JsonObject, message: JsonObject, path: str) -> str | None:
    """The replied-to message id: top-level contextInfo (v2.2+) or the content's own contextInfo."""
    context = opt_object(SOURCE, data, "contextInfo", "data")
    stanza = None if context is None else opt_str(SOURCE, context, "stanzaId", "data.contextInfo")
    if stanza:
        return stanza
    for kind, body in message.items():
        if isinstance(body, dict) and isinstance(body.get("contextInfo"), dict):
            stanza = opt_str(SOURCE, body["contextInfo"], "stanzaId", f"{path}.{kind}.contextInfo")
            if stanza:
                return stanza
    return None


def _message_time(data: JsonObject) -> datetime:
    if "messageTimestamp" not in data:
        raise fail(SOURCE, "data.messageTimestamp is missing")
    return from_seconds(
        SOURCE, long_integer(data["messageTimestamp"], "data.messageTimestamp"), "data.messageTimestamp"
    )


def inbound_message(data: JsonObject, force_from_me: bool) -> NormalisedEvent:
    """The `data` of messages.upsert (or send.message, our own: `force_from_me`) as an InboundMessage,
    or Ignored for groups, broadcasts and status updates."""
    key = opt_object(SOURCE, data, "key", "data")
    if key is None:
        raise fail(SOURCE, "data.key is missing")
    message_id = req_str(SOURCE, key, "id", "data.key")
    remote_jid = req_str(SOURCE, key, "remoteJid", "data.key")
    ignored = jid.ignored_reason(remote_jid)
    if ignored is not None:
        return Ignored(ignored, f"evolution message {message_id} in {remote_jid}")
    alt = opt_str(SOURCE, key, "remoteJidAlt", "data.key")
    person = jid.resolve_person(remote_jid, alt)
    if person is None:
        raise fail(
            SOURCE, f"data.key names no phone number or LID (remoteJid {remote_jid!r}, remoteJidAlt {alt!r})"
        )
    from_me = force_from_me or bool(opt_bool(SOURCE, key, "fromMe", "data.key"))
    content, message, path = _content(data)
    return InboundMessage(
        provider_message_id=message_id,
        phone=person.phone,
        type=content.type,
        timestamp=_message_time(data),
        # On our own messages pushName is the business's name, not the contact's.
        contact_name=None if from_me else opt_str(SOURCE, data, "pushName", "data"),
        text=content.text,
        media=content.media,
        quoted_message_id=_quoted_id(data, message, path),
        button_payload=content.button_payload,
        from_me=from_me,
        user_id=person.lid,
        extra=content.extra,
        # The click-to-WhatsApp ad: top-level contextInfo (v2.2+) or the content's own.
        referral=None
        if from_me
        else first_ad_referral([data.get("contextInfo"), *content_contexts(message)]),
    )
