"""WuzAPI REST (asternic/wuzapi, whatsmeow): sending messages and managing instances.

User calls carry the header ``Token: <user token>`` (``account.api_key``); the admin calls that
create and list users carry ``Authorization: <admin token>`` (``account.auth_token``, see
``WuzapiApi``). Every answer is wrapped ``{code, data, success}`` or ``{code, error, success: false}``
(FORMATS.md section 4.6, tests/fixtures/examples/wuzapi_rest_examples.json). As read upstream
(snapshot 79ee4cd and the newer ``handlers.go`` @ 02a462c):

* sends: ``POST /chat/send/{text,image,video,audio,document}`` with Go-struct field names
  (``Phone``, ``Body``/``Image``/``Video``/``Audio``/``Document``, ``Caption``, ``FileName``, ``Id``,
  ``ContextInfo: {StanzaId, Participant}`` - upstream insists on both or neither). The answer is
  ``{Details: "Sent", Id, Timestamp}``. We always pass ``Id`` = ``provider_message_id_for(our id)``:
  whatsmeow sends under the given id, so the id the receipts will carry is known before the call and
  a send whose answer was lost can still be reconciled from its receipts.
* media by URL: builds since mid-2025 fetch an ``http(s)`` URL given in the media field themselves
  (``isHTTPURL`` + ``fetchURLBytes``); older builds accept only ``data:`` URLs and answer 400 to a URL,
  which classifies as FIX_REQUEST before anything is sent. We never download and inline media.

Errors and how they are classified: providers/wuzapi_errors.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from messaging_whatsapp.providers.base import ConnectChallenge, GatewayInstance, ProviderName
from messaging_whatsapp.providers.events import ConnectionState
from messaging_whatsapp.providers.http import json_body, request
from messaging_whatsapp.providers.jid import chat_jid
from messaging_whatsapp.providers.outbound import (
    ErrorClass,
    OutboundMessage,
    SenderAccount,
    SendError,
    SendResult,
)
from messaging_whatsapp.providers.wuzapi_errors import error_for, error_text, mentions
from messaging_whatsapp.providers.wuzapi_send import recipient_phone, send_request

# Events the webhook receiver (providers/wuzapi.py) turns into something: messages, receipts, the
# session's lifecycle (TemporaryBan pauses the channel), and QR codes for the connect screen.
WEBHOOK_EVENTS = ("Message", "ReadReceipt", "Connected", "Disconnected", "LoggedOut", "TemporaryBan", "QR")
_DATA_URL_MARK = "base64,"

# Connect-time answers meaning "the session is still starting": ask again shortly.
_NOT_READY = ("no session", "not connected")

PresenceState = Literal["composing", "paused", "recording"]


# --------------------------------------------------------------------------------------------------
# Addresses and credentials (the send request itself is built in providers/wuzapi_send.py)


def _digits(value: str) -> str:
    """Only the digits of a phone number typed by a person."""
    return "".join(char for char in value if char.isdigit())


def _user_headers(account: SenderAccount) -> dict[str, str]:
    if not account.api_key:
        raise SendError(ErrorClass.PAUSE_CHANNEL, "missing_credentials", "WuzAPI account has no api_key")
    return {"Token": account.api_key}


def _admin_headers(account: SenderAccount) -> dict[str, str]:
    if not account.auth_token:
        raise SendError(
            ErrorClass.FIX_REQUEST, "missing_credentials", "WuzAPI admin token (auth_token) is not set"
        )
    return {"Authorization": account.auth_token}


def _user_name(account: SenderAccount) -> str:
    if not account.instance_name:
        raise SendError(ErrorClass.FIX_REQUEST, "missing_credentials", "WuzAPI account has no instance_name")
    return account.instance_name


def _url(account: SenderAccount, path: str) -> str:
    return account.api_url.rstrip("/") + path


# --------------------------------------------------------------------------------------------------
# Answers (errors are classified in providers/wuzapi_errors.py)


def _data(response: httpx.Response) -> Any:
    """The ``data`` of a success answer (older admin answers are not wrapped: the body itself)."""
    body = json_body(response)
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    return body


def _opt_str(parent: Mapping[str, Any], *keys: str) -> str | None:
    """The first non-empty string among ``keys`` (builds differ in their casing)."""
    for key in keys:
        value = parent.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _flag(parent: Mapping[str, Any], *keys: str) -> bool:
    return any(parent.get(key) is True for key in keys)


async def _call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    if body is None:
        return await request(client, method, url, headers=headers)
    return await request(client, method, url, headers=headers, json=body)


def _sent_id(response: httpx.Response, expected: str) -> str:
    """The id WuzAPI says it sent under; ours when the answer does not say."""
    data = _data(response)
    if isinstance(data, dict):
        returned = _opt_str(data, "Id", "id")
        if returned:
            # Equal to ours on upstream; a build that ignored our Id reports the one receipts will carry.
            return returned
    return expected


# --------------------------------------------------------------------------------------------------
# Instances


def webhook_target(webhook_url: str, webhook_secret: str) -> str:
    """The webhook URL with the secret as its last path segment (WuzAPI cannot send headers)."""
    parts = urlsplit(webhook_url)
    if not webhook_secret or webhook_secret in parts.path.split("/"):
        return webhook_url
    path = f"{parts.path.rstrip('/')}/{quote(webhook_secret, safe='')}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _state(connected: bool, logged_in: bool) -> ConnectionState:
    if connected and logged_in:
        return ConnectionState.OPEN
    return ConnectionState.CONNECTING if connected else ConnectionState.CLOSE


def _owner(row: Mapping[str, Any]) -> str | None:
    return _opt_str(row, "jid", "Jid", "JID")


def _listed(row: Mapping[str, Any]) -> GatewayInstance:
    """One user of ``GET /admin/users`` as an instance."""
    state = _state(_flag(row, "connected", "Connected"), _flag(row, "loggedIn", "LoggedIn"))
    name = _opt_str(row, "name") or str(row.get("id", ""))
    return GatewayInstance(name=name, state=state, token=_opt_str(row, "token"), owner=_owner(row))


def _qr_image(data: Any) -> str | None:
    """The PNG's base64 from ``{QRCode: "data:image/png;base64,..."}``; None while there is none."""
    code = _opt_str(data, "QRCode", "qrcode") if isinstance(data, dict) else None
    if code is None:
        return None
    return code.split(_DATA_URL_MARK, 1)[1] if _DATA_URL_MARK in code else code


