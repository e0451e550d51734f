"""WuzAPI webhooks (asternic/wuzapi, whatsmeow): detect, route, verify, parse (the `Message` events
themselves are read in providers/wuzapi_messages.py).

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
import json
from urllib.parse import parse_qs, parse_qsl, urlencode

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
    NormalisedEvent,
    StatusUpdate,
)
from messaging_whatsapp.providers.payload import (
    JsonObject,
    body_object,
    fail,
    json_or_none,
    load_object,
    opt_str,
    req_object,
    req_str,
    rfc3339,
    secret_matches,
)
from messaging_whatsapp.providers.wuzapi_messages import SOURCE, flag, inbound_message

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
        raise fail(SOURCE, "form body is not UTF-8") from exc
    # The first value wins when a field repeats; WuzAPI never repeats one.
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _postmap(request: WebhookRequest) -> JsonObject:
    """The event object, whichever mode delivered it, with the routing fields at its root."""
    if not _is_form(request):
        return body_object(SOURCE, request)
    fields = _form_fields(request.body)
    if "jsonData" not in fields:
        raise fail(SOURCE, "form body has no jsonData field")
    postmap = load_object(SOURCE, fields["jsonData"], "jsonData")
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
# ReadReceipt (Message is read in providers/wuzapi_messages.py)


def _message_ids(event: JsonObject) -> list[str]:
    raw = event.get("MessageIDs")
    if not isinstance(raw, list):
        raise fail(SOURCE, f"event.MessageIDs must be a list, got {type(raw).__name__}")
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item:
            raise fail(SOURCE, f"event.MessageIDs[{i}] must be a non-empty string, got {item!r}")
    return raw


def _receipt_state(postmap: JsonObject, event: JsonObject) -> str:
    state = opt_str(SOURCE, postmap, "state", "body")
    if state:
        return state
    # Builds without the root "state": derive it from the receipt type as WuzAPI does.
    receipt_type = opt_str(SOURCE, event, "Type", "event") or ""
    return _STATE_BY_RECEIPT_TYPE.get(receipt_type, receipt_type)


def _receipt(postmap: JsonObject) -> list[NormalisedEvent]:
    event = req_object(SOURCE, postmap, "event", "body")
    ids = _message_ids(event)
    state = _receipt_state(postmap, event)
    if state == "ReadSelf":
        # We read *their* message on another device of ours.
        return [Ignored(IgnoredReason.SELF_RECEIPT, f"wuzapi ReadSelf for {len(ids)} message(s)")]
    status = _RECEIPT_STATES.get(state)
    if status is None:
        return [Ignored(IgnoredReason.UNHANDLED_EVENT, f"wuzapi receipt state {state!r}")]
    chat = opt_str(SOURCE, event, "Chat", "event") or ""
    if flag(event, "IsGroup", "event") or jid.is_group(chat):
        return [Ignored(IgnoredReason.GROUP, f"wuzapi receipt in {chat}")]
    if not ids:
        return [Ignored(IgnoredReason.UNHANDLED_EVENT, "wuzapi receipt without message ids")]
    person = jid.resolve_person(chat, opt_str(SOURCE, event, "SenderAlt", "event"))
    timestamp = rfc3339(SOURCE, event, "Timestamp", "event")
    recipient = person.phone if person else None
    return [StatusUpdate(message_id, status, timestamp, recipient=recipient) for message_id in ids]


def _parse_postmap(postmap: JsonObject) -> list[NormalisedEvent]:
    kind = req_str(SOURCE, postmap, "type", "body")
    if kind == "Message":
        return [inbound_message(postmap)]
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
            value = opt_str(SOURCE, postmap, name, "body")
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

    def without_credentials(self, request: WebhookRequest) -> bytes | None:
        """The body with the user's ``token`` emptied (the oldest builds route by it), to store;
        None when it carries none."""
        if _is_form(request):
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
            if not any(name == "token" and value for name, value in pairs):
                return None
            return urlencode([(name, "" if name == "token" else value) for name, value in pairs]).encode()
        payload = body_object(SOURCE, request)
        if not payload.get("token"):
            return None
        return json.dumps({**payload, "token": ""}, ensure_ascii=False).encode("utf-8")

    def parse(self, request: WebhookRequest) -> list[NormalisedEvent]:
        """The POST's event: a message, one status per receipted id, a connection change, or Ignored."""
        postmap = _postmap(request)
        try:
            return _parse_postmap(postmap)
        except PayloadError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # Belt and braces: the accessors above already raise PayloadError with a path.
            raise fail(SOURCE, f"unusable ({type(exc).__name__}: {exc})") from exc


wuzapi_provider = WuzapiProvider()
