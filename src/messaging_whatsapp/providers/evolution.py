"""Evolution API webhooks (v2, Baileys channel; v1 data shapes accepted): detect, route, verify, and
parse statuses and connection changes (messages are read in providers/evolution_messages.py).

Every POST carries one event: ``{"event": "messages.upsert", "instance": "<name>", "data": {...},
"apikey": ..., ...}`` (tests/fixtures/FORMATS.md section 3). Evolution signs nothing, so verification
accepts any of the secrets an operator can configure (see ``EvolutionProvider.verify``).

Every read of the payload goes through the typed accessors of providers/payload.py, which raise
PayloadError naming the path (``data.key.id``), so a malformed body never escapes as KeyError/TypeError.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

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
    StatusError,
    StatusUpdate,
)
from messaging_whatsapp.providers.evolution_messages import SOURCE, inbound_message, long_integer
from messaging_whatsapp.providers.payload import (
    JsonObject,
    as_object,
    body_json_or_none,
    body_object,
    body_str,
    fail,
    from_seconds,
    opt_bool,
    opt_object,
    opt_str,
    req_str,
    secret_matches,
)

# Event names are dotted lowercase ("messages.upsert", "group-participants.update"); "call" has no dot.
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*")
_BEARER = "bearer "

# renderStatus.ts: Baileys' numeric WAMessageStatus → the strings Evolution sends.
_NUMERIC_STATUS = {0: "ERROR", 1: "PENDING", 2: "SERVER_ACK", 3: "DELIVERY_ACK", 4: "READ", 5: "PLAYED"}
_STATUS_MAP: dict[str, DeliveryStatus] = {
    "SERVER_ACK": DeliveryStatus.SENT,
    "DELIVERY_ACK": DeliveryStatus.DELIVERED,
    "READ": DeliveryStatus.READ,
    # A played voice note is the strongest proof of reading.
    "PLAYED": DeliveryStatus.READ,
    "ERROR": DeliveryStatus.FAILED,
}

_CONNECTION_STATES = {
    "open": ConnectionState.OPEN,
    "connecting": ConnectionState.CONNECTING,
    "close": ConnectionState.CLOSE,
}


# --------------------------------------------------------------------------------------------------
# Evolution-specific readers (the generic typed accessors live in providers/payload.py).


def _data(payload: JsonObject) -> JsonObject:
    if "data" not in payload:
        raise fail(SOURCE, "data is missing")
    return as_object(SOURCE, payload["data"], "data")


# --------------------------------------------------------------------------------------------------
# messages.update and connection.update


def _status_name(data: JsonObject, path: str = "data") -> str:
    value = data.get("status")
    if isinstance(value, int) and not isinstance(value, bool):
        return _NUMERIC_STATUS.get(value, str(value))
    if isinstance(value, str) and value.isdigit():
        return _NUMERIC_STATUS.get(int(value), value)
    if isinstance(value, str) and value:
        return value.upper()
    raise fail(SOURCE, f"{path}.status must be a status name or number, got {value!r}")


def _status_time(data: JsonObject) -> datetime:
    """v1's ``data.datetime`` (unix ms); v2 updates carry no time of their own, so the parse time.

    The envelope's ``date_time`` is no substitute: it is Evolution's local clock labelled "Z"
    (FORMATS.md 3.1) — the fixtures' receipts say 09:01Z for messages sent at 12:01Z — so it can put
    a receipt hours before its message. The parse time is late only by our own queue delay.
    """
    if data.get("datetime") is not None:
        return from_seconds(SOURCE, long_integer(data["datetime"], "data.datetime") / 1000, "data.datetime")
    return datetime.now(UTC)


def _status_update(data: JsonObject) -> NormalisedEvent:
    key = opt_object(SOURCE, data, "key", "data")
    update = opt_object(SOURCE, data, "update", "data")
    if key is not None and update is not None:
        return _keyed_status_update(key, update, data)
    # v2 names the message keyId (messageId is Evolution's database row id); v1 names it id.
    message_id = opt_str(SOURCE, data, "keyId", "data") or req_str(SOURCE, data, "id", "data")
    from_me = opt_bool(SOURCE, data, "fromMe", "data")
    if from_me is None:
        raise fail(SOURCE, "data.fromMe is missing")
    if not from_me:
        # A receipt for a message the customer sent us (e.g. we marked it read).
        return Ignored(IgnoredReason.SELF_RECEIPT, f"evolution receipt for inbound {message_id}")
    return _receipt(message_id, _status_name(data), opt_str(SOURCE, data, "remoteJid", "data"), data)


def _keyed_status_update(key: JsonObject, update: JsonObject, data: JsonObject) -> NormalisedEvent:
    """Seed 000's shape, Baileys' own ``{key: {remoteJid, id, fromMe?}, update: {status}}``: the
    status is Baileys' enum (2 server ack, 3 delivered, 4 read, 5 played; FORMATS.md 3.3), not the
    seed's "1=sent, 2=delivered, 3=read" (DESIGN section 5). Without ``fromMe`` the receipt is taken
    as one of ours: only our sent messages carry the id it names."""
    message_id = req_str(SOURCE, key, "id", "data.key")
    if opt_bool(SOURCE, key, "fromMe", "data.key") is False:
        return Ignored(IgnoredReason.SELF_RECEIPT, f"evolution receipt for inbound {message_id}")
    if "status" not in update:
        # An update of something else (a reaction, a poll, a starred flag): not a receipt.
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"evolution update of {message_id} without status")
    name = _status_name(update, "data.update")
    return _receipt(message_id, name, opt_str(SOURCE, key, "remoteJid", "data.key"), data)


def _receipt(message_id: str, name: str, remote_jid: str | None, data: JsonObject) -> NormalisedEvent:
    if name == "PENDING":
        return Ignored(IgnoredReason.PENDING_STATUS, f"evolution {message_id} PENDING")
    status = _STATUS_MAP.get(name)
    if status is None:
        # DELETED and anything unknown: not a delivery state.
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"evolution status {name} for {message_id}")
    return StatusUpdate(
        provider_message_id=message_id,
        status=status,
        timestamp=_status_time(data),
        recipient=jid.phone_digits(remote_jid) if remote_jid else None,
        error=StatusError(code="ERROR", title="Evolution reported status ERROR")
        if status is DeliveryStatus.FAILED
        else None,
    )


def _connection_update(data: JsonObject) -> NormalisedEvent:
    state = req_str(SOURCE, data, "state", "data")
    reason = data.get("statusReason")
    if reason is not None and (isinstance(reason, bool) or not isinstance(reason, int | str)):
        raise fail(SOURCE, f"data.statusReason must be a number, got {type(reason).__name__}")
    if state == "refused":
        # The QR code limit was reached: the session is closed until someone scans again.
        return ConnectionUpdate(ConnectionState.CLOSE, reason="refused")
    mapped = _CONNECTION_STATES.get(state)
    if mapped is None:
        return Ignored(IgnoredReason.UNHANDLED_EVENT, f"evolution connection state {state!r}")
    return ConnectionUpdate(mapped, reason=None if reason is None else str(reason))


# --------------------------------------------------------------------------------------------------


def _is_evolution(payload: object) -> bool:
    if not isinstance(payload, dict) or "instance" not in payload:
        return False
    event = payload.get("event")
    # "type" is WuzAPI's marker and "simulator" ours: excluding them keeps detection exclusive.
    return (
        isinstance(event, str)
        and _EVENT_NAME.fullmatch(event) is not None
        and "type" not in payload
        and "simulator" not in payload
    )


class EvolutionProvider:
    """WebhookProvider for Evolution API (Baileys channel)."""

    name: ProviderName = ProviderName.EVOLUTION

    def detect(self, request: WebhookRequest) -> bool:
        """True for a JSON object with a dotted lowercase ``event`` and an ``instance`` key."""
        if b'"event"' not in request.body or b'"instance"' not in request.body:
            return False
        return _is_evolution(body_json_or_none(request))

    def routing_key(self, request: WebhookRequest) -> str | None:
        """The top-level ``instance`` (the Evolution instance name), or None when it is absent."""
        payload = body_object(SOURCE, request)
        instance = opt_str(SOURCE, payload, "instance", "body")
        return instance or None

    def verify(self, request: WebhookRequest, secrets: InstanceSecrets) -> bool:
        """Accept any secret an operator can configure, compared in constant time.

        Evolution signs nothing, so the request is genuine when the webhook secret is in the URL path,
        in ``x-webhook-secret``, or in ``Authorization: Bearer <secret>``, or when the body's
        ``apikey`` equals the instance API key (Evolution only sends it when it is exposed).
        """
        secret = secrets.webhook_secret
        authorization = request.headers.get("authorization", "")
        bearer = authorization[len(_BEARER) :].strip() if authorization.lower().startswith(_BEARER) else None
        # Evaluate every check (no short-circuit) so timing does not reveal which one matched.
        checks = [
            secret_matches(request.path_secret, secret),
            secret_matches(request.headers.get(WEBHOOK_SECRET_HEADER), secret),
            secret_matches(bearer, secret),
            # The envelope's apikey is null unless the instance exposes it.
            secret_matches(body_str(request, "apikey"), secrets.api_key),
        ]
        return any(checks)

    def without_credentials(self, request: WebhookRequest) -> bytes | None:
        """The body with its ``apikey`` emptied, to store; None when it carries none."""
        payload = body_object(SOURCE, request)
        if not payload.get("apikey"):
            return None
        return json.dumps({**payload, "apikey": ""}, ensure_ascii=False).encode("utf-8")

    def parse(self, request: WebhookRequest) -> list[NormalisedEvent]:
        """The one event of the POST: a message, a receipt, a connection change, or Ignored."""
        payload = body_object(SOURCE, request)
        event = req_str(SOURCE, payload, "event", "body")
        try:
            return [_parse_event(payload, event)]
        except PayloadError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # Belt and braces: the accessors above already raise PayloadError with a path.
            raise fail(SOURCE, f"unusable ({type(exc).__name__}: {exc})") from exc


def _parse_event(payload: JsonObject, event: str) -> NormalisedEvent:
    if event == "messages.upsert":
        return inbound_message(_data(payload), force_from_me=False)
    if event == "send.message":
        # Echo of a message sent through Evolution's API (ours, or another tool's on this instance).
        return inbound_message(_data(payload), force_from_me=True)
    if event == "messages.update":
        return _status_update(_data(payload))
    if event == "connection.update":
        return _connection_update(_data(payload))
    return Ignored(IgnoredReason.UNHANDLED_EVENT, event)


evolution_provider = EvolutionProvider()