def _pairing_code(data: Any) -> str | None:
    return _opt_str(data, "LinkingCode", "linkingCode") if isinstance(data, dict) else None


class WuzapiApi:
    """SendProvider and GatewayProvider for WuzAPI.

    The WuzAPI admin token (the server's ``WUZAPI_ADMIN_TOKEN``, needed only to create and list
    users) is read from ``account.auth_token``: SenderAccount has no field of its own for it, and
    auth_token is otherwise unused for WuzAPI. ``account.api_key`` is the user's own token; the one
    ``create_instance`` returns (newly generated) is what to store as the instance's api_key.
    """

    name: ProviderName = ProviderName.WUZAPI

    def __init__(self, *, qr_attempts: int = 5, qr_interval: float = 1.0) -> None:
        # /session/connect with Immediate returns before whatsmeow has a socket or a QR code: how
        # often, and how far apart, connect asks for the code (or the pairing code) before giving up.
        self.qr_attempts = max(1, qr_attempts)
        self.qr_interval = qr_interval

    async def send(
        self, client: httpx.AsyncClient, account: SenderAccount, message: OutboundMessage
    ) -> SendResult:
        """Send one message under its deterministic id; raises SendError (classified) otherwise."""
        path, body = send_request(message)
        response = await _call(client, "POST", _url(account, path), _user_headers(account), body)
        if not response.is_success:
            raise error_for(response)
        return SendResult(provider_message_id=_sent_id(response, body["Id"]))

    async def show_typing(
        self, client: httpx.AsyncClient, account: SenderAccount, to: str, seconds: float
    ) -> None:
        """Show "typing..." for about ``seconds``, then return (WuzAPI answers at once)."""
        await self.send_presence(client, account, to, "composing")
        await asyncio.sleep(seconds)

    async def show_reply_typing(
        self, client: httpx.AsyncClient, account: SenderAccount, chat: str, newest_inbound_id: str
    ) -> None:
        """ "typing..." until the answer arrives (WhatsApp drops it by itself after a while)."""
        await self.send_presence(client, account, chat, "composing")

    async def send_presence(
        self,
        client: httpx.AsyncClient,
        account: SenderAccount,
        to: str,
        state: PresenceState = "composing",
    ) -> None:
        """Show "typing..." (or "recording audio...", or stop) in the customer's chat."""
        media = "audio" if state == "recording" else ""
        body = {"Phone": recipient_phone(to), "State": "composing" if media else state, "Media": media}
        response = await _call(client, "POST", _url(account, "/chat/presence"), _user_headers(account), body)
        if not response.is_success:
            raise error_for(response)

    async def mark_chat_read(
        self, client: httpx.AsyncClient, account: SenderAccount, chat: str, provider_message_ids: list[str]
    ) -> None:
        """POST /chat/markread: the person's messages by id, with their chat's JID."""
        body = {"Id": provider_message_ids, "Chat": chat_jid(chat)}
        response = await _call(client, "POST", _url(account, "/chat/markread"), _user_headers(account), body)
        if not response.is_success:
            raise error_for(response)

    async def create_instance(
        self, client: httpx.AsyncClient, account: SenderAccount, webhook_url: str, webhook_secret: str
    ) -> GatewayInstance:
        """Create the WuzAPI user (admin call) with a new random token, our webhook and events."""
        name = _user_name(account)
        token = secrets.token_urlsafe(32)
        body = {
            "name": name,
            "token": token,
            "webhook": webhook_target(webhook_url, webhook_secret),
            "events": ",".join(WEBHOOK_EVENTS),
        }
        response = await _call(client, "POST", _url(account, "/admin/users"), _admin_headers(account), body)
        if not response.is_success:
            raise error_for(response)
        data = _data(response)
        created = _opt_str(data, "token") if isinstance(data, dict) else None
        return GatewayInstance(name=name, state=ConnectionState.CLOSE, token=created or token)

    async def register_webhook(
        self, client: httpx.AsyncClient, account: SenderAccount, webhook_url: str, webhook_secret: str
    ) -> None:
        """Point the user's webhook at us (secret in the URL path) with the events we need."""
        body = {"webhookURL": webhook_target(webhook_url, webhook_secret), "events": list(WEBHOOK_EVENTS)}
        response = await _call(client, "POST", _url(account, "/webhook"), _user_headers(account), body)
        if not response.is_success:
            raise error_for(response)

    async def connect(
        self, client: httpx.AsyncClient, account: SenderAccount, phone: str | None = None
    ) -> ConnectChallenge:
        """Start the session, then fetch its QR code or, with ``phone``, a pairing code."""
        await self._start_session(client, account)
        if phone:
            return await self._pairing(client, account, _digits(phone))
        return await self._qr(client, account)

    async def status(self, client: httpx.AsyncClient, account: SenderAccount) -> GatewayInstance:
        """The session's state from ``GET /session/status`` (no session at all reads as closed)."""
        response = await _call(client, "GET", _url(account, "/session/status"), _user_headers(account))
        name = account.instance_name or account.display_number
        if not response.is_success:
            if mentions(error_text(response).lower(), ("no session",)):
                return GatewayInstance(name=name, state=ConnectionState.CLOSE)
            raise error_for(response)
        data = _data(response)
        row: Mapping[str, Any] = data if isinstance(data, dict) else {}
        state = _state(_flag(row, "Connected", "connected"), _flag(row, "LoggedIn", "loggedIn"))
        return GatewayInstance(name=_opt_str(row, "name") or name, state=state, owner=_owner(row))

    async def list_instances(
        self, client: httpx.AsyncClient, account: SenderAccount
    ) -> list[GatewayInstance]:
        """Every WuzAPI user, with its token and session state (admin call)."""
        response = await _call(client, "GET", _url(account, "/admin/users"), _admin_headers(account))
        if not response.is_success:
            raise error_for(response)
        data = _data(response)
        rows = data if isinstance(data, list) else []
        return [_listed(row) for row in rows if isinstance(row, dict)]

    # ----------------------------------------------------------------------------------------------

    async def _start_session(self, client: httpx.AsyncClient, account: SenderAccount) -> None:
        body = {"Subscribe": list(WEBHOOK_EVENTS), "Immediate": True}
        response = await _call(
            client, "POST", _url(account, "/session/connect"), _user_headers(account), body
        )
        if not response.is_success and "already connected" not in error_text(response).lower():
            raise error_for(response)

    async def _qr(self, client: httpx.AsyncClient, account: SenderAccount) -> ConnectChallenge:
        for attempt in range(self.qr_attempts):
            response = await _call(client, "GET", _url(account, "/session/qr"), _user_headers(account))
            if response.is_success:
                image = _qr_image(_data(response))
                if image:
                    # WuzAPI's REST gives only the rendered PNG; the code's text is not exposed.
                    return ConnectChallenge(ConnectionState.CONNECTING, qr_image_base64=image)
            else:
                finished = self._finished_or_raise(response, ("already logged",))
                if finished is not None:
                    return finished
            await self._pause(attempt)
        return ConnectChallenge(ConnectionState.CONNECTING)

    async def _pairing(
        self, client: httpx.AsyncClient, account: SenderAccount, phone: str
    ) -> ConnectChallenge:
        url = _url(account, "/session/pairphone")
        for attempt in range(self.qr_attempts):
            response = await _call(client, "POST", url, _user_headers(account), {"Phone": phone})
            if response.is_success:
                code = _pairing_code(_data(response))
                if code:
                    return ConnectChallenge(ConnectionState.CONNECTING, pairing_code=code)
            else:
                finished = self._finished_or_raise(response, ("already paired", "already logged"))
                if finished is not None:
                    return finished
            await self._pause(attempt)
        return ConnectChallenge(ConnectionState.CONNECTING)

    @staticmethod
    def _finished_or_raise(response: httpx.Response, done: tuple[str, ...]) -> ConnectChallenge | None:
        """OPEN when the error says the phone is linked, None while the session starts, else raise."""
        text = error_text(response).lower()
        if mentions(text, done):
            return ConnectChallenge(ConnectionState.OPEN)
        if mentions(text, _NOT_READY):
            return None
        raise error_for(response)

    async def _pause(self, attempt: int) -> None:
        if attempt + 1 < self.qr_attempts:
            await asyncio.sleep(self.qr_interval)


wuzapi_api = WuzapiApi()
