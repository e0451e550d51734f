"""The built-in simulator's webhooks: a small JSON format shaped like our normalised events.

The simulator (and the CLI) POST one event per request, built with the ``build_*_body`` functions::

    {"simulator": true, "instance": "<instance name>", "event": "message" | "status" | "connection",
     "data": {...}}

``data`` by event:

* ``message`` — a customer's message (or, with ``from_me``, one typed on the business phone)::

      {"id": "SIM-1", "from": "5511987654321", "name": "Maria" | null, "type": "text",
       "text": "Oi" | null, "timestamp": 1763035200, "from_me": false,
       "quoted_id": "SIM-0", "button_payload": "ID", "user_id": "…",
       "media": {"id", "url", "mime_type", "caption", "filename"}}

  ``from`` is the phone as digits (a leading "+" is tolerated); ``type`` is a MessageType value and
  defaults to "text"; ``timestamp`` is unix seconds; everything after ``timestamp`` is optional.
* ``status`` — a receipt for a message we sent::

      {"id": "<provider message id>", "status": "sent" | "delivered" | "read" | "failed",
       "timestamp": 1763035260, "recipient": "5511987654321", "error": {"code": "…", "title": "…"},
       "callback_data": "<our message id>"}

  ``recipient``, ``error`` and ``callback_data`` are optional; ``error`` is read only for "failed";
  ``callback_data`` echoes the id we sent the message with (as Meta's biz_opaque_callback_data).
* ``connection`` — ``{"state": "open" | "connecting" | "close", "reason": "…"}`` (reason optional).

Authenticity, as for the gateways: the instance's webhook secret in the URL path
(``/webhooks/simulator/<instance id>/<secret>``), or the header ``x-simulator-signature`` =
``sha256=<hex HMAC-SHA256(webhook secret, raw body)>`` (``sign_simulator_body``). A request with
neither is refused: an instance's name is no proof (a forged "SAIR" would opt a customer out).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

from messaging_whatsapp.providers.base import InstanceSecrets, PayloadError, ProviderName, WebhookRequest
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
    as_object,
    body_json_or_none,
    body_object,
    fail,
    from_seconds,
    opt_str,
    req_str,
    secret_matches,
)

_SOURCE = "simulator"

SIGNATURE_HEADER = "x-simulator-signature"
_SIGNATURE_PREFIX = "sha256="
# Statuses a receipt can carry: "queued" is our own state before sending, never a receipt.
STATUSES = frozenset({"sent", "delivered", "read", "failed"})


# --------------------------------------------------------------------------------------------------
# Building and signing bodies (used by the simulator and the CLI)


def _encode(instance: str, event: str, data: JsonObject) -> bytes:
    envelope = {"simulator": True, "instance": instance, "event": event, "data": data}
    # Compact and UTF-8: the exact bytes are what a signature covers.
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_inbound_message_body(
    instance: str, message_id: str, phone: str, text: str, name: str | None, timestamp: int
) -> bytes:
    """The body of a simulated customer text message."""
    data: JsonObject = {
        "id": message_id,
        "from": phone.removeprefix("+"),
        "name": name,
        "type": MessageType.TEXT.value,
        "text": text,
        "timestamp": timestamp,
    }
    return _encode(instance, "message", data)


def build_status_body(
    instance: str,
    message_id: str,
    status: str,
    timestamp: int,
    error: tuple[str, str] | None = None,
    callback_data: str | None = None,
) -> bytes:
    """The body of a simulated receipt; ``error`` is (code, title) for a failed message."""
    if status not in STATUSES:
        raise ValueError(f"simulator status must be one of {sorted(STATUSES)}, got {status!r}")
    data: JsonObject = {"id": message_id, "status": status, "timestamp": timestamp}
    if error is not None:
        data["error"] = {"code": error[0], "title": error[1]}
    if callback_data is not None:
        data["callback_data"] = callback_data
    return _encode(instance, "status", data)


def build_connection_body(instance: str, state: str, reason: str | None = None) -> bytes:
    """The body of a simulated connection change (open, connecting, close)."""
    ConnectionState(state)  # raises ValueError for anything else, before a bad body goes out
    data: JsonObject = {"state": state}
    if reason is not None:
        data["reason"] = reason
    return _encode(instance, "connection", data)


def sign_simulator_body(secret: str, body: bytes) -> str:
    """The ``x-simulator-signature`` header value for a body: ``sha256=<hex HMAC-SHA256>``."""
    return _SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------------
# Simulator-specific readers (the generic typed accessors live in providers/payload.py).


def _timestamp(parent: JsonObject, path: str) -> datetime:
    value = parent.get("timestamp")
    # Only an integer: the simulator's own bodies never carry numeric strings.
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(_SOURCE, f"{path}.timestamp must be unix seconds (an integer), got {value!r}")
    return from_seconds(_SOURCE, value, f"{path}.timestamp")


# --------------------------------------------------------------------------------------------------
# Parsing


def _media(data: JsonObject) -> Media | None:
    if data.get("media") is None:
        return None
    media = as_object(_SOURCE, data["media"], "data.media")
    path = "data.media"
    return Media(
        id=opt_str(_SOURCE, media, "id", path),
        url=opt_str(_SOURCE, media, "url", path),
        mime_type=opt_str(_SOURCE, media, "mime_type", path),
        caption=opt_str(_SOURCE, media, "caption", path),
        filename=opt_str(_SOURCE, media, "filename", path),
    )


def _message_type(data: JsonObject) -> MessageType:
    name = opt_str(_SOURCE, data, "type", "data") or MessageType.TEXT.value
    try:
        return MessageType(name)
    except ValueError as exc:
        raise fail(_SOURCE, f"data.type {name!r} is not a message type") from exc


def _message(data: JsonObject) -> InboundMessage:
    phone = req_str(_SOURCE, data, "from", "data").removeprefix("+")
    if not (phone.isascii() and phone.isdigit()):
        raise fail(_SOURCE, f"data.from must be a phone number as digits, got {phone!r}")
    from_me = data.get("from_me", False)
    if not isinstance(from_me, bool):
        raise fail(_SOURCE, f"data.from_me must be a boolean, got {type(from_me).__name__}")
    return InboundMessage(
        provider_message_id=req_str(_SOURCE, data, "id", "data"),
        phone=phone,
        type=_message_type(data),
        timestamp=_timestamp(data, "data"),
        contact_name=opt_str(_SOURCE, data, "name", "data"),
        text=opt_str(_SOURCE, data, "text", "data"),
        media=_media(data),
        quoted_message_id=opt_str(_SOURCE, data, "quoted_id", "data"),
        button_payload=opt_str(_SOURCE, data, "button_payload", "data"),
        from_me=from_me,
        user_id=opt_str(_SOURCE, data, "user_id", "data"),
    )


def _status_error(data: JsonObject) -> StatusError:
    if data.get("error") is None:
        return StatusError(code="", title="failed")
    error = as_object(_SOURCE, data["error"], "data.error")
    return StatusError(
        code=req_str(_SOURCE, error, "code", "data.error"),
        title=opt_str(_SOURCE, error, "title", "data.error") or "",
    )


def _status(data: JsonObject) -> StatusUpdate:
    name = req_str(_SOURCE, data, "status", "data")
    if name not in STATUSES:
        raise fail(_SOURCE, f"data.status must be one of {sorted(STATUSES)}, got {name!r}")
    status = DeliveryStatus(name)
    return StatusUpdate(
        provider_message_id=req_str(_SOURCE, data, "id", "data"),
        status=status,
        timestamp=_timestamp(data, "data"),
        recipient=opt_str(_SOURCE, data, "recipient", "data"),
        error=_status_error(data) if status is DeliveryStatus.FAILED else None,
        callback_data=opt_str(_SOURCE, data, "callback_data", "data"),
    )


def _connection(data: JsonObject) -> ConnectionUpdate:
    state = req_str(_SOURCE, data, "state", "data")
    try:
        mapped = ConnectionState(state)
    except ValueError as exc:
        raise fail(_SOURCE, f"data.state {state!r} is not open, connecting or close") from exc
    return ConnectionUpdate(mapped, reason=opt_str(_SOURCE, data, "reason", "data"))


def _parse_event(payload: JsonObject) -> NormalisedEvent:
    event = req_str(_SOURCE, payload, "event", "body")
    if event not in ("message", "status", "connection"):
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"simulator {event}")
    if "data" not in payload:
        raise fail(_SOURCE, "data is missing")
    data = as_object(_SOURCE, payload["data"], "data")
    if event == "message":
        return _message(data)
    if event == "status":
        return _status(data)
    return _connection(data)


# --------------------------------------------------------------------------------------------------


class SimulatorProvider:
    """WebhookProvider for the built-in simulator."""

    name: ProviderName = ProviderName.SIMULATOR

    def detect(self, request: WebhookRequest) -> bool:
        """True for a JSON object with ``"simulator": true``."""
        if b'"simulator"' not in request.body:
            return False
        payload = body_json_or_none(request)
        return isinstance(payload, dict) and payload.get("simulator") is True

    def routing_key(self, request: WebhookRequest) -> str | None:
        """The body's ``instance`` (the simulator instance name), or None when it is absent."""
        return opt_str(_SOURCE, body_object(_SOURCE, request), "instance", "body") or None

    def verify(self, request: WebhookRequest, secrets: InstanceSecrets) -> bool:
        """The instance's secret in the URL path, or ``x-simulator-signature`` over the body."""
        if secret_matches(request.path_secret, secrets.webhook_secret):
            return True
        received = request.headers.get(SIGNATURE_HEADER)
        if received is None or not secrets.webhook_secret:
            return False
        expected = sign_simulator_body(secrets.webhook_secret, request.body)
        # Hex is case-insensitive; compare bytes so a non-ASCII header cannot raise in compare_digest.
        return hmac.compare_digest(expected.encode("ascii"), received.strip().lower().encode("utf-8"))

    def parse(self, request: WebhookRequest) -> list[NormalisedEvent]:
        """The one event of the POST."""
        payload = body_object(_SOURCE, request)
        try:
            return [_parse_event(payload)]
        except PayloadError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # Belt and braces: the accessors above already raise PayloadError with a path.
            raise fail(_SOURCE, f"unusable ({type(exc).__name__}: {exc})") from exc


simulator_provider = SimulatorProvider()
