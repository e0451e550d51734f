"""How a message goes out on WuzAPI: ``POST /chat/send/{text,image,video,audio,document}`` with
Go-struct field names, under an id we choose (so its receipts can settle a send whose answer was
lost), quoting the customer's message when it is a reply."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote, urlsplit

from messaging_whatsapp.providers.outbound import (
    ErrorClass,
    OutboundMedia,
    OutboundMediaType,
    OutboundMessage,
    RecipientKind,
    SendError,
    recipient_kind,
)

# whatsmeow's prefix for ids generated the way WhatsApp Web does ("3EB0" + 18 upper-case hex).
WEB_MESSAGE_ID_PREFIX = "3EB0"
_ID_HEX_CHARS = 18
_USER_SERVER = "s.whatsapp.net"

_MEDIA: dict[OutboundMediaType, tuple[str, str]] = {
    OutboundMediaType.IMAGE: ("/chat/send/image", "Image"),
    OutboundMediaType.VIDEO: ("/chat/send/video", "Video"),
    OutboundMediaType.AUDIO: ("/chat/send/audio", "Audio"),
    OutboundMediaType.DOCUMENT: ("/chat/send/document", "Document"),
}
# Upstream's audio handler has a Caption field but never puts it on the message.
_CAPTIONED = frozenset({OutboundMediaType.IMAGE, OutboundMediaType.VIDEO, OutboundMediaType.DOCUMENT})


def provider_message_id_for(message_id: str) -> str:
    """The WhatsApp message id a message of ours is sent under: "3EB0" + 18 hex of its sha256."""
    digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()
    return WEB_MESSAGE_ID_PREFIX + digest[:_ID_HEX_CHARS].upper()


def recipient_phone(to: str) -> str:
    """The recipient as WuzAPI's Phone: E.164 digits (a leading '+' tolerated), or a LID JID
    (WuzAPI's parseJID takes a full JID as it is)."""
    if recipient_kind(to) is RecipientKind.LID:
        return to.strip()
    digits = to.strip().removeprefix("+")
    if not digits.isdigit():
        raise SendError(ErrorClass.INVALID_RECIPIENT, "invalid_recipient", f"not a phone number: {to!r}")
    return digits


def _content_count(message: OutboundMessage) -> int:
    parts = (message.text, message.media, message.template, message.buttons)
    return sum(part is not None for part in parts)


def _check_sendable(message: OutboundMessage) -> None:
    if message.template is not None:
        raise SendError(
            ErrorClass.FIX_REQUEST, "template_unsupported", "WuzAPI (WhatsApp Web) cannot send templates"
        )
    if _content_count(message) != 1:
        raise SendError(
            ErrorClass.FIX_REQUEST, "invalid_message", "exactly one of text, media or buttons must be set"
        )


def _document_name(media: OutboundMedia) -> str:
    """The file name a document is shown with (upstream requires one)."""
    if media.filename:
        return media.filename
    return unquote(urlsplit(media.url).path.rsplit("/", 1)[-1]) or "document"


def _media_body(media: OutboundMedia) -> tuple[str, dict[str, Any]]:
    path, field = _MEDIA[media.type]
    body: dict[str, Any] = {field: media.url}
    if media.caption and media.type in _CAPTIONED:
        body["Caption"] = media.caption
    if media.type is OutboundMediaType.DOCUMENT:
        body["FileName"] = _document_name(media)
    return path, body


def _content_body(message: OutboundMessage) -> tuple[str, dict[str, Any]]:
    if message.media is not None:
        return _media_body(message.media)
    if message.buttons is not None:
        # WuzAPI's /chat/send/buttons is not rendered by current WhatsApp clients: numbered text.
        return "/chat/send/text", {"Body": message.buttons.as_numbered_text()}
    return "/chat/send/text", {"Body": message.text}


def send_request(message: OutboundMessage) -> tuple[str, dict[str, Any]]:
    """Path and JSON body for a message, its deterministic ``Id`` included."""
    _check_sendable(message)
    phone = recipient_phone(message.to)
    path, content = _content_body(message)
    body: dict[str, Any] = {"Phone": phone, **content, "Id": provider_message_id_for(message.message_id)}
    if message.reply_to:
        # The quoted message is taken to be the customer's (the usual case: answering them).
        participant = phone if "@" in phone else f"{phone}@{_USER_SERVER}"
        body["ContextInfo"] = {"StanzaId": message.reply_to, "Participant": participant}
    return path, body
