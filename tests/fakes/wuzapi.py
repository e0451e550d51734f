"""A fake WuzAPI server (asternic/wuzapi REST) for FakeHttpServer.

It keeps users (token, webhook, events) and their whatsmeow session (client started, socket
connected, device logged in), and answers like upstream: ``{code, data, success}`` or
``{code, error, success: false}``; user calls authenticate with the ``Token`` header, admin calls with
``Authorization``. Sends echo the ``Id`` they were given (or make one up) and are recorded in ``sent``.
Error texts follow the older builds' capitalisation ("No session", "Unauthorized") for user calls and
the newer ones' for the rest; the adapter matches them case-insensitively.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import RecordedRequest, Reply

ADMIN_TOKEN = "wz-admin-0123456789"
QR_DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAQAAAAEAAQMAAABmvDolAAAABlBMVEX"
LINKING_CODE = "9H7K-2QXZ"
# A subset of upstream's supportedEventTypes (constants.go).
SUPPORTED_EVENTS = frozenset(
    {"Message", "ReadReceipt", "Connected", "Disconnected", "LoggedOut", "TemporaryBan", "QR", "All"}
)
_MEDIA_FIELDS = {"image": "Image", "video": "Video", "audio": "Audio", "document": "Document"}


@dataclass(slots=True)
class FakeUser:
    """One WuzAPI user and the state of its whatsmeow session."""

    id: str
    name: str
    token: str
    webhook: str = ""
    events: str = ""
    # A whatsmeow client exists (after /session/connect); without one: "No session".
    session: bool = False
    connected: bool = False
    logged_in: bool = False
    jid: str = ""
    # How many more QR / pairing requests answer "not connected" (the socket still coming up).
    warming_up: int = 0
    # No QR code yet (whatsmeow has not received one).
    qr: str = QR_DATA_URL


@dataclass(slots=True)
class FakeWuzapi:
    """The request handler: ``FakeHttpServer(FakeWuzapi())``."""

    admin_token: str = ADMIN_TOKEN
    # "old" answers /session/status with {Connected, LoggedIn}; "new" with {connected, loggedIn, ...}.
    status_style: str = "old"
    users: dict[str, FakeUser] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    presences: list[dict[str, Any]] = field(default_factory=list)
    marked_read: list[dict[str, Any]] = field(default_factory=list)

    def add_user(self, name: str, token: str, **state: Any) -> FakeUser:
        """Register a user directly (as if created earlier), with session state overrides."""
        user = FakeUser(id=secrets.token_hex(16), name=name, token=token, **state)
        self.users[token] = user
        return user

    def __call__(self, request: RecordedRequest) -> Reply:
        if request.path.startswith("/admin/"):
            return self._admin(request)
        route = _USER_ROUTES.get((request.method, request.path))
        if route is None:
            return Reply(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})
        user = self.users.get(request.headers.get("token") or request.query.get("token", ""))
        if user is None:
            return _error(401, "Unauthorized")
        return route(self, request, user)

    # ----------------------------------------------------------------------------------------------
    # Admin

    def _admin(self, request: RecordedRequest) -> Reply:
        if request.headers.get("authorization") != self.admin_token:
            return _error(401, "unauthorized")
        if (request.method, request.path) == ("GET", "/admin/users"):
            return _ok([self._listed(user) for user in self.users.values()])
        if (request.method, request.path) == ("POST", "/admin/users"):
            return self._add_user(request.json())
        return _error(404, "not found")

    def _add_user(self, body: dict[str, Any]) -> Reply:
        token = str(body.get("token", ""))
        if token in self.users:
            return _error(409, "user with this token already exists")
        events = [event.strip() for event in str(body.get("events", "")).split(",") if event.strip()]
        invalid = [event for event in events if event not in SUPPORTED_EVENTS]
        if invalid:
            return Reply(
                400,
                {
                    "code": 400,
                    "error": "invalid event type",
                    "details": f"invalid event: {invalid[0]}",
                    "success": False,
                },
            )
        user = self.add_user(str(body.get("name", "")), token, webhook=str(body.get("webhook", "")))
        user.events = ",".join(events)
        data = {
            "id": user.id,
            "name": user.name,
            "token": token,
            "webhook": user.webhook,
            "events": user.events,
        }
        return Reply(201, {"code": 201, "data": data, "success": True})

    @staticmethod
    def _listed(user: FakeUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "name": user.name,
            "token": user.token,
            "webhook": user.webhook,
            "jid": user.jid,
            "qrcode": "",
            "connected": user.session and user.connected,
            "loggedIn": user.session and user.logged_in,
            "expiration": 0,
            "events": user.events,
        }

    # ----------------------------------------------------------------------------------------------
    # Session

    def _connect(self, request: RecordedRequest, user: FakeUser) -> Reply:
        if user.session and user.connected:
            return _error(500, "already connected")
        body = request.json()
        events = [event for event in body.get("Subscribe") or [] if event in SUPPORTED_EVENTS]
        user.events = ",".join(events) or user.events
        user.session = True
        user.connected = bool(body.get("Immediate")) or user.connected
        return _ok({"details": "Connected!", "jid": user.jid, "webhook": user.webhook, "events": user.events})

    def _not_ready(self, user: FakeUser) -> Reply | None:
        if not user.session:
            return _error(500, "no session")
        if user.warming_up > 0 or not user.connected:
            user.warming_up = max(0, user.warming_up - 1)
            return _error(500, "not connected")
        return None

    def _qr(self, request: RecordedRequest, user: FakeUser) -> Reply:
        waiting = self._not_ready(user)
        if waiting is not None:
            return waiting
        if user.logged_in:
            return _error(500, "already logged in")
        return _ok({"QRCode": user.qr})

    def _pairphone(self, request: RecordedRequest, user: FakeUser) -> Reply:
        if not user.session:
            return _error(500, "no session")
        if not request.json().get("Phone"):
            return _error(400, "missing Phone in Payload")
        if user.logged_in:
            return _error(400, "already paired")
        waiting = self._not_ready(user)
        if waiting is not None:
            return _error(400, "websocket not connected") if waiting.status == 500 else waiting
        return _ok({"LinkingCode": LINKING_CODE})

    def _status(self, request: RecordedRequest, user: FakeUser) -> Reply:
        if not user.session:
            return _error(500, "No session")
        if self.status_style == "old":
            return _ok({"Connected": user.connected, "LoggedIn": user.logged_in})
        return _ok(
            {
                "id": user.id,
                "name": user.name,
                "connected": user.connected,
                "loggedIn": user.logged_in,
                "jid": user.jid,
                "webhook": user.webhook,
                "events": user.events,
            }
        )

    def _webhook(self, request: RecordedRequest, user: FakeUser) -> Reply:
        body = request.json()
        user.webhook = str(body.get("webhookurl") or body.get("webhookURL") or "")
        events = [event for event in body.get("events") or [] if event in SUPPORTED_EVENTS]
        if events:
            user.events = ",".join(events)
        return _ok({"webhook": user.webhook})

    # ----------------------------------------------------------------------------------------------
    # Chat

    def _presence(self, request: RecordedRequest, user: FakeUser) -> Reply:
        if not user.session:
            return _error(500, "No session")
        body = request.json()
        if not body.get("Phone"):
            return _error(400, "missing Phone in Payload")
        if not body.get("State"):
            return _error(400, "missing State in Payload")
        self.presences.append(body)
        return _ok({"Details": "Chat presence set successfuly"})

    def _mark_read(self, request: RecordedRequest, user: FakeUser) -> Reply:
        """POST /chat/markread: {Id: [message ids], Chat: the chat's JID}."""
        if not user.session:
            return _error(500, "No session")
        body = request.json()
        ids = body.get("Id")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            return _error(400, "missing Id in Payload")
        if not isinstance(body.get("Chat"), str) or "@" not in body["Chat"]:
            return _error(400, "missing Chat in Payload")
        self.marked_read.append(body)
        return _ok({"Details": "Message(s) marked as read"})

    def _send(self, request: RecordedRequest, user: FakeUser) -> Reply:
        if not user.session:
            return _error(500, "No session")
        body = request.json()
        kind = request.path.rsplit("/", 1)[-1]
        invalid = _invalid_send(kind, body)
        if invalid is not None:
            return _error(400, invalid)
        if not user.connected:
            return _error(500, "error sending message: websocket not connected")
        if not user.logged_in:
            return _error(500, "error sending message: the store doesn't contain a device JID")
        message_id = body.get("Id") or "3EB0" + secrets.token_hex(9).upper()
        self.sent.append({"kind": kind, **body, "Id": message_id})
        return _ok({"Details": "Sent", "Id": message_id, "Timestamp": int(time.time())})


def _invalid_send(kind: str, body: dict[str, Any]) -> str | None:
    """Upstream's 400 text for a send body it rejects, or None."""
    if not body.get("Phone"):
        return "missing Phone in Payload"
    field_name = _MEDIA_FIELDS.get(kind, "Body")
    value = body.get(field_name)
    if not value:
        return f"missing {field_name} in Payload"
    if kind in _MEDIA_FIELDS and not str(value).startswith(("data:", "http://", "https://")):
        return f'{field_name} data should start with "data:" or be a valid HTTP URL'
    if kind == "document" and not body.get("FileName"):
        return "missing FileName in Payload"
    context = body.get("ContextInfo") or {}
    if bool(context.get("StanzaId")) != bool(context.get("Participant")):
        return "missing Participant in ContextInfo"
    return None


def _ok(data: Any) -> Reply:
    return Reply(200, {"code": 200, "data": data, "success": True})


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"code": status, "error": message, "success": False})


_Route = Callable[[FakeWuzapi, RecordedRequest, FakeUser], Reply]
_USER_ROUTES: dict[tuple[str, str], _Route] = {
    ("POST", "/session/connect"): FakeWuzapi._connect,
    ("GET", "/session/qr"): FakeWuzapi._qr,
    ("POST", "/session/pairphone"): FakeWuzapi._pairphone,
    ("GET", "/session/status"): FakeWuzapi._status,
    ("POST", "/webhook"): FakeWuzapi._webhook,
    ("POST", "/chat/presence"): FakeWuzapi._presence,
    ("POST", "/chat/markread"): FakeWuzapi._mark_read,
    **{("POST", f"/chat/send/{kind}"): FakeWuzapi._send for kind in ("text", *_MEDIA_FIELDS)},
}
