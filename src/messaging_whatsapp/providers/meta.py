"""Meta WhatsApp Cloud API webhooks: detection, routing, signature check, statuses and errors; the
messages themselves are read in providers/meta_messages.py.

The payload is read defensively: every field is type-checked on access and anything unusable raises
PayloadError naming the path (``entry[0].changes[1].value.messages[2].id``), so a malformed body never
escapes as KeyError/TypeError.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

from messaging_whatsapp.providers.base import InstanceSecrets, PayloadError, ProviderName, WebhookRequest
from messaging_whatsapp.providers.events import (
    DeliveryStatus,
    Ignored,
    IgnoredReason,
    NormalisedEvent,
    StatusError,
    StatusUpdate,
    Unusable,
)
from messaging_whatsapp.providers.meta_messages import SOURCE, inbound_message, timestamp
from messaging_whatsapp.providers.outbound import ErrorClass, receipt_error
from messaging_whatsapp.providers.payload import (
    JsonObject,
    as_list,
    as_object,
    body_object,
    fail,
    opt_list,
    opt_object,
    opt_str,
    req_str,
)

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


def _error_code(error: JsonObject, path: str) -> str:
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, int | str) or code == "":
        raise fail(SOURCE, f"{path}.code must be an integer code, got {code!r}")
    return str(code)


def _number_id(change: JsonObject) -> str | None:
    """The ``value.metadata.phone_number_id`` a change belongs to, if it names one."""
    value = change.get("value")
    metadata = value.get("metadata") if isinstance(value, dict) else None
    number_id = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    return number_id if isinstance(number_id, str) and number_id else None


def _changes(payload: JsonObject) -> list[tuple[str, JsonObject]]:
    """Every (path, change) of every entry, in order, with the envelope shape checked."""
    found: list[tuple[str, JsonObject]] = []
    if "entry" not in payload:
        raise fail(SOURCE, "entry is missing")
    for i, raw_entry in enumerate(as_list(SOURCE, payload["entry"], "entry")):
        entry = as_object(SOURCE, raw_entry, f"entry[{i}]")
        for j, raw_change in enumerate(opt_list(SOURCE, entry, "changes", f"entry[{i}]")):
            path = f"entry[{i}].changes[{j}]"
            found.append((path, as_object(SOURCE, raw_change, path)))
    return found


# --------------------------------------------------------------------------------------------------
# statuses[] and value.errors[]


def _status_error(status: JsonObject, path: str) -> StatusError:
    errors = opt_list(SOURCE, status, "errors", path)
    if not errors:
        # Failed without a reason: keep it permanent (unknown → fix_request) rather than retry blindly.
        return StatusError(code="", title="failed", permanent=True)
    where = f"{path}.errors[0]"
    first = as_object(SOURCE, errors[0], where)
    code = _error_code(first, where)
    title = opt_str(SOURCE, first, "title", where) or opt_str(SOURCE, first, "message", where) or ""
    error_class = classify_error(code)
    return receipt_error(code, title, error_class)


def _status(status: JsonObject, path: str) -> StatusUpdate | Ignored:
    message_id = req_str(SOURCE, status, "id", path)
    raw_status = req_str(SOURCE, status, "status", path)
    mapped = _STATUS_MAP.get(raw_status)
    if mapped is None:
        # e.g. "deleted" (legacy) or "warning" (catalog): not a delivery state.
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta status {raw_status!r} for {message_id}")
    return StatusUpdate(
        provider_message_id=message_id,
        status=mapped,
        timestamp=timestamp(status, "timestamp", path),
        recipient=opt_str(SOURCE, status, "recipient_id", path),
        error=_status_error(status, path) if mapped is DeliveryStatus.FAILED else None,
        callback_data=opt_str(SOURCE, status, "biz_opaque_callback_data", path),
    )


def _account_error(error: JsonObject, path: str) -> Ignored:
    code = _error_code(error, path)
    title = opt_str(SOURCE, error, "title", path) or opt_str(SOURCE, error, "message", path) or ""
    data = opt_object(SOURCE, error, "error_data", path)
    details = None if data is None else opt_str(SOURCE, data, "details", f"{path}.error_data")
    detail = f"meta error {code}: {title}" + (f" ({details})" if details else "")
    return Ignored(IgnoredReason.UNHANDLED_EVENT, detail)


def _item(raw: object, where: str, read: Callable[[JsonObject, str], NormalisedEvent]) -> NormalisedEvent:
    """One message, status or error of the batch, or Unusable: one bad item must not cost the
    batch's other items (they are applied; this one goes to the DLQ alone, with its reason)."""
    try:
        return read(as_object(SOURCE, raw, where), where)
    except PayloadError as exc:
        return Unusable(item=where, reason=str(exc))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return Unusable(
            item=where, reason=f"{SOURCE} payload: {where} unusable ({type(exc).__name__}: {exc})"
        )


