"""Meta WhatsApp Cloud API webhooks: detection, routing, signature check and parsing.

The payload is read defensively: every field is type-checked on access and anything unusable raises
PayloadError naming the path (``entry[0].changes[1].value.messages[2].id``), so a malformed body never
escapes as KeyError/TypeError.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from messaging_whatsapp.providers.base import (
    DeliveryStatus,
    Ignored,
    IgnoredReason,
    InboundMessage,
    InstanceSecrets,
    Media,
    MessageType,
    NormalisedEvent,
    PayloadError,
    ProviderName,
    Referral,
    StatusError,
    StatusUpdate,
    WebhookRequest,
)

JsonObject = dict[str, Any]

_OBJECT_MARKER = b'"whatsapp_business_account"'
_SIGNATURE_HEADER = "x-hub-signature-256"
_SIGNATURE_PREFIX = "sha256="

_STATUS_MAP: dict[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    # A voice note being played is the strongest proof of reading.
    "played": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}

_MEDIA_TYPES: dict[str, MessageType] = {
    "image": MessageType.IMAGE,
    "video": MessageType.VIDEO,
    "sticker": MessageType.STICKER,
    "audio": MessageType.AUDIO,
    "document": MessageType.DOCUMENT,
}

# Policy from tests/fixtures/common_model_mapping.json (error_classes.meta), FORMATS.md section 2.7.
ERROR_CLASSES: dict[str, str] = {
    **dict.fromkeys(["130429", "131000", "131016", "133004", "1", "2", "131057", "4", "80007"], "retry"),
    "131056": "retry_later_same_recipient",
    **dict.fromkeys(["131047", "470"], "needs_template"),
    "131026": "invalid_recipient",
    **dict.fromkeys(["131049", "130472"], "defer"),
    "131050": "opt_out",
    **dict.fromkeys(
        ["131048", "131031", "368", "131042", "131045", "133010", "190", "0", "3", "10", "200"],
        "pause_channel",
    ),
    **dict.fromkeys(
        [
            "131021", "131030", "131051", "131052", "131053", "131008", "131009", "100",
            "132000", "132001", "132005", "132007", "132012", "132015", "132016",
        ],
        "fix_request",
    ),
}  # fmt: skip

# Unknown codes are treated as "fix_request": retrying something we do not understand can loop or spam
# the customer, while fix_request stops this payload and alerts a developer, who can add the code.
UNKNOWN_ERROR_CLASS = "fix_request"
TRANSIENT_ERROR_CLASSES = frozenset({"retry", "retry_later_same_recipient"})


def classify_error(code: str) -> str:
    """Map a Meta error code to this project's error class (unknown codes → "fix_request")."""
    return ERROR_CLASSES.get(code.strip(), UNKNOWN_ERROR_CLASS)


# --------------------------------------------------------------------------------------------------
# Typed accessors: every read of the untrusted payload goes through these.


def _as_object(value: object, path: str) -> JsonObject:
    if not isinstance(value, dict):
        raise PayloadError(f"Meta payload: {path} must be an object, got {type(value).__name__}")
    return value


def _as_list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadError(f"Meta payload: {path} must be a list, got {type(value).__name__}")
    return value


def _opt_object(parent: JsonObject, key: str, path: str) -> JsonObject | None:
    value = parent.get(key)
    return None if value is None else _as_object(value, f"{path}.{key}")


def _opt_list(parent: JsonObject, key: str, path: str) -> list[Any]:
    value = parent.get(key)
    return [] if value is None else _as_list(value, f"{path}.{key}")


def _opt_str(parent: JsonObject, key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"Meta payload: {path}.{key} must be a string, got {type(value).__name__}")
    return value


def _req_str(parent: JsonObject, key: str, path: str) -> str:
    value = _opt_str(parent, key, path)
    if not value:
        raise PayloadError(f"Meta payload: {path}.{key} is missing or empty")
    return value


def _opt_number(parent: JsonObject, key: str, path: str) -> float | None:
    value = parent.get(key)
    if value is None:
        return None
    # bool is an int subclass; a boolean coordinate is a malformed payload, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"Meta payload: {path}.{key} must be a number, got {type(value).__name__}")
    return float(value)


