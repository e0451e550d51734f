"""Meta WhatsApp Cloud API webhooks: detection, routing, signature check and parsing.

The payload is read defensively: every field is type-checked on access and anything unusable raises
PayloadError naming the path (``entry[0].changes[1].value.messages[2].id``), so a malformed body never
escapes as KeyError/TypeError.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from messaging_whatsapp.providers.base import (
    TRANSIENT_ERROR_CLASSES,
    DeliveryStatus,
    ErrorClass,
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
from messaging_whatsapp.providers.payload import (
    JsonObject,
    as_list,
    as_object,
    body_object,
    fail,
    from_seconds,
    integer,
    opt_list,
    opt_number,
    opt_object,
    opt_str,
    req_str,
)

_SOURCE = "Meta"

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
ERROR_CLASSES: dict[str, ErrorClass] = {
    **dict.fromkeys(
        ["130429", "131000", "131016", "133004", "1", "2", "131057", "4", "80007"], ErrorClass.RETRY
    ),
    "131056": ErrorClass.RETRY_LATER_SAME_RECIPIENT,
    **dict.fromkeys(["131047", "470"], ErrorClass.NEEDS_TEMPLATE),
    "131026": ErrorClass.INVALID_RECIPIENT,
    **dict.fromkeys(["131049", "130472"], ErrorClass.DEFER),
    "131050": ErrorClass.OPT_OUT,
    **dict.fromkeys(
        ["131048", "131031", "368", "131042", "131045", "133010", "190", "0", "3", "10", "200"],
        ErrorClass.PAUSE_CHANNEL,
    ),
    **dict.fromkeys(
        [
            "131021", "131030", "131051", "131052", "131053", "131008", "131009", "100",
            "132000", "132001", "132005", "132007", "132012", "132015", "132016",
        ],
        ErrorClass.FIX_REQUEST,
    ),
}  # fmt: skip

# Unknown codes are treated as "fix_request": retrying something we do not understand can loop or spam
# the customer, while fix_request stops this payload and alerts a developer, who can add the code.
UNKNOWN_ERROR_CLASS = ErrorClass.FIX_REQUEST


def classify_error(code: str) -> ErrorClass:
    """Map a Meta error code to this project's error class (unknown codes → "fix_request")."""
    return ERROR_CLASSES.get(code.strip(), UNKNOWN_ERROR_CLASS)


# --------------------------------------------------------------------------------------------------
# Meta-specific readers (the generic typed accessors live in providers/payload.py).


def _timestamp(parent: JsonObject, key: str, path: str) -> datetime:
    value = parent.get(key)
    # Meta sends strings of unix seconds; accept a bare integer too, never a bool or float string.
    seconds = integer(value)
    if seconds is None:
        raise fail(_SOURCE, f"{path}.{key} must be unix seconds, got {value!r}")
    return from_seconds(_SOURCE, seconds, f"{path}.{key}")


def _error_code(error: JsonObject, path: str) -> str:
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, int | str) or code == "":
        raise fail(_SOURCE, f"{path}.code must be an integer code, got {code!r}")
    return str(code)


def _changes(payload: JsonObject) -> list[tuple[str, JsonObject]]:
    """Every (path, change) of every entry, in order, with the envelope shape checked."""
    found: list[tuple[str, JsonObject]] = []
    if "entry" not in payload:
        raise fail(_SOURCE, "entry is missing")
    for i, raw_entry in enumerate(as_list(_SOURCE, payload["entry"], "entry")):
        entry = as_object(_SOURCE, raw_entry, f"entry[{i}]")
        for j, raw_change in enumerate(opt_list(_SOURCE, entry, "changes", f"entry[{i}]")):
            path = f"entry[{i}].changes[{j}]"
            found.append((path, as_object(_SOURCE, raw_change, path)))
    return found


# --------------------------------------------------------------------------------------------------
# messages[]