def _parse_value(value: JsonObject, path: str) -> list[NormalisedEvent]:
    contacts = [
        as_object(SOURCE, c, f"{path}.contacts[{i}]")
        for i, c in enumerate(opt_list(SOURCE, value, "contacts", path))
    ]
    readers: list[tuple[str, Callable[[JsonObject, str], NormalisedEvent]]] = [
        ("messages", lambda message, where: inbound_message(message, contacts, where)),
        ("statuses", _status),
        ("errors", _account_error),
    ]
    events: list[NormalisedEvent] = []
    for key, read in readers:
        for i, raw in enumerate(opt_list(SOURCE, value, key, path)):
            events.append(_item(raw, f"{path}.{key}[{i}]", read))
    if not events:
        events.append(Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta {path}: no messages, statuses or errors"))
    return events


def _parse_change(change: JsonObject, path: str) -> list[NormalisedEvent]:
    field = change.get("field")
    if field != "messages":
        # Template/quality/account updates, smb_message_echoes, ...: recognised, not applied (yet).
        return [Ignored(IgnoredReason.UNHANDLED_EVENT, f"meta change field {field!r}")]
    value = change.get("value")
    return _parse_value(as_object(SOURCE, value, f"{path}.value"), f"{path}.value")


# --------------------------------------------------------------------------------------------------


class MetaProvider:
    """WebhookProvider for the Meta WhatsApp Cloud API."""

    name: ProviderName = ProviderName.META

    def detect(self, request: WebhookRequest) -> bool:
        """True when the body names the WhatsApp Business Account object or Meta's signature header is set."""
        return _SIGNATURE_HEADER in request.headers or _OBJECT_MARKER in request.body

    def routing_key(self, request: WebhookRequest) -> str | None:
        """The first ``value.metadata.phone_number_id`` in the payload, or None when there is none.

        One Meta app may serve several numbers, and a batch may carry changes of several: the
        receiver then files each number's part under its own instance (``split_by_number``).
        """
        for _path, change in _changes(body_object(SOURCE, request)):
            number_id = _number_id(change)
            if number_id is not None:
                return number_id
        return None

    def split_by_number(self, request: WebhookRequest) -> dict[str, bytes]:
        """One body per ``phone_number_id`` when the batch's changes name more than one (each with
        only that number's changes, in order); empty when they name one, so the body stays whole.

        A change that names no number goes with the first number's part.
        """
        payload = body_object(SOURCE, request)
        numbers = [_number_id(change) for _path, change in _changes(payload)]
        first = next((number for number in numbers if number), "")
        if all(number in (None, first) for number in numbers):
            return {}
        parts: dict[str, list[JsonObject]] = {}
        for entry in payload["entry"]:
            by_number: dict[str, list[JsonObject]] = {}
            for change in entry.get("changes") or []:
                by_number.setdefault(_number_id(change) or first, []).append(change)
            for number_id, changes in by_number.items():
                parts.setdefault(number_id, []).append({**entry, "changes": changes})
        return {
            number_id: json.dumps({**payload, "entry": entries}, ensure_ascii=False).encode("utf-8")
            for number_id, entries in parts.items()
        }

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
        payload = body_object(SOURCE, request)
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
            raise fail(SOURCE, f"unusable ({type(exc).__name__}: {exc})") from exc
        return events


meta_provider = MetaProvider()