def _timestamp(parent: JsonObject, key: str, path: str) -> datetime:
    value = parent.get(key)
    # Meta sends strings of unix seconds; accept a bare integer too, never a bool or float string.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        raise PayloadError(f"Meta payload: {path}.{key} must be unix seconds, got {value!r}")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"Meta payload: {path}.{key} is out of range: {value!r}") from exc


def _error_code(error: JsonObject, path: str) -> str:
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, int | str) or code == "":
        raise PayloadError(f"Meta payload: {path}.code must be an integer code, got {code!r}")
    return str(code)


def _load(body: bytes) -> JsonObject:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise PayloadError(f"Meta payload: body is not valid JSON ({exc})") from exc
    return _as_object(payload, "body")


def _changes(payload: JsonObject) -> list[tuple[str, JsonObject]]:
    """Every (path, change) of every entry, in order, with the envelope shape checked."""
    found: list[tuple[str, JsonObject]] = []
    if "entry" not in payload:
        raise PayloadError("Meta payload: entry is missing")
    for i, raw_entry in enumerate(_as_list(payload["entry"], "entry")):
        entry = _as_object(raw_entry, f"entry[{i}]")
        for j, raw_change in enumerate(_opt_list(entry, "changes", f"entry[{i}]")):
            path = f"entry[{i}].changes[{j}]"
            found.append((path, _as_object(raw_change, path)))
    return found


# --------------------------------------------------------------------------------------------------
# messages[]


def _referral(message: JsonObject, path: str) -> Referral | None:
    raw = _opt_object(message, "referral", path)
    if raw is None:
        return None
    where = f"{path}.referral"
    return Referral(
        source_url=_opt_str(raw, "source_url", where),
        source_id=_opt_str(raw, "source_id", where),
        source_type=_opt_str(raw, "source_type", where),
        headline=_opt_str(raw, "headline", where),
        click_id=_opt_str(raw, "ctwa_clid", where),
    )


def _find_contact(contacts: list[JsonObject], phone: str, user_id: str | None) -> JsonObject | None:
    for contact in contacts:
        if phone and contact.get("wa_id") == phone:
            return contact
        if user_id and contact.get("user_id") == user_id:
            return contact
    return None


def _contact_name(contact: JsonObject | None, path: str) -> str | None:
    if contact is None:
        return None
    profile = _opt_object(contact, "profile", path)
    return None if profile is None else _opt_str(profile, "name", f"{path}.profile")


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
    content.text = _opt_str(body, "body", path)
    return content


def _content_media(meta_type: str, body: JsonObject, path: str) -> _Content:
    content = _Content(_MEDIA_TYPES[meta_type])
    # The caption lives on the media only (text stays None) so text means "typed text" everywhere.
    content.media = Media(
        id=_opt_str(body, "id", path),
        url=_opt_str(body, "url", path),
        mime_type=_opt_str(body, "mime_type", path),
        caption=_opt_str(body, "caption", path),
        filename=_opt_str(body, "filename", path),
    )
    for flag in ("voice", "animated"):
        if isinstance(body.get(flag), bool):
            content.extra[flag] = body[flag]
    sha256 = _opt_str(body, "sha256", path)
    if sha256:
        content.extra["sha256"] = sha256
    return content


def _content_location(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.LOCATION)
    content.extra["latitude"] = _opt_number(body, "latitude", path)
    content.extra["longitude"] = _opt_number(body, "longitude", path)
    for key in ("name", "address", "url"):
        value = _opt_str(body, key, path)
        if value is not None:
            content.extra[key] = value
    return content


def _content_interactive(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.INTERACTIVE)
    kind = _opt_str(body, "type", path) or ""
    content.extra["interactive_type"] = kind
    reply = _opt_object(body, kind, path) if kind else None
    if reply is None:
        return content
    where = f"{path}.{kind}"
    if kind in ("button_reply", "list_reply"):
        content.button_payload = _opt_str(reply, "id", where)
        content.text = _opt_str(reply, "title", where)
        description = _opt_str(reply, "description", where)
        if description is not None:
            content.extra["description"] = description
    else:
        # nfm_reply (Flows) and future kinds: keep the raw reply for the domain to interpret.
        content.text = _opt_str(reply, "body", where)
        content.extra[kind] = reply
    return content


