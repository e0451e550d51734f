"""WuzAPI webhooks (asternic/wuzapi, whatsmeow): detect, route, verify, parse.

Every POST carries one event as a "postmap" ``{"type": "Message", "event": {...}, ...extras}``
(tests/fixtures/FORMATS.md section 4), delivered in one of two modes:

* JSON (``WEBHOOK_FORMAT=json``, newer builds): the body is the postmap plus ``instanceName`` and
  ``userID``.
* Form (the default): ``application/x-www-form-urlencoded`` with ``jsonData`` = the postmap as a JSON
  string, next to form fields ``instanceName`` and ``userID`` (newer) or ``token`` (older builds).

``event`` is whatsmeow's event struct marshalled by Go's encoding/json: Go field names (``Info.ID``)
and, inside ``Message``, the WhatsApp protobuf field names (``imageMessage.URL``, ``stanzaID``).
Every read goes through the typed accessors of providers/payload.py, which raise PayloadError naming the path.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

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
    StatusUpdate,
)
from messaging_whatsapp.providers.payload import (
    JsonObject,
    as_list,
    as_object,
    body_object,
    fail,
    json_or_none,
    json_str,
    load_object,
    opt_bool,
    opt_number,
    opt_object,
    opt_str,
    req_object,
    req_str,
    rfc3339,
    secret_matches,
)

_SOURCE = "WuzAPI"

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_SIGNATURE_HEADER = "x-hmac-signature"
# Form fields that travel next to jsonData rather than inside it.
_FORM_ROUTING_FIELDS = ("instanceName", "userID", "token")

# Root "state" of a ReadReceipt, and the receipt Type it is derived from (for builds without it).
_RECEIPT_STATES: dict[str, DeliveryStatus] = {
    "Delivered": DeliveryStatus.DELIVERED,
    "Read": DeliveryStatus.READ,
}
_STATE_BY_RECEIPT_TYPE = {"": "Delivered", "read": "Read", "read-self": "ReadSelf"}

# Lifecycle events → the session state and why. Disconnected is a dropped socket that whatsmeow
# retries by itself; the reason lets the domain tell it from a logout, which needs a new QR.
_LIFECYCLE: dict[str, ConnectionUpdate] = {
    "Connected": ConnectionUpdate(ConnectionState.OPEN),
    "Disconnected": ConnectionUpdate(ConnectionState.CLOSE, reason="disconnected"),
    "LoggedOut": ConnectionUpdate(ConnectionState.CLOSE, reason="logged_out"),
    "TemporaryBan": ConnectionUpdate(ConnectionState.CLOSE, reason="temporary_ban"),
}


# --------------------------------------------------------------------------------------------------
# WuzAPI-specific readers (the generic typed accessors live in providers/payload.py).


def _flag(parent: JsonObject, key: str, path: str) -> bool:
    """A Go bool: absent or null reads as false, its zero value."""
    return opt_bool(_SOURCE, parent, key, path) is True


# --------------------------------------------------------------------------------------------------
# Decoding both delivery modes into the postmap


def _is_form(request: WebhookRequest) -> bool:
    if request.content_type:
        return request.content_type == FORM_CONTENT_TYPE
    # No content type: a JSON body starts with "{", a form body with a field name.
    return not request.body.lstrip().startswith(b"{")


def _form_fields(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(_SOURCE, "form body is not UTF-8") from exc
    # The first value wins when a field repeats; WuzAPI never repeats one.
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _postmap(request: WebhookRequest) -> JsonObject:
    """The event object, whichever mode delivered it, with the routing fields at its root."""
    if not _is_form(request):
        return body_object(_SOURCE, request)
    fields = _form_fields(request.body)
    if "jsonData" not in fields:
        raise fail(_SOURCE, "form body has no jsonData field")
    postmap = load_object(_SOURCE, fields["jsonData"], "jsonData")
    postmap.update({name: fields[name] for name in _FORM_ROUTING_FIELDS if name in fields})
    return postmap


def _looks_like_postmap(payload: object) -> bool:
    if not isinstance(payload, dict):
        return False
    kind = payload.get("type")
    # "simulator" is our simulator's marker; excluding it keeps detection exclusive.
    return (
        isinstance(kind, str)
        and bool(kind)
        and "event" in payload
        and ("userID" in payload or "instanceName" in payload)
        and "simulator" not in payload
    )


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
        raise fail(_SOURCE, f"{path} must be a string, got {type(body).__name__}")
    return _Content(MessageType.TEXT, text=body)


def _content_extended_text(body: object, root: _Downloaded, path: str) -> _Content:
    return _Content(MessageType.TEXT, text=opt_str(_SOURCE, as_object(_SOURCE, body, path), "text", path))


_MEDIA_TYPES = {
    "imageMessage": MessageType.IMAGE,
    "videoMessage": MessageType.VIDEO,
    "audioMessage": MessageType.AUDIO,
    "documentMessage": MessageType.DOCUMENT,
    "stickerMessage": MessageType.STICKER,
}


def _media_content(kind: str) -> Callable[[object, _Downloaded, str], _Content]:
    def parse(body: object, root: _Downloaded, path: str) -> _Content:
        media = as_object(_SOURCE, body, path)
        content = _Content(
            _MEDIA_TYPES[kind],
            # The caption lives on the media only (text stays None), as for every provider.
            media=Media(
                url=opt_str(_SOURCE, media, "URL", path),
                mime_type=opt_str(_SOURCE, media, "mimetype", path) or root.mime_type,
                caption=opt_str(_SOURCE, media, "caption", path),
                filename=opt_str(_SOURCE, media, "fileName", path) or root.filename,
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
    location = as_object(_SOURCE, body, path)
    content = _Content(MessageType.LOCATION)
    content.extra["latitude"] = opt_number(_SOURCE, location, "degreesLatitude", path)
    content.extra["longitude"] = opt_number(_SOURCE, location, "degreesLongitude", path)
    for key, name in (("name", "name"), ("address", "address"), ("URL", "url")):
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


def _content_contact(body: object, root: _Downloaded, path: str) -> _Content:
    return _Content(MessageType.CONTACTS, extra={"contacts": [_card(body, path)]})


def _content_contacts_array(body: object, root: _Downloaded, path: str) -> _Content:
    contacts = as_list(_SOURCE, as_object(_SOURCE, body, path).get("contacts") or [], f"{path}.contacts")
    cards = [_card(item, f"{path}.contacts[{i}]") for i, item in enumerate(contacts)]
    return _Content(MessageType.CONTACTS, extra={"contacts": cards})


def _content_reaction(body: object, root: _Downloaded, path: str) -> _Content:
    reaction = as_object(_SOURCE, body, path)
    key = opt_object(_SOURCE, reaction, "key", path) or {}
    content = _Content(MessageType.REACTION)
    # An empty emoji means the reaction was removed; text None says exactly that.
    content.text = opt_str(_SOURCE, reaction, "text", path) or None
    content.extra["message_id"] = opt_str(_SOURCE, key, "ID", f"{path}.key")
    return content


def _content_buttons_response(body: object, root: _Downloaded, path: str) -> _Content:
    reply = as_object(_SOURCE, body, path)
    # The display text is a protobuf oneof, which encoding/json nests as Response.SelectedDisplayText.
    response = opt_object(_SOURCE, reply, "Response", path) or {}
    return _Content(
        MessageType.BUTTON,
        text=opt_str(_SOURCE, response, "SelectedDisplayText", f"{path}.Response"),
        button_payload=opt_str(_SOURCE, reply, "selectedButtonID", path),
    )


def _content_template_reply(body: object, root: _Downloaded, path: str) -> _Content:
    # A template quick-reply button, like Meta's "button" type.
    reply = as_object(_SOURCE, body, path)
    return _Content(
        MessageType.BUTTON,
        text=opt_str(_SOURCE, reply, "selectedDisplayText", path),
        button_payload=opt_str(_SOURCE, reply, "selectedID", path),
    )


def _content_list_response(body: object, root: _Downloaded, path: str) -> _Content:
    reply = as_object(_SOURCE, body, path)
    selected = opt_object(_SOURCE, reply, "singleSelectReply", path) or {}
    content = _Content(MessageType.INTERACTIVE, extra={"interactive_type": "list_reply"})
    content.text = opt_str(_SOURCE, reply, "title", path)
    content.button_payload = opt_str(_SOURCE, selected, "selectedRowID", f"{path}.singleSelectReply")
    return content


def _content_interactive_response(body: object, root: _Downloaded, path: str) -> _Content:
    reply = as_object(_SOURCE, body, path)
    content = _Content(MessageType.INTERACTIVE, extra={"interactive_type": "native_flow"})
    text_body = opt_object(_SOURCE, reply, "body", path)
    content.text = None if text_body is None else opt_str(_SOURCE, text_body, "text", f"{path}.body")
    # Another oneof: InteractiveResponseMessage.NativeFlowResponseMessage.paramsJSON.
    wrapper = opt_object(_SOURCE, reply, "InteractiveResponseMessage", path) or {}
    flow = (
        opt_object(_SOURCE, wrapper, "NativeFlowResponseMessage", f"{path}.InteractiveResponseMessage") or {}
    )
    params = opt_str(
        _SOURCE, flow, "paramsJSON", f"{path}.InteractiveResponseMessage.NativeFlowResponseMessage"
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
        mime_type=opt_str(_SOURCE, postmap, "mimeType", "body"),
        filename=opt_str(_SOURCE, postmap, "fileName", "body"),
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
    return opt_str(_SOURCE, context, "stanzaID", f"event.Message.{kind}.contextInfo") or None


# --------------------------------------------------------------------------------------------------
# Message, ReadReceipt


def _person(info: JsonObject, from_me: bool) -> jid.Person | None:
    """The customer of a 1:1 chat: the chat on our own messages, else the sender (or the chat)."""
    where = "event.Info"
    chat = opt_str(_SOURCE, info, "Chat", where)
    if from_me:
        # Sender is our own number here; the chat (or its alternate address) is the customer.
        return jid.resolve_person(chat, opt_str(_SOURCE, info, "RecipientAlt", where))
    person = jid.resolve_person(
        opt_str(_SOURCE, info, "Sender", where), opt_str(_SOURCE, info, "SenderAlt", where)
    )
    return person or jid.resolve_person(chat, opt_str(_SOURCE, info, "Sender", where))


def _skip_reason(info: JsonObject, event: JsonObject) -> Ignored | None:
    chat = opt_str(_SOURCE, info, "Chat", "event.Info") or ""
    message_id = info.get("ID")
    if _flag(info, "IsGroup", "event.Info") or jid.is_group(chat):
        return Ignored(IgnoredReason.GROUP, f"wuzapi message {message_id} in {chat}")
    reason = jid.ignored_reason(chat)
    if reason is not None:
        return Ignored(reason, f"wuzapi message {message_id} in {chat}")
    message = event.get("Message")
    if _flag(event, "IsEdit", "event") or (isinstance(message, dict) and "protocolMessage" in message):
        # Edits and deletes-for-everyone arrive as protocol messages; not applied (yet).
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"wuzapi protocol message (edit/revoke) {message_id}")
    return None


def _message(postmap: JsonObject) -> NormalisedEvent:
    event = req_object(_SOURCE, postmap, "event", "body")
    info = req_object(_SOURCE, event, "Info", "event")
    message_id = req_str(_SOURCE, info, "ID", "event.Info")
    skipped = _skip_reason(info, event)
    if skipped is not None:
        return skipped
    from_me = _flag(info, "IsFromMe", "event.Info")
    person = _person(info, from_me)
    if person is None:
        raise fail(_SOURCE, f"event.Info names no phone number for message {message_id}")
    message = opt_object(_SOURCE, event, "Message", "event") or {}
    content, kind = _content(message, _downloaded(postmap))
    return InboundMessage(
        provider_message_id=message_id,
        phone=person.phone,
        type=content.type,
        timestamp=rfc3339(_SOURCE, info, "Timestamp", "event.Info"),
        # On our own messages PushName is the business's name, not the contact's.
        contact_name=None if from_me else (opt_str(_SOURCE, info, "PushName", "event.Info") or None),
        text=content.text,
        media=content.media,
        quoted_message_id=_quoted_id(message, kind),
        button_payload=content.button_payload,
        from_me=from_me,
        user_id=person.lid,
        extra=content.extra,
    )


def _message_ids(event: JsonObject) -> list[str]:
    raw = event.get("MessageIDs")
    if not isinstance(raw, list):
        raise fail(_SOURCE, f"event.MessageIDs must be a list, got {type(raw).__name__}")
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item:
            raise fail(_SOURCE, f"event.MessageIDs[{i}] must be a non-empty string, got {item!r}")
    return raw


def _receipt_state(postmap: JsonObject, event: JsonObject) -> str:
    state = opt_str(_SOURCE, postmap, "state", "body")
    if state:
        return state
    # Builds without the root "state": derive it from the receipt type as WuzAPI does.
    receipt_type = opt_str(_SOURCE, event, "Type", "event") or ""
    return _STATE_BY_RECEIPT_TYPE.get(receipt_type, receipt_type)


def _receipt(postmap: JsonObject) -> list[NormalisedEvent]:
    event = req_object(_SOURCE, postmap, "event", "body")
    ids = _message_ids(event)
    state = _receipt_state(postmap, event)
    if state == "ReadSelf":
        # We read *their* message on another device of ours.
        return [Ignored(IgnoredReason.SELF_RECEIPT, f"wuzapi ReadSelf for {len(ids)} message(s)")]
    status = _RECEIPT_STATES.get(state)
    if status is None:
        return [Ignored(IgnoredReason.UNHANDLED_EVENT, f"wuzapi receipt state {state!r}")]
    chat = opt_str(_SOURCE, event, "Chat", "event") or ""
    if _flag(event, "IsGroup", "event") or jid.is_group(chat):
        return [Ignored(IgnoredReason.GROUP, f"wuzapi receipt in {chat}")]
    if not ids:
        return [Ignored(IgnoredReason.UNHANDLED_EVENT, "wuzapi receipt without message ids")]
    person = jid.resolve_person(chat, opt_str(_SOURCE, event, "SenderAlt", "event"))
    timestamp = rfc3339(_SOURCE, event, "Timestamp", "event")
    recipient = person.phone if person else None
    return [StatusUpdate(message_id, status, timestamp, recipient=recipient) for message_id in ids]


def _parse_postmap(postmap: JsonObject) -> list[NormalisedEvent]:
    kind = req_str(_SOURCE, postmap, "type", "body")
    if kind == "Message":
        return [_message(postmap)]
    if kind == "ReadReceipt":
        return _receipt(postmap)
    if kind in _LIFECYCLE:
        return [_LIFECYCLE[kind]]
    # QR, Presence, ChatPresence, HistorySync, PairSuccess, ConnectFailure, CallOffer, ...
    return [Ignored(IgnoredReason.UNHANDLED_EVENT, f"wuzapi {kind}")]


# --------------------------------------------------------------------------------------------------


class WuzapiProvider:
    """WebhookProvider for WuzAPI, in both its JSON and its form delivery modes."""

    name: ProviderName = ProviderName.WUZAPI

    def detect(self, request: WebhookRequest) -> bool:
        """True for a JSON postmap (``type``, ``event``, ``userID``/``instanceName``) or a jsonData form."""
        body = request.body.lstrip()
        if body.startswith(b"{"):
            if b'"type"' not in body:
                return False
            return _looks_like_postmap(json_or_none(body))
        if b"jsonData=" not in body:
            return False
        try:
            return "jsonData" in _form_fields(body)
        except PayloadError:
            return False

    def routing_key(self, request: WebhookRequest) -> str | None:
        """``instanceName`` (the WuzAPI user name) if present, else ``userID``, else ``token``.

        instanceName is what an instance is bound by; userID is the WuzAPI user's id, sent by builds
        that predate instanceName; token (the user's API token) is all the oldest form builds send.
        """
        postmap = _postmap(request)
        for name in ("instanceName", "userID", "token"):
            value = opt_str(_SOURCE, postmap, name, "body")
            if value:
                return value
        return None

    def verify(self, request: WebhookRequest, secrets: InstanceSecrets) -> bool:
        """``x-hmac-signature`` when the instance has an HMAC key, else the webhook secret.

        With a key, the header must be the hex HMAC-SHA256 of the raw body (JSON bytes, or the
        url-encoded form string). Without one (older builds sign nothing), the webhook secret must be
        in the URL path or in ``x-webhook-secret``.
        """
        if secrets.hmac_key:
            received = request.headers.get(_SIGNATURE_HEADER, "").strip().lower()
            digest = hmac.new(secrets.hmac_key.encode("utf-8"), request.body, hashlib.sha256).hexdigest()
            return bool(received) and hmac.compare_digest(digest.encode("ascii"), received.encode("utf-8"))
        # Evaluate both checks (no short-circuit) so timing does not reveal which one matched.
        checks = [
            secret_matches(request.path_secret, secrets.webhook_secret),
            secret_matches(request.headers.get(WEBHOOK_SECRET_HEADER), secrets.webhook_secret),
        ]
        return any(checks)

    def parse(self, request: WebhookRequest) -> list[NormalisedEvent]:
        """The POST's event: a message, one status per receipted id, a connection change, or Ignored."""
        postmap = _postmap(request)
        try:
            return _parse_postmap(postmap)
        except PayloadError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # Belt and braces: the accessors above already raise PayloadError with a path.
            raise fail(_SOURCE, f"unusable ({type(exc).__name__}: {exc})") from exc


wuzapi_provider = WuzapiProvider()
