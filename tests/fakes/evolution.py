"""A fake Evolution API v2 (Baileys channel) REST server: a handler for FakeHttpServer.

It answers the calls our adapter makes the way Evolution v2.3 does (FORMATS.md section 3.6): the
``apikey`` header (global key, or the instance's own token), the guard order (an unknown instance is
a 404 before the key is looked at), JSON-schema style 400s for bad bodies, 201 with the stored
message for sends, and the ``{status, error, response: {message}}`` error envelope. It keeps the
instances it knows with their token, state and webhook configuration, so tests can check what the
adapter registered. Numbers can be marked as not on WhatsApp; an instance whose state is not "open"
fails sends the way a dropped Baileys session does ("Connection Closed").
"""

from __future__ import annotations

import itertools
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.fakes.http import RecordedRequest, Reply

GLOBAL_KEY = "GLOBAL-API-KEY-0123456789"
INTEGRATION = "WHATSAPP-BAILEYS"
# EventController.events in v2.3.6: the names /webhook/set and /instance/create accept.
KNOWN_EVENTS = frozenset(
    {
        "APPLICATION_STARTUP", "QRCODE_UPDATED", "MESSAGES_SET", "MESSAGES_UPSERT", "MESSAGES_EDITED",
        "MESSAGES_UPDATE", "MESSAGES_DELETE", "SEND_MESSAGE", "SEND_MESSAGE_UPDATE", "CONTACTS_SET",
        "CONTACTS_UPSERT", "CONTACTS_UPDATE", "PRESENCE_UPDATE", "CHATS_SET", "CHATS_UPSERT",
        "CHATS_UPDATE", "CHATS_DELETE", "GROUPS_UPSERT", "GROUP_UPDATE", "GROUP_PARTICIPANTS_UPDATE",
        "CONNECTION_UPDATE", "LABELS_EDIT", "LABELS_ASSOCIATION", "CALL", "TYPEBOT_START",
        "TYPEBOT_CHANGE_STATUS", "REMOVE_INSTANCE", "LOGOUT_INSTANCE", "INSTANCE_CREATE",
        "INSTANCE_DELETE", "STATUS_INSTANCE",
    }
)  # fmt: skip
MEDIA_TYPES = frozenset({"image", "document", "video", "audio"})
PRESENCES = frozenset({"unavailable", "available", "composing", "recording", "paused"})
_ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
}
_MEDIA_KEYS = {"image": "imageMessage", "video": "videoMessage", "document": "documentMessage"}


class _Invalid(Exception):
    """A body that fails validation: becomes a 400 with these messages."""

    def __init__(self, *messages: object) -> None:
        super().__init__(messages)
        self.messages = list(messages)


def error(status: int, message: object) -> Reply:
    """Evolution's error envelope (src/main.ts)."""
    return Reply(
        status, {"status": status, "error": _ERRORS.get(status, "Error"), "response": {"message": message}}
    )


@dataclass
class FakeInstance:
    """One instance as Evolution keeps it."""

    name: str
    token: str
    state: str = "close"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    owner_jid: str | None = None
    webhook: dict[str, Any] | None = None
    qrcode: dict[str, Any] = field(default_factory=lambda: {"count": 0})


Route = Callable[["FakeEvolution", FakeInstance, dict[str, Any], RecordedRequest], Reply]