def _content_button(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.BUTTON)
    content.button_payload = _opt_str(body, "payload", path)
    content.text = _opt_str(body, "text", path)
    return content


def _content_reaction(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.REACTION)
    # An absent or empty emoji means the reaction was removed; text None says exactly that.
    content.text = _opt_str(body, "emoji", path) or None
    content.extra["message_id"] = _opt_str(body, "message_id", path)
    return content


def _content_contacts(body: list[Any], path: str) -> _Content:
    content = _Content(MessageType.CONTACTS)
    content.extra["contacts"] = [_as_object(item, f"{path}[{i}]") for i, item in enumerate(body)]
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
        return _content_contacts(_opt_list(message, "contacts", path), where)
    if meta_type in _MEDIA_TYPES:
        return _content_media(meta_type, _opt_object(message, meta_type, path) or {}, where)
    if meta_type in _OBJECT_CONTENT:
        return _OBJECT_CONTENT[meta_type](_opt_object(message, meta_type, path) or {}, where)
    # unsupported, order, system, revoke, edit, and whatever Meta adds next: keep the raw body.
    content = _Content(MessageType.UNKNOWN)
    content.extra["meta_type"] = meta_type
    if meta_type in message:
        content.extra[meta_type] = message[meta_type]
    return content


def _message_extra(message: JsonObject, content: _Content, path: str) -> dict[str, Any]:
    extra = dict(content.extra)
    errors = _opt_list(message, "errors", path)
    if errors:
        extra["errors"] = errors
    context = _opt_object(message, "context", path)
    if context is not None:
        for flag in ("forwarded", "frequently_forwarded"):
            if context.get(flag) is True:
                extra[flag] = True
    return extra


def _inbound(message: JsonObject, contacts: list[JsonObject], path: str) -> InboundMessage:
    message_id = _req_str(message, "id", path)
    # With usernames (BSUID) Meta may omit the phone; the user id then identifies the person.
    phone = (_opt_str(message, "from", path) or "").lstrip("+")
    user_id = _opt_str(message, "from_user_id", path)
    contact = _find_contact(contacts, phone, user_id)
    if user_id is None and contact is not None:
        user_id = _opt_str(contact, "user_id", f"{path}.contact")
    if not phone and not user_id:
        raise PayloadError(f"Meta payload: {path} has neither from nor from_user_id")
    content = _content(message, _req_str(message, "type", path), path)
    context = _opt_object(message, "context", path)
    return InboundMessage(
        provider_message_id=message_id,
        phone=phone,
        type=content.type,
        timestamp=_timestamp(message, "timestamp", path),
        contact_name=_contact_name(contact, f"{path}.contact"),
        text=content.text,
        media=content.media,
        quoted_message_id=None if context is None else _opt_str(context, "id", f"{path}.context"),
        button_payload=content.button_payload,
        referral=_referral(message, path),
        user_id=user_id,
        extra=_message_extra(message, content, path),
    )


# --------------------------------------------------------------------------------------------------
# statuses[] and value.errors[]


def _status_error(status: JsonObject, path: str) -> StatusError:
    errors = _opt_list(status, "errors", path)
    if not errors:
        # Failed without a reason: keep it permanent (unknown → fix_request) rather than retry blindly.
        return StatusError(code="", title="failed", permanent=True)
    where = f"{path}.errors[0]"
    first = _as_object(errors[0], where)
    code = _error_code(first, where)
    title = _opt_str(first, "title", where) or _opt_str(first, "message", where) or ""
    return StatusError(code=code, title=title, permanent=classify_error(code) not in TRANSIENT_ERROR_CLASSES)


def _status(status: JsonObject, path: str) -> StatusUpdate | Ignored:
    message_id = _req_str(status, "id", path)
    raw_status = _req_str(status, "status", path)
    mapped = _STATUS_MAP.get(raw_status)
    if mapped is None:
        # e.g. "deleted" (legacy) or "warning" (catalog): not a delivery state.
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta status {raw_status!r} for {message_id}")
    return StatusUpdate(
        provider_message_id=message_id,
        status=mapped,
        timestamp=_timestamp(status, "timestamp", path),
        recipient=_opt_str(status, "recipient_id", path),
        error=_status_error(status, path) if mapped is DeliveryStatus.FAILED else None,
        callback_data=_opt_str(status, "biz_opaque_callback_data", path),
    )