def _referral(message: JsonObject, path: str) -> Referral | None:
    raw = opt_object(_SOURCE, message, "referral", path)
    if raw is None:
        return None
    where = f"{path}.referral"
    return Referral(
        source_url=opt_str(_SOURCE, raw, "source_url", where),
        source_id=opt_str(_SOURCE, raw, "source_id", where),
        source_type=opt_str(_SOURCE, raw, "source_type", where),
        headline=opt_str(_SOURCE, raw, "headline", where),
        click_id=opt_str(_SOURCE, raw, "ctwa_clid", where),
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
    profile = opt_object(_SOURCE, contact, "profile", path)
    return None if profile is None else opt_str(_SOURCE, profile, "name", f"{path}.profile")


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
    content.text = opt_str(_SOURCE, body, "body", path)
    return content


def _content_media(meta_type: str, body: JsonObject, path: str) -> _Content:
    content = _Content(_MEDIA_TYPES[meta_type])
    # The caption lives on the media only (text stays None) so text means "typed text" everywhere.
    content.media = Media(
        id=opt_str(_SOURCE, body, "id", path),
        url=opt_str(_SOURCE, body, "url", path),
        mime_type=opt_str(_SOURCE, body, "mime_type", path),
        caption=opt_str(_SOURCE, body, "caption", path),
        filename=opt_str(_SOURCE, body, "filename", path),
    )
    for flag in ("voice", "animated"):
        if isinstance(body.get(flag), bool):
            content.extra[flag] = body[flag]
    sha256 = opt_str(_SOURCE, body, "sha256", path)
    if sha256:
        content.extra["sha256"] = sha256
    return content


def _content_location(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.LOCATION)
    content.extra["latitude"] = opt_number(_SOURCE, body, "latitude", path)
    content.extra["longitude"] = opt_number(_SOURCE, body, "longitude", path)
    for key in ("name", "address", "url"):
        value = opt_str(_SOURCE, body, key, path)
        if value is not None:
            content.extra[key] = value
    return content


def _content_interactive(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.INTERACTIVE)
    kind = opt_str(_SOURCE, body, "type", path) or ""
    content.extra["interactive_type"] = kind
    reply = opt_object(_SOURCE, body, kind, path) if kind else None
    if reply is None:
        return content
    where = f"{path}.{kind}"
    if kind in ("button_reply", "list_reply"):
        content.button_payload = opt_str(_SOURCE, reply, "id", where)
        content.text = opt_str(_SOURCE, reply, "title", where)
        description = opt_str(_SOURCE, reply, "description", where)
        if description is not None:
            content.extra["description"] = description
    else:
        # nfm_reply (Flows) and future kinds: keep the raw reply for the domain to interpret.
        content.text = opt_str(_SOURCE, reply, "body", where)
        content.extra[kind] = reply
    return content


def _content_button(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.BUTTON)
    content.button_payload = opt_str(_SOURCE, body, "payload", path)
    content.text = opt_str(_SOURCE, body, "text", path)
    return content


def _content_reaction(body: JsonObject, path: str) -> _Content:
    content = _Content(MessageType.REACTION)
    # An absent or empty emoji means the reaction was removed; text None says exactly that.
    content.text = opt_str(_SOURCE, body, "emoji", path) or None
    content.extra["message_id"] = opt_str(_SOURCE, body, "message_id", path)
    return content


def _content_contacts(body: list[Any], path: str) -> _Content:
    content = _Content(MessageType.CONTACTS)
    content.extra["contacts"] = [as_object(_SOURCE, item, f"{path}[{i}]") for i, item in enumerate(body)]
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
        return _content_contacts(opt_list(_SOURCE, message, "contacts", path), where)
    if meta_type in _MEDIA_TYPES:
        return _content_media(meta_type, opt_object(_SOURCE, message, meta_type, path) or {}, where)
    if meta_type in _OBJECT_CONTENT:
        return _OBJECT_CONTENT[meta_type](opt_object(_SOURCE, message, meta_type, path) or {}, where)
    # unsupported, order, system, revoke, edit, and whatever Meta adds next: keep the raw body.
    content = _Content(MessageType.UNKNOWN)
    content.extra["meta_type"] = meta_type
    if meta_type in message:
        content.extra[meta_type] = message[meta_type]
    return content


def _message_extra(message: JsonObject, content: _Content, path: str) -> dict[str, Any]:
    extra = dict(content.extra)
    errors = opt_list(_SOURCE, message, "errors", path)
    if errors:
        extra["errors"] = errors
    context = opt_object(_SOURCE, message, "context", path)
    if context is not None:
        for flag in ("forwarded", "frequently_forwarded"):
            if context.get(flag) is True:
                extra[flag] = True
    return extra


def _inbound(message: JsonObject, contacts: list[JsonObject], path: str) -> InboundMessage:
    message_id = req_str(_SOURCE, message, "id", path)
    # With usernames (BSUID) Meta may omit the phone; the user id then identifies the person.
    phone = (opt_str(_SOURCE, message, "from", path) or "").lstrip("+")
    user_id = opt_str(_SOURCE, message, "from_user_id", path)
    contact = _find_contact(contacts, phone, user_id)
    if user_id is None and contact is not None:
        user_id = opt_str(_SOURCE, contact, "user_id", f"{path}.contact")
    if not phone and not user_id:
        raise fail(_SOURCE, f"{path} has neither from nor from_user_id")
    content = _content(message, req_str(_SOURCE, message, "type", path), path)
    context = opt_object(_SOURCE, message, "context", path)
    return InboundMessage(
        provider_message_id=message_id,
        phone=phone,
        type=content.type,
        timestamp=_timestamp(message, "timestamp", path),
        contact_name=_contact_name(contact, f"{path}.contact"),
        text=content.text,
        media=content.media,
        quoted_message_id=None if context is None else opt_str(_SOURCE, context, "id", f"{path}.context"),
        button_payload=content.button_payload,
        referral=_referral(message, path),
        user_id=user_id,
        extra=_message_extra(message, content, path),
    )


# --------------------------------------------------------------------------------------------------
# statuses[] and value.errors[]


def _status_error(status: JsonObject, path: str) -> StatusError:
    errors = opt_list(_SOURCE, status, "errors", path)
    if not errors:
        # Failed without a reason: keep it permanent (unknown → fix_request) rather than retry blindly.
        return StatusError(code="", title="failed", permanent=True)
    where = f"{path}.errors[0]"
    first = as_object(_SOURCE, errors[0], where)
    code = _error_code(first, where)
    title = opt_str(_SOURCE, first, "title", where) or opt_str(_SOURCE, first, "message", where) or ""
    return StatusError(code=code, title=title, permanent=classify_error(code) not in TRANSIENT_ERROR_CLASSES)


def _status(status: JsonObject, path: str) -> StatusUpdate | Ignored:
    message_id = req_str(_SOURCE, status, "id", path)
    raw_status = req_str(_SOURCE, status, "status", path)
    mapped = _STATUS_MAP.get(raw_status)
    if mapped is None:
        # e.g. "deleted" (legacy) or "warning" (catalog): not a delivery state.
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta status {raw_status!r} for {message_id}")
    return StatusUpdate(
        provider_message_id=message_id,
        status=mapped,
        timestamp=_timestamp(status, "timestamp", path),
        recipient=opt_str(_SOURCE, status, "recipient_id", path),
        error=_status_error(status, path) if mapped is DeliveryStatus.FAILED else None,
        callback_data=opt_str(_SOURCE, status, "biz_opaque_callback_data", path),
    )


def _account_error(error: JsonObject, path: str) -> Ignored:
    code = _error_code(error, path)
    title = opt_str(_SOURCE, error, "title", path) or opt_str(_SOURCE, error, "message", path) or ""
    data = opt_object(_SOURCE, error, "error_data", path)
    details = None if data is None else opt_str(_SOURCE, data, "details", f"{path}.error_data")
    detail = f"meta error {code}: {title}" + (f" ({details})" if details else "")
    return Ignored(IgnoredReason.UNHANDLED_EVENT, detail)


def _parse_value(value: JsonObject, path: str) -> list[NormalisedEvent]:
    contacts = [
        as_object(_SOURCE, c, f"{path}.contacts[{i}]")
        for i, c in enumerate(opt_list(_SOURCE, value, "contacts", path))
    ]
    events: list[NormalisedEvent] = []
    for i, raw in enumerate(opt_list(_SOURCE, value, "messages", path)):
        where = f"{path}.messages[{i}]"
        events.append(_inbound(as_object(_SOURCE, raw, where), contacts, where))
    for i, raw in enumerate(opt_list(_SOURCE, value, "statuses", path)):
        where = f"{path}.statuses[{i}]"
        events.append(_status(as_object(_SOURCE, raw, where), where))
    for i, raw in enumerate(opt_list(_SOURCE, value, "errors", path)):
        where = f"{path}.errors[{i}]"
        events.append(_account_error(as_object(_SOURCE, raw, where), where))
    if not events:
        events.append(Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta {path}: no messages, statuses or errors"))
    return events


def _parse_change(change: JsonObject, path: str) -> list[NormalisedEvent]:
    field = change.get("field")
    if field != "messages":
        # Template/quality/account updates, smb_message_echoes, ...: recognised, not applied (yet).
        return [Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta change field {field!r}")]
    value = change.get("value")
    return _parse_value(as_object(_SOURCE, value, f"{path}.value"), f"{path}.value")


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
        for _path, change in _changes(body_object(_SOURCE, request)):
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
        payload = body_object(_SOURCE, request)
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
            raise fail(_SOURCE, f"unusable ({type(exc).__name__}: {exc})") from exc
        return events


meta_provider = MetaProvider()
