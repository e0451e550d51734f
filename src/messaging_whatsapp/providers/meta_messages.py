"""Meta's `messages[]`: each inbound message as an InboundMessage, whatever its type (text, media,
location, contacts, reactions, button and list replies), with its sender and ad referral.

Read defensively like the rest of the payload (providers/meta.py): anything unusable raises
PayloadError naming its path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from messaging_whatsapp.providers.events import InboundMessage, Media, MessageType, Referral
from messaging_whatsapp.providers.payload import (
    JsonObject,
    as_object,
    fail,
    from_seconds,
    integer,
    opt_list,
    opt_number,
    opt_object,
    opt_str,
    req_str,
)

SOURCE = "Meta"

_MEDIA_TYPES: dict[str, MessageType] = {
    "image": MessageType.IMAGE,
    "video": MessageType.VIDEO,
    "sticker": MessageType.STICKER,
    "audio": MessageType.AUDIO,
    "document": MessageType.DOCUMENT,
}


def timestamp(parent: JsonObject, key: str, path: str) -> datetime:
    """A Meta timestamp field (unix seconds) as a datetime."""
    value = parent.get(key)
    # Meta sends strings of unix seconds; accept a bare integer too, never a bool or float string.
    seconds = integer(value)
    if seconds is None:
        raise fail(SOURCE, f"{path}.{key} must be unix seconds, got {value!r}")
    return from_seconds(SOURCE, seconds, f"{path}.{key}")


def _referral(message: JsonObject, path: str) -> Referral | None:
    raw = opt_object(SOURCE, message, "referral", path)
    if raw is None:
        return None
    where = f"{path}.referral"
    return Referral(
        source_url=opt_str(SOURCE, raw, "source_url", where),
        source_id=opt_str(SOURCE, raw, "source_id", where),
        source_type=opt_str(SOURCE, raw, "source_type", where),
        headline=opt_str(SOURCE, raw, "headline", where),
        click_id=opt_str(SOURCE, raw, "ctwa_clid", where),
    )


def _find_contact(contacts: list[JsonObject], phone: str | None, user_id: str | None) -> JsonObject | None:
    for contact in contacts:
        if phone and contact.get("wa_id") == phone:
            return contact
        if user_id and contact.get("user_id") == user_id:
            return contact
    return None


def _contact_name(contact: JsonObject | None, path: str) -> str | None:
    if contact is None:
        return None
    profile = opt_object(SOURCE, contact, "profile", path)
    return None if profile is None else opt_str(SOURCE, profile, "name", f"{path}.profile")


@dataclass(slots=True)
class _Content:
    """The type-specific part of an inbound message, filled by one of the _content_* functions."""

    type: MessageType
    text: str | None = None
    media: Media | None = None
    button_payload: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _content_text(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.TEXT)
    content.text = opt_str(SOURCE, body, "body", path)
    return content


def _content_media(meta_type: str, body: JsonObject, path: str) -> _Content:
    content = _Content(_MEDIA_TYPES[meta_type])
    # The caption lives on the media only (text stays None) so text means "typed text" everywhere.
    content.media = Media(
        id=opt_str(SOURCE, body, "id", path),
        url=opt_str(SOURCE, body, "url", path),
        mime_type=opt_str(SOURCE, body, "mime_type", path),
        caption=opt_str(SOURCE, body, "caption", path),
        filename=opt_str(SOURCE, body, "filename", path),
    )
    for flag in ("voice", "animated"):
        if isinstance(body.get(flag), bool):
            content.extra[flag] = body[flag]
    sha256 = opt_str(SOURCE, body, "sha256", path)
    if sha256:
        content.extra["sha256"] = sha256
    return content


def _content_location(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.LOCATION)
    content.extra["latitude"] = opt_number(SOURCE, body, "latitude", path)
    content.extra["longitude"] = opt_number(SOURCE, body, "longitude", path)
    for key in ("name", "address", "url"):
        value = opt_str(SOURCE, body, key, path)
        if value is not None:
            content.extra[key] = value
    return content


def _content_interactive(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.INTERACTIVE)
    kind = opt_str(SOURCE, body, "type", path) or ""
    content.extra["interactive_type"] = kind
    reply = opt_object(SOURCE, body, kind, path) if kind else None
    if reply is None:
        return content
    where = f"{path}.{kind}"
    if kind in ("button_reply", "list_reply"):
        content.button_payload = opt_str(SOURCE, reply, "id", where)
        content.text = opt_str(SOURCE, reply, "title", where)
        description = opt_str(SOURCE, reply, "description", where)
        if description is not None:
            content.extra["description"] = description
    else:
        # nfm_reply (Flows) and future kinds: keep the raw reply for the domain to interpret.
        content.text = opt_str(SOURCE, reply, "body", where)
        content.extra[kind] = reply
    return content


def _content_button(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.BUTTON)
    content.button_payload = opt_str(SOURCE, body, "payload", path)
    content.text = opt_str(SOURCE, body, "text", path)
    return content


def _content_reaction(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.REACTION)
    # An absent or empty emoji means the reaction was removed; text None says exactly that.
    content.text = opt_str(SOURCE, body, "emoji", path) or None
    content.extra["message_id"] = opt_str(SOURCE, body, "message_id", path)
    return content


def _content_contacts(body: list[Any], path: str) -> _Content:
    content = _Content(MessageType.CONTACTS)
    content.extra["contacts"] = [as_object(SOURCE, item, f"{path}[{i}]") for i, item in enumerate(body)]
    return content


_OBJECT_CONTENT: dict[str, Callable[[JsonObject, str], _Content]] = {
    "text": _content_text,
    "location": _content_location,
    "interactive": _content_interactive,
    "button": _content_button,
    "reaction": _content_reaction,
}


def _content(message: JsonObject, meta_type: str, path: str) -> _Content:
    where = f"{path}.{meta_type}"
    if meta_type == "contacts":
        return _content_contacts(opt_list(SOURCE, message, "contacts", path), where)
    if meta_type in _MEDIA_TYPES:
        return _content_media(meta_type, opt_object(SOURCE, message, meta_type, path) or {}, where)
    if meta_type in _OBJECT_CONTENT:
        return _OBJECT_CONTENT[meta_type](opt_object(SOURCE, message, meta_type, path) or {}, where)
    # unsupported, order, system, revoke, edit, and whatever Meta adds next: keep the raw body.
    content = _Content(MessageType.UNKNOWN)
    content.extra["meta_type"] = meta_type
    if meta_type in message:
        content.extra[meta_type] = message[meta_type]
    return content


def _message_extra(message: JsonObject, content: _Content, path: str) -> dict[str, Any]:
    extra = dict(content.extra)
    errors = opt_list(SOURCE, message, "errors", path)
    if errors:
        extra["errors"] = errors
    context = opt_object(SOURCE, message, "context", path)
    if context is not None:
        for flag in ("forwarded", "frequently_forwarded"):
            if context.get(flag) is True:
                extra[flag] = True
    return extra


def inbound_message(message: JsonObject, contacts: list[JsonObject], path: str) -> InboundMessage:
    """One element of `messages[]` as an InboundMessage (`contacts` is the value's `contacts[]`)."""
    message_id = req_str(SOURCE, message, "id", path)
    # With usernames (BSUID) Meta may omit the phone; the user id then identifies the person.
    phone = (opt_str(SOURCE, message, "from", path) or "").lstrip("+") or None
    user_id = opt_str(SOURCE, message, "from_user_id", path) or None
    contact = _find_contact(contacts, phone, user_id)
    if user_id is None and contact is not None:
        user_id = opt_str(SOURCE, contact, "user_id", f"{path}.contact") or None
    if not phone and not user_id:
        raise fail(SOURCE, f"{path} has neither from nor from_user_id")
    content = _content(message, req_str(SOURCE, message, "type", path), path)
    context = opt_object(SOURCE, message, "context", path)
    return InboundMessage(
        provider_message_id=message_id,
        phone=phone,
        type=content.type,
        timestamp=timestamp(message, "timestamp", path),
        contact_name=_contact_name(contact, f"{path}.contact"),
        text=content.text,
        media=content.media,
        quoted_message_id=None if context is None else opt_str(SOURCE, context, "id", f"{path}.context"),
        button_payload=content.button_payload,
        referral=_referral(message, path),
        user_id=user_id,
        extra=_message_extra(message, content, path),
    )