def _account_error(error: JsonObject, path: str) -> Ignored:
    code = _error_code(error, path)
    title = _opt_str(error, "title", path) or _opt_str(error, "message", path) or ""
    data = _opt_object(error, "error_data", path)
    details = None if data is None else _opt_str(data, "details", f"{path}.error_data")
    detail = f"meta error {code}: {title}" + (f" ({details})" if details else "")
    return Ignored(IgnoredReason.UNHANDLED_EVENT, detail)


def _parse_value(value: JsonObject, path: str) -> list[NormalisedEvent]:
    contacts = [
        _as_object(c, f"{path}.contacts[{i}]") for i, c in enumerate(_opt_list(value, "contacts", path))
    ]
    events: list[NormalisedEvent] = []
    for i, raw in enumerate(_opt_list(value, "messages", path)):
        where = f"{path}.messages[{i}]"
        events.append(_inbound(_as_object(raw, where), contacts, where))
    for i, raw in enumerate(_opt_list(value, "statuses", path)):
        where = f"{path}.statuses[{i}]"
        events.append(_status(_as_object(raw, where), where))
    for i, raw in enumerate(_opt_list(value, "errors", path)):
        where = f"{path}.errors[{i}]"
        events.append(_account_error(_as_object(raw, where), where))
    if not events:
        events.append(Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta {path}: no messages, statuses or errors"))
    return events


def _parse_change(change: JsonObject, path: str) -> list[NormalisedEvent]:
    field = change.get("field")
    if field != "messages":
        # Template/quality/account updates, smb_message_echoes, ...: recognised, not applied (yet).
        return [Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta change field {field!r}")]
    value = change.get("value")
    return _parse_value(_as_object(value, f"{path}.value"), f"{path}.value")


# --------------------------------------------------------------------------------------------------


class MetaProvider:
    """WebhookProvider for the Meta WhatsApp Cloud API."""

    name: ProviderName = ProviderName.META

    def detect(self, request: WebhookRequest) -> bool:
        """True when the body names the WhatsApp Business Account object or Meta's signature header is set."""
        return _SIGNATURE_HEADER in request.headers or _OBJECT_MARKER in request.body

    def routing_key(self, request: WebhookRequest) -> str | None:
        """The first ``value.metadata.phone_number_id`` in the payload, or None when there is none.

        A batch whose changes belong to several numbers is routed by the first one: Meta groups
        changes per app, and in practice sends one number per POST.
        """
        for _path, change in _changes(_load(request.body)):
            value = change.get("value")
            metadata = value.get("metadata") if isinstance(value, dict) else None
            number_id = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if isinstance(number_id, str) and number_id:
                return number_id
        return None

    def verify(self, request: WebhookRequest, secrets: InstanceSecrets) -> bool:
        """Check ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app secret)."""
        received = request.headers.get(_SIGNATURE_HEADER)
        if not secrets.app_secret or not received:
            return False
        digest = hmac.new(secrets.app_secret.encode("utf-8"), request.body, hashlib.sha256).hexdigest()
        expected = (_SIGNATURE_PREFIX + digest).encode("ascii")
        # Hex is case-insensitive; compare bytes so a non-ASCII header cannot raise in compare_digest.
        return hmac.compare_digest(expected, received.strip().lower().encode("utf-8"))

    def parse(self, request: WebhookRequest) -> list[NormalisedEvent]:
        """Every message, status and account error of every entry and change, in payload order."""
        payload = _load(request.body)
        if payload.get("object") != "whatsapp_business_account":
            return [Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta object {payload.get('object')!r}")]
        events: list[NormalisedEvent] = []
        try:
            for path, change in _changes(payload):
                events.extend(_parse_change(change, path))
        except PayloadError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # Belt and braces: the accessors above already raise PayloadError with a path.
            raise PayloadError(f"Meta payload: unusable ({type(exc).__name__}: {exc})") from exc
        return events


meta_provider = MetaProvider()