class FakeEvolution:
    """Evolution v2 REST in memory; call it with a RecordedRequest (a FakeHttpServer handler)."""

    def __init__(self, global_key: str = GLOBAL_KEY) -> None:
        self.global_key = global_key
        self.instances: dict[str, FakeInstance] = {}
        self.not_on_whatsapp: set[str] = set()
        # Every message the fake accepted, as the body the adapter posted plus the id it was given.
        self.sent: list[dict[str, Any]] = []
        # The keys of the messages marked read (POST /chat/markMessageAsRead), as posted.
        self.read: list[dict[str, Any]] = []
        # sendPresence answers only after its delay, as the real one does (keep delays short).
        self.hold_presence = False
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------------------------------------
    # Test set-up

    def add_instance(self, name: str, *, state: str = "open", owner: str | None = None) -> FakeInstance:
        """An instance that already exists on the gateway, with a fresh token."""
        instance = FakeInstance(
            name=name,
            token=str(uuid.uuid4()).upper(),
            state=state,
            owner_jid=f"{owner}@s.whatsapp.net" if owner else None,
        )
        self.instances[name] = instance
        return instance

    def link_phone(self, name: str, owner: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The phone scanned the instance's QR code: it is open now. Returns the webhook Evolution
        posts then (connection.update): the URL and headers registered for it, and the body."""
        instance = self.instances[name]
        instance.state = "open"
        instance.owner_jid = f"{owner}@s.whatsapp.net"
        assert instance.webhook is not None, "no webhook registered"
        data = {"instance": name, "wuid": instance.owner_jid, "state": "open", "statusReason": 200}
        body = {"event": "connection.update", "instance": name, "data": data, "apikey": instance.token}
        return instance.webhook["url"], dict(instance.webhook.get("headers") or {}), body

    def mark_not_on_whatsapp(self, number: str) -> None:
        """Sends to this number fail as WhatsApp's lookup finds no account."""
        self.not_on_whatsapp.add(number)

    # ---------------------------------------------------------------------------------------------
    # Dispatch

    def __call__(self, request: RecordedRequest) -> Reply:
        """Answer one request like Evolution v2.3 would."""
        parts = [unquote(part) for part in request.path.strip("/").split("/")]
        try:
            if parts == ["instance", "create"] and request.method == "POST":
                return self._create(request)
            if parts == ["instance", "fetchInstances"] and request.method == "GET":
                return self._fetch_instances(request)
            route = _ROUTES.get((request.method, *parts[:2])) if len(parts) == 3 else None
            if route is None:
                return error(404, [f"Cannot {request.method} {request.path}"])
            return self._instance_call(route, parts[2], request)
        except _Invalid as invalid:
            return error(400, invalid.messages)

    def _authorised(self, request: RecordedRequest, instance: FakeInstance | None) -> bool:
        key = request.headers.get("apikey")
        return bool(key) and (key == self.global_key or (instance is not None and key == instance.token))

    def _instance_call(self, route: Route, name: str, request: RecordedRequest) -> Reply:
        # index.router guard order: instanceExistsGuard, then the apikey guard.
        instance = self.instances.get(name)
        if instance is None:
            return error(404, [f'The "{name}" instance does not exist'])
        if not self._authorised(request, instance):
            return error(401, "Unauthorized")
        body = _json_object(request) if request.method == "POST" else {}
        return route(self, instance, body, request)

    # ---------------------------------------------------------------------------------------------
    # Instances

    def _create(self, request: RecordedRequest) -> Reply:
        body = _json_object(request)
        name = body.get("instanceName")
        if isinstance(name, str) and name in self.instances:
            # instanceLoggedGuard runs before the apikey guard.
            return error(403, [f'This name "{name}" is already in use.'])
        if request.headers.get("apikey") != self.global_key:
            return error(401, "Unauthorized")
        _require_str(body, "instanceName")
        if body.get("integration") != INTEGRATION:
            raise _Invalid("Invalid integration")
        if "webhook" in body:
            _check_webhook(body["webhook"])
        instance = FakeInstance(name=body["instanceName"], token=str(uuid.uuid4()).upper())
        instance.webhook = body.get("webhook")
        self.instances[instance.name] = instance
        if body.get("qrcode") is True:
            self._start_linking(instance, None)
        return Reply(201, self._created(instance, body))

    def _created(self, instance: FakeInstance, body: dict[str, Any]) -> dict[str, Any]:
        webhook = body.get("webhook") or {}
        return {
            "instance": {
                "instanceName": instance.name,
                "instanceId": instance.id,
                "integration": INTEGRATION,
                "webhookWaBusiness": None,
                "accessTokenWaBusiness": "",
                "status": instance.state,
            },
            "hash": instance.token,
            "webhook": {
                "webhookUrl": webhook.get("url"),
                "webhookHeaders": webhook.get("headers"),
                "webhookByEvents": webhook.get("byEvents"),
                "webhookBase64": webhook.get("base64"),
            },
            "websocket": {},
            "rabbitmq": {},
            "nats": {},
            "sqs": {},
            "settings": {"groupsIgnore": body.get("groupsIgnore") is True, "rejectCall": False},
            "qrcode": self._qr_answer(instance),
        }

    def _fetch_instances(self, request: RecordedRequest) -> Reply:
        key = request.headers.get("apikey")
        if not key:
            return error(401, "Unauthorized")
        rows = list(self.instances.values())
        if key != self.global_key:
            rows = [instance for instance in rows if instance.token == key]
            if not rows:
                return error(401, "Unauthorized")
        wanted = request.query.get("instanceName")
        if wanted is not None:
            if wanted not in self.instances:
                return error(404, [f'Instance "{wanted}" not found'])
            rows = [instance for instance in rows if instance.name == wanted]
        return Reply(200, [_row(instance) for instance in rows])

    def _start_linking(self, instance: FakeInstance, number: str | None) -> None:
        instance.state = "connecting"
        count = int(instance.qrcode.get("count") or 0) + 1
        instance.qrcode = {
            "pairingCode": secrets.token_hex(4).upper() if number else None,
            "code": f"2@{secrets.token_urlsafe(24)},{secrets.token_urlsafe(8)}",
            "base64": f"data:image/png;base64,iVBORw0KGgo{secrets.token_hex(8)}",
            "count": count,
        }

    def _qr_answer(self, instance: FakeInstance) -> dict[str, Any]:
        return {key: instance.qrcode.get(key) for key in ("pairingCode", "code", "base64", "count")}

    def connect(self, instance: FakeInstance, body: dict[str, Any], request: RecordedRequest) -> Reply:
        """GET /instance/connect: the state when open; a QR (and pairing code with ?number=)."""
        if instance.state == "open":
            return Reply(200, {"instance": {"instanceName": instance.name, "state": "open"}})
        if instance.state == "close":
            # Only a closed instance starts a new session; a connecting one shows its current QR.
            self._start_linking(instance, request.query.get("number"))
        return Reply(200, self._qr_answer(instance))

    def connection_state(
        self, instance: FakeInstance, body: dict[str, Any], request: RecordedRequest
    ) -> Reply:
        """GET /instance/connectionState."""
        return Reply(200, {"instance": {"instanceName": instance.name, "state": instance.state}})

    def set_webhook(self, instance: FakeInstance, body: dict[str, Any], request: RecordedRequest) -> Reply:
        """POST /webhook/set: validate and keep the configuration."""
        if "webhook" not in body:
            raise _Invalid('requires property "webhook"')
        _check_webhook(body["webhook"])
        instance.webhook = body["webhook"]
        return Reply(201, {"id": instance.id, "instanceId": instance.id, **body["webhook"]})

    # ---------------------------------------------------------------------------------------------
    # Messages

    def send_text(self, instance: FakeInstance, body: dict[str, Any], request: RecordedRequest) -> Reply:
        """POST /message/sendText."""
        _check_metadata(body)
        _require_str(body, "text", allow_empty=True)
        return self._deliver(instance, body, "conversation", {"conversation": body["text"]})

    def send_media(self, instance: FakeInstance, body: dict[str, Any], request: RecordedRequest) -> Reply:
        """POST /message/sendMedia (by URL; the fake takes no uploads)."""
        _check_metadata(body)
        if body.get("mediatype") not in MEDIA_TYPES:
            raise _Invalid(f"mediatype is not one of enum values: {', '.join(sorted(MEDIA_TYPES))}")
        for name in ("mimetype", "caption", "fileName"):
            if name in body and not isinstance(body[name], str):
                raise _Invalid(f"{name} is not of a type(s) string")
        _require_url(body, "media")
        kind = _MEDIA_KEYS.get(body["mediatype"], "audioMessage")
        content = {"url": body["media"], "caption": body.get("caption"), "fileName": body.get("fileName")}
        return self._deliver(instance, body, kind, {kind: content})

    def send_audio(self, instance: FakeInstance, body: dict[str, Any], request: RecordedRequest) -> Reply:
        """POST /message/sendWhatsAppAudio: a voice note (ptt) by URL."""
        _check_metadata(body)
        _require_url(body, "audio")
        return self._deliver(
            instance, body, "audioMessage", {"audioMessage": {"url": body["audio"], "ptt": True}}
        )

    def send_presence(self, instance: FakeInstance, body: dict[str, Any], request: RecordedRequest) -> Reply:
        """POST /chat/sendPresence: "typing..." for ``delay`` ms, answered when it ends."""
        _check_metadata(body)
        if body.get("presence") not in PRESENCES:
            raise _Invalid(f"presence is not one of enum values: {', '.join(sorted(PRESENCES))}")
        delay = body.get("delay")
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise _Invalid('requires property "delay"')
        # sendPresence wraps every failure in BadRequestException(error.toString()).
        if instance.state != "open":
            return error(400, ["Error: Connection Closed"])
        if body["number"] in self.not_on_whatsapp:
            # The real one stringifies its own error object here.
            return error(400, ["[object Object]"])
        if self.hold_presence:
            time.sleep(delay / 1000)
        return Reply(201, {"presence": body["presence"]})

    def mark_read(self, instance: FakeInstance, body: dict[str, Any], request: RecordedRequest) -> Reply:
        """POST /chat/markMessageAsRead: readMessages, each {remoteJid, fromMe, id}."""
        keys = body.get("readMessages")
        if not isinstance(keys, list) or not keys:
            raise _Invalid('requires property "readMessages"')
        for key in keys:
            if not isinstance(key, dict) or not all(isinstance(key.get(k), str) for k in ("remoteJid", "id")):
                raise _Invalid("readMessages[] requires remoteJid and id")
            if not isinstance(key.get("fromMe"), bool):
                raise _Invalid("readMessages[].fromMe must be a boolean")
        if instance.state != "open":
            return error(400, ["Error: Connection Closed"])
        self.read.extend(keys)
        return Reply(201, {"message": "Read messages", "read": "success"})

    def _deliver(
        self, instance: FakeInstance, body: dict[str, Any], kind: str, message: dict[str, Any]
    ) -> Reply:
        number = body["number"]
        if instance.state != "open":
            # whatsappNumber() runs outside the send's try: Baileys' Boom reaches the error handler.
            return error(500, "Connection Closed")
        if number in self.not_on_whatsapp:
            return error(400, [{"jid": f"{number}@s.whatsapp.net", "exists": False, "number": number}])
        message_id = f"3EB0{next(self._ids):06X}{secrets.token_hex(6).upper()}"
        self.sent.append({"id": message_id, "instance": instance.name, **body})
        quoted = body.get("quoted")
        return Reply(
            201,
            {
                "key": {"remoteJid": f"{number}@s.whatsapp.net", "fromMe": True, "id": message_id},
                "pushName": "Você",
                "status": "PENDING",
                "message": message,
                "contextInfo": {"stanzaId": quoted["key"]["id"]} if quoted else None,
                "messageType": kind,
                "messageTimestamp": int(time.time()),
                "instanceId": instance.id,
                "source": "unknown",
            },
        )


_ROUTES: dict[tuple[str, ...], Route] = {
    ("GET", "instance", "connect"): FakeEvolution.connect,
    ("GET", "instance", "connectionState"): FakeEvolution.connection_state,
    ("POST", "webhook", "set"): FakeEvolution.set_webhook,
    ("POST", "message", "sendText"): FakeEvolution.send_text,
    ("POST", "message", "sendMedia"): FakeEvolution.send_media,
    ("POST", "message", "sendWhatsAppAudio"): FakeEvolution.send_audio,
    ("POST", "chat", "sendPresence"): FakeEvolution.send_presence,
    ("POST", "chat", "markMessageAsRead"): FakeEvolution.mark_read,
}


# --------------------------------------------------------------------------------------------------
# Validation (the parts of Evolution's JSON schemas our adapter's bodies touch)


def _json_object(request: RecordedRequest) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError as exc:
        raise _Invalid(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _Invalid("instance is not of a type(s) object")
    return body


def _require_str(body: dict[str, Any], name: str, *, allow_empty: bool = False) -> None:
    if name not in body:
        raise _Invalid(f'requires property "{name}"')
    if not isinstance(body[name], str):
        raise _Invalid(f"{name} is not of a type(s) string")
    if not allow_empty and not body[name]:
        raise _Invalid(f'The "{name}" cannot be empty')


def _require_url(body: dict[str, Any], name: str) -> None:
    _require_str(body, name)
    if not body[name].startswith(("http://", "https://")):
        raise _Invalid("Owned media must be a url or base64")


def _check_metadata(body: dict[str, Any]) -> None:
    """number, and quoted.key.id when there is a quote."""
    _require_str(body, "number")
    if "quoted" in body:
        quoted = body["quoted"]
        key = quoted.get("key") if isinstance(quoted, dict) else None
        if not isinstance(key, dict) or not isinstance(key.get("id"), str) or not key["id"]:
            raise _Invalid('quoted.key requires property "id"')


def _check_webhook(webhook: object) -> None:
    """webhookSchema: enabled and url required, headers an object, events known names."""
    if not isinstance(webhook, dict):
        raise _Invalid("webhook is not of a type(s) object")
    if not isinstance(webhook.get("enabled"), bool):
        raise _Invalid('webhook requires property "enabled"')
    _require_str(webhook, "url")
    if "headers" in webhook and not isinstance(webhook["headers"], dict):
        raise _Invalid("webhook.headers is not of a type(s) object")
    for name in ("byEvents", "base64"):
        if name in webhook and not isinstance(webhook[name], bool):
            raise _Invalid(f"webhook.{name} is not of a type(s) boolean")
    events = webhook.get("events", [])
    if not isinstance(events, list) or not all(event in KNOWN_EVENTS for event in events):
        raise _Invalid("webhook.events contains an unknown event")


def _row(instance: FakeInstance) -> dict[str, Any]:
    """A fetchInstances row (the fields that matter, plus a few of the others)."""
    return {
        "id": instance.id,
        "name": instance.name,
        "connectionStatus": instance.state,
        "ownerJid": instance.owner_jid,
        "profileName": None,
        "integration": INTEGRATION,
        "token": instance.token,
        "clientName": "evolution_exchange",
        "disconnectionReasonCode": None,
        "Setting": {"groupsIgnore": True},
        "_count": {"Message": 0, "Contact": 0, "Chat": 0},
    }
