"""WuzAPI's `Message` events: whatsmeow's message struct (Go field names outside, the WhatsApp
protobuf's inside) as an InboundMessage: the customer, the content of every type, the quote.

Every read goes through the typed accessors of providers/payload.py, which raise PayloadError
naming the path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from messaging_whatsapp.providers import jid
from messaging_whatsapp.providers.ad_referral import content_contexts, first_ad_referral
from messaging_whatsapp.providers.events import (
    Ignored,
    IgnoredReason,
    InboundMessage,
    Media,
    MessageType,
    NormalisedEvent,
)
from messaging_whatsapp.providers.payload import (
    JsonObject,
    as_list,
    as_object,
    fail,
    json_str,
    opt_bool,
    opt_number,
    opt_object,
    opt_str,
    req_object,
    req_str,
    rfc3339,
)

SOURCE = "WuzAPI"


def flag(parent: JsonObject, key: str, path: str) -> bool:
    """A Go bool: absent or null reads as false, its zero value."""
    return opt_bool(SOURCE, parent, key, path) is True


# --------------------------------------------------------------------------------------------------
# Message content (whatsmeow has already unwrapped ephemeral / view-once / document-with-caption)


@dataclass(slots=True)
class _Content:
    """The type-specific part of an inbound message, filled by one of the _content_* functions."""

    type: MessageType
    text: str | None = None
    media: Media | None = None
    button_payload: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# Root fields WuzAPI adds when it downloaded the media itself.
@dataclass(frozen=True, slots=True)
class _Downloaded:
    mime_type: str | None
    filename: str | None
    base64: bool


def _content_conversation(body: object, root: _Downloaded, path: str) -> _Content:
    if not isinstance(body, str):
        raise fail(SOURCE, f"{path} must be a string, got {type(body).__name__}")
    return _Content(MessageType.TEXT, text=body)


def _content_extended_text(body: object, root: _Downloaded, path: str) -> _Content:
    return _Content(MessageType.TEXT, text=opt_str(SOURCE, as_object(SOURCE, body, path), "text", path))


_MEDIA_TYPES = {
    "imageMessage": MessageType.IMAGE,
    "videoMessage": MessageType.VIDEO,
    "audioMessage": MessageType.AUDIO,
    "documentMessage": MessageType.DOCUMENT,
    "stickerMessage": MessageType.STICKER,
}


def _media_content(kind: str) -> Callable[[object, _Downloaded, str], _Content]:
    def parse(body: object, root: _Downloaded, path: str) -> _Content:
        media = as_object(SOURCE, body, path)
        content = _Content(
            _MEDIA_TYPES[kind],
            # The caption lives on the media only (text stays None), as for every provider.
            media=Media(
                url=opt_str(SOURCE, media, "URL", path),
                mime_type=opt_str(SOURCE, media, "mimetype", path) or root.mime_type,
                caption=opt_str(SOURCE, media, "caption", path),
                filename=opt_str(SOURCE, media, "fileName", path) or root.filename,
            ),
        )
        if kind == "audioMessage" and isinstance(media.get("PTT"), bool):
            content.extra["voice"] = media["PTT"]
        if root.base64:
            # WuzAPI downloaded the file: the bytes are in the stored body, no download needed.
            content.extra["base64_in_payload"] = True
        return content

    return parse


def _content_location(body: object, root: _Downloaded, path: str) -> _Content:
    location = as_object(SOURCE, body, path)
    content = _Content(MessageType.LOCATION)
    content.extra["latitude"] = opt_number(SOURCE, location, "degreesLatitude", path)
    content.extra["longitude"] = opt_number(SOURCE, location, "degreesLongitude", path)
    for key, name in (("name", "name"), ("address", "address"), ("URL", "url")):
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


def _content_contact(body: object, root: _Downloaded, path: str) -> _Content:
    return _Content(MessageType.CONTACTS, extra={"contacts": [_card(body, path)]})


def _content_contacts_array(body: object, root: _Downloaded, path: str) -> _Content:
    contacts = as_list(SOURCE, as_object(SOURCE, body, path).get("contacts") or [], f"{path}.contacts")
    cards = [_card(item, f"{path}.contacts[{i}]") for i, item in enumerate(contacts)]
    return _Content(MessageType.CONTACTS, extra={"contacts": cards})


def _content_reaction(body: object, root: _Downloaded, path: str) -> _Content:
    reaction = as_object(SOURCE, body, path)
    key = opt_object(SOURCE, reaction, "key", path) or {}
    content = _Content(MessageType.REACTION)
    # An empty emoji means the reaction was removed; text None says exactly that.
    content.text = opt_str(SOURCE, reaction, "text", path) or None
    content.extra["message_id"] = opt_str(SOURCE, key, "ID", f"{path}.key")
    return content


def _content_buttons_response(body: object, root: _Downloaded, path: str) -> _Content:
    reply = as_object(SOURCE, body, path)
    # The display text is a protobuf oneof, which encoding/json nests as Response.SelectedDisplayText.
    response = opt_object(SOURCE, reply, "Response", path) or {}
    return _Content(
        MessageType.BUTTON,
        text=opt_str(SOURCE, response, "SelectedDisplayText", f"{path}.Response"),
        button_payload=opt_str(SOURCE, reply, "selectedButtonID", path),
    )


def _content_template_reply(body: object, root: _Downloaded, path: str) -> _Content:
    # A template quick-reply button, like Meta's "button" type.
    reply = as_object(SOURCE, body, path)
    return _Content(
        MessageType.BUTTON,
        text=opt_str(SOURCE, reply, "selectedDisplayText", path),
        button_payload=opt_str(SOURCE, reply, "selectedID", path),
    )


def _content_list_response(body: object, root: _Downloaded, path: str) -> _Content:
    reply = as_object(SOURCE, body, path)
    selected = opt_object(SOURCE, reply, "singleSelectReply", path) or {}
    content = _Content(MessageType.INTERACTIVE, extra={"interactive_type": "list_reply"})
    content.text = opt_str(SOURCE, reply, "title", path)
    content.button_payload = opt_str(SOURCE, selected, "selectedRowID", f"{path}.singleSelectReply")
    return content


def _content_interactive_response(body: object, root: _Downloaded, path: str) -> _Content:
    reply = as_object(SOURCE, body, path)
    content = _Content(MessageType.INTERACTIVE, extra={"interactive_type": "native_flow"})
    text_body = opt_object(SOURCE, reply, "body", path)
    content.text = None if text_body is None else opt_str(SOURCE, text_body, "text", f"{path}.body")
    # Another oneof: InteractiveResponseMessage.NativeFlowResponseMessage.paramsJSON.
    wrapper = opt_object(SOURCE, reply, "InteractiveResponseMessage", path) or {}
    flow = (
        opt_object(SOURCE, wrapper, "NativeFlowResponseMessage", f"{path}.InteractiveResponseMessage") or {}
    )
    params = opt_str(
        SOURCE, flow, "paramsJSON", f"{path}.InteractiveResponseMessage.NativeFlowResponseMessage"
    )
    if params is not None:
        content.extra["params_json"] = params
        content.button_payload = json_str(params, "id")
    return content


_CONTENT: dict[str, Callable[[object, _Downloaded, str], _Content]] = {
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


def _downloaded(postmap: JsonObject) -> _Downloaded:
    return _Downloaded(
        mime_type=opt_str(SOURCE, postmap, "mimeType", "body"),
        filename=opt_str(SOURCE, postmap, "fileName", "body"),
        base64=isinstance(postmap.get("base64"), str),
    )


def _content(message: JsonObject, root: _Downloaded) -> tuple[_Content, str | None]:
    """The content and the key of ``message`` that held it (None when none is known)."""
    kind = next((name for name in _CONTENT if message.get(name) is not None), None)
    if kind is None:
        # Polls, events, and whatever WhatsApp adds next: keep the proto field names.
        names = sorted(name for name in message if name != "messageContextInfo")
        return _Content(MessageType.UNKNOWN, extra={"wuzapi_types": names}), None
    return _CONTENT[kind](message[kind], root, f"event.Message.{kind}"), kind


def _quoted_id(message: JsonObject, kind: str | None) -> str | None:
    body = message.get(kind) if kind else None
    context = body.get("contextInfo") if isinstance(body, dict) else None
    if not isinstance(context, dict):
        return None
    return opt_str(SOURCE, context, "stanzaID", f"event.Message.{kind}.contextInfo") or None


def _person(info: JsonObject, from_me: bool) -> jid.Person | None:
    """The customer of a 1:1 chat: the chat on our own messages, else the sender (or the chat)."""
    where = "event.Info"
    chat = opt_str(SOURCE, info, "Chat", where)
    if from_me:
        # Sender is our own number here; the chat (or its alternate address) is the customer.
        return jid.resolve_person(chat, opt_str(SOURCE, info, "RecipientAlt", where))
    person = jid.resolve_person(
        opt_str(SOURCE, info, "Sender", where), opt_str(SOURCE, info, "SenderAlt", where)
    )
    if person is not None and person.phone is not None:
        return person
    # A sender known by LID alone: the chat may still name the phone.
    fallback = jid.resolve_person(chat, opt_str(SOURCE, info, "Sender", where))
    if fallback is None or fallback.phone is None:
        return person or fallback
    return jid.Person(fallback.phone, (person.lid if person else None) or fallback.lid)


def _skip_reason(info: JsonObject, event: JsonObject) -> Ignored | None:
    chat = opt_str(SOURCE, info, "Chat", "event.Info") or ""
    message_id = info.get("ID")
    if flag(info, "IsGroup", "event.Info") or jid.is_group(chat):
        return Ignored(IgnoredReason.GROUP, f"wuzapi message {message_id} in {chat}")
    reason = jid.ignored_reason(chat)
    if reason is not None:
        return Ignored(reason, f"wuzapi message {message_id} in {chat}")
    message = event.get("Message")
    if flag(event, "IsEdit", "event") or (isinstance(message, dict) and "protocolMessage" in message):
        # Edits and deletes-for-everyone arrive as protocol messages; not applied (yet).
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"wuzapi protocol message (edit/revoke) {message_id}")
    return None


def inbound_message(postmap: JsonObject) -> NormalisedEvent:
    """A `Message` postmap as an InboundMessage, or Ignored for groups, broadcasts, edits and deletes."""
    event = req_object(SOURCE, postmap, "event", "body")
    info = req_object(SOURCE, event, "Info", "event")
    message_id = req_str(SOURCE, info, "ID", "event.Info")
    skipped = _skip_reason(info, event)
    if skipped is not None:
        return skipped
    from_me = flag(info, "IsFromMe", "event.Info")
    person = _person(info, from_me)
    if person is None:
        raise fail(SOURCE, f"event.Info names no phone number or LID for message {message_id}")
    message = opt_object(SOURCE, event, "Message", "event") or {}
    content, kind = _content(message, _downloaded(postmap))
    return InboundMessage(
        provider_message_id=message_id,
        phone=person.phone,
        type=content.type,
        timestamp=rfc3339(SOURCE, info, "Timestamp", "event.Info"),
        # On our own messages PushName is the business's name, not the contact's.
        contact_name=None if from_me else (opt_str(SOURCE, info, "PushName", "event.Info") or None),
        text=content.text,
        media=content.media,
        quoted_message_id=_quoted_id(message, kind),
        button_payload=content.button_payload,
        from_me=from_me,
        user_id=person.lid,
        extra=content.extra,
        referral=None if from_me else first_ad_referral(content_contexts(message)),
    )
