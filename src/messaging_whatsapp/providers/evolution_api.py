"""Evolution API v2 REST (Baileys channel): sending messages and managing instances.

Every call carries the header ``apikey``: the instance token for instance calls, the global key for
``/instance/create`` and for listing every instance. Shapes as read in EvolutionAPI/evolution-api
v2.3.6 (FORMATS.md section 3.6, tests/fixtures/examples/evolution_rest_examples.json):

* sends answer **201** with the stored message (``key.id`` is the WhatsApp message id the receipts
  name); text ``POST /message/sendText/{instance}``, image/video/document ``/message/sendMedia``,
  voice notes ``/message/sendWhatsAppAudio``, typing ``/chat/sendPresence`` (answers only after the
  typing delay has passed).

Errors and how they are classified: providers/evolution_errors.py.

Templates do not exist on a WhatsApp-Web gateway and reply buttons are not delivered reliably by
current WhatsApp to Baileys sessions, so buttons go out as a numbered text.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from messaging_whatsapp.providers import jid
from messaging_whatsapp.providers.base import (
    WEBHOOK_SECRET_HEADER,
    ConnectChallenge,
    GatewayInstance,
    ProviderName,
)
from messaging_whatsapp.providers.events import ConnectionState
from messaging_whatsapp.providers.evolution_errors import error_for
from messaging_whatsapp.providers.http import json_body, request
from messaging_whatsapp.providers.outbound import (
    ErrorClass,
    OutboundMedia,
    OutboundMediaType,
    OutboundMessage,
    SenderAccount,
    SendError,
    SendResult,
)

# What the receiver needs: messages in and echoed, receipts, session state, QR codes.
WEBHOOK_EVENTS = ("MESSAGES_UPSERT", "MESSAGES_UPDATE", "SEND_MESSAGE", "CONNECTION_UPDATE", "QRCODE_UPDATED")
INTEGRATION = "WHATSAPP-BAILEYS"
# How long "typing..." shows before a message when the caller does not say.
DEFAULT_PRESENCE_MS = 2000
# How long "typing..." shows while an AI answer is prepared (a model answers in a few seconds).
REPLY_TYPING_MS = 5000

_DATA_URL_PREFIX = "base64,"
_MAX_TITLE = 300

_STATES = {state.value: state for state in ConnectionState}


# --------------------------------------------------------------------------------------------------
# Request plumbing


def _api_key(account: SenderAccount) -> str:
    if not account.api_key:
        raise SendError(ErrorClass.PAUSE_CHANNEL, "missing_credentials", "Evolution account has no api_key")
    return account.api_key


def _instance_name(account: SenderAccount) -> str:
    if not account.instance_name:
        raise SendError(
            ErrorClass.PAUSE_CHANNEL, "missing_credentials", "Evolution account has no instance_name"
        )
    return account.instance_name


def _instance(account: SenderAccount) -> str:
    """The instance name as a URL path segment."""
    return quote(_instance_name(account), safe="")


def _url(account: SenderAccount, path: str) -> str:
    return f"{account.api_url.rstrip('/')}{path}"


async def _call(
    client: httpx.AsyncClient,
    account: SenderAccount,
    method: str,
    path: str,
    **kwargs: Any,
) -> Any:
    """One REST call: the answer's JSON on 2xx, else the classified SendError."""
    headers = {"apikey": _api_key(account)}
    response = await request(client, method, _url(account, path), headers=headers, **kwargs)
    if not response.is_success:
        raise error_for(response)
    return json_body(response)


def _bad_answer(what: str, body: object) -> SendError:
    return SendError(ErrorClass.RETRY, "bad_response", f"Evolution {what}: unexpected answer {body!r:.200}")


# --------------------------------------------------------------------------------------------------
# Message bodies


def _content_count(message: OutboundMessage) -> int:
    contents = (message.text, message.media, message.template, message.buttons)
    return sum(content is not None for content in contents)


def _check_sendable(message: OutboundMessage) -> None:
    """Refuse, before any call, what the gateway cannot send."""
    if _content_count(message) != 1:
        raise SendError(
            ErrorClass.FIX_REQUEST, "invalid_message", "exactly one of text/media/template/buttons"
        )
    if message.template is not None:
        raise SendError(
            ErrorClass.FIX_REQUEST,
            "template_unsupported",
            "Evolution (WhatsApp Web) has no message templates; send text instead",
        )


def _media_body(media: OutboundMedia) -> tuple[str, dict[str, Any]]:
    if media.type is OutboundMediaType.AUDIO:
        # A voice note has no caption or file name on WhatsApp; Evolution converts the file itself.
        return "sendWhatsAppAudio", {"audio": media.url}
    body: dict[str, Any] = {"mediatype": media.type.value, "media": media.url}
    # No mimetype: Evolution derives it from the file name, the URL or the download's content type.
    if media.caption:
        body["caption"] = media.caption
    if media.filename:
        body["fileName"] = media.filename
    return "sendMedia", body


def _send_request(message: OutboundMessage) -> tuple[str, dict[str, Any]]:
    """(endpoint, JSON body) of the send call for a checked message."""
    if message.media is not None:
        endpoint, body = _media_body(message.media)
    else:
        text = message.buttons.as_numbered_text() if message.buttons is not None else message.text
        endpoint, body = "sendText", {"text": text}
    body = {"number": message.to, **body}
    if message.reply_to:
        # Evolution looks the quoted message up by id in its store; unknown ids send unquoted.
        body["quoted"] = {"key": {"id": message.reply_to}}
    return endpoint, body


def _message_id(body: object) -> str:
    key = body.get("key") if isinstance(body, dict) else None
    message_id = key.get("id") if isinstance(key, dict) else None
    if not isinstance(message_id, str) or not message_id:
        # Evolution took the message (2xx) but we cannot tell which one it is: only receipts can.
        raise SendError(
            ErrorClass.UNKNOWN_OUTCOME,
            "missing_message_id",
            f"Evolution accepted without key.id: {body!r:.200}",
        )
    return message_id


# --------------------------------------------------------------------------------------------------
# Instances


def _webhook_config(webhook_url: str, webhook_secret: str) -> dict[str, Any]:
    """The instance webhook: one URL for every event, our secret in a header, no inline media."""
    return {
        "enabled": True,
        "url": webhook_url,
        "headers": {WEBHOOK_SECRET_HEADER: webhook_secret},
        "byEvents": False,
        "base64": False,
        "events": list(WEBHOOK_EVENTS),
    }


def _state(value: object) -> ConnectionState:
    """Evolution's state string; anything unknown ("refused", missing) counts as closed."""
    return _STATES.get(value, ConnectionState.CLOSE) if isinstance(value, str) else ConnectionState.CLOSE


def _opt_str(parent: dict[str, Any], key: str) -> str | None:
    value = parent.get(key)
    return value if isinstance(value, str) and value else None


def _strip_data_url(image: str | None) -> str | None:
    """The bare base64 of a ``data:image/png;base64,...`` URL."""
    if image is None:
        return None
    _, separator, data = image.partition(_DATA_URL_PREFIX)
    return data if separator else image


def _challenge(body: object) -> ConnectChallenge:
    """A connect answer: QR/pairing code, or the instance's state when it is already open."""
    if not isinstance(body, dict):
        raise _bad_answer("connect", body)
    if body.get("error") is True:
        # connectToWhatsapp catches its own failures and answers 200 {error: true, message}.
        raise SendError(ErrorClass.RETRY, "connect_failed", str(body.get("message"))[:_MAX_TITLE])
    instance = body.get("instance")
    if isinstance(instance, dict) and _state(instance.get("state")) is ConnectionState.OPEN:
        return ConnectChallenge(state=ConnectionState.OPEN)
    qrcode = body.get("qrcode")
    qr = qrcode if isinstance(qrcode, dict) else body
    return ConnectChallenge(
        state=ConnectionState.CONNECTING,
        qr_code=_opt_str(qr, "code"),
        qr_image_base64=_strip_data_url(_opt_str(qr, "base64")),
        pairing_code=_opt_str(qr, "pairingCode"),
    )


def _token(value: object) -> str | None:
    # v2.3 answers hash as the token itself; early v2 releases wrapped it as {apikey}.
    if isinstance(value, dict):
        value = value.get("apikey")
    return value if isinstance(value, str) and value else None


def _created(body: object, fallback_name: str) -> GatewayInstance:
    instance = body.get("instance") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(instance, dict):
        raise _bad_answer("instance/create", body)
    return GatewayInstance(
        name=_opt_str(instance, "instanceName") or fallback_name,
        state=_state(instance.get("status")),
        token=_token(body.get("hash")),
    )


def _listed(row: object) -> GatewayInstance:
    if not isinstance(row, dict) or not _opt_str(row, "name"):
        raise _bad_answer("fetchInstances", row)
    owner = _opt_str(row, "ownerJid")
    return GatewayInstance(
        name=row["name"],
        state=_state(row.get("connectionStatus")),
        token=_opt_str(row, "token"),
        owner=jid.phone_digits(owner) if owner else None,
    )


def _with_extra_read_time(client: httpx.AsyncClient, seconds: float) -> httpx.Timeout:
    """The client's timeout with ``seconds`` more to read (for calls that answer after a delay)."""
    timeout = client.timeout
    read = None if timeout.read is None else timeout.read + seconds
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


# --------------------------------------------------------------------------------------------------


class EvolutionApi:
    """SendProvider and GatewayProvider for Evolution API v2 (Baileys channel)."""

    name: ProviderName = ProviderName.EVOLUTION

    async def send(
        self, client: httpx.AsyncClient, account: SenderAccount, message: OutboundMessage
    ) -> SendResult:
        """Send one text, media or buttons (as numbered text) message; templates are refused."""
        _check_sendable(message)
        endpoint, body = _send_request(message)
        answer = await _call(client, account, "POST", f"/message/{endpoint}/{_instance(account)}", json=body)
        return SendResult(provider_message_id=_message_id(answer))

    async def show_typing(
        self, client: httpx.AsyncClient, account: SenderAccount, to: str, seconds: float
    ) -> None:
        """Show "typing..." for about ``seconds`` (Evolution holds the request that long)."""
        await self.send_presence(client, account, to, "composing", int(seconds * 1000))

    async def show_reply_typing(
        self, client: httpx.AsyncClient, account: SenderAccount, chat: str, newest_inbound_id: str
    ) -> None:
        """ "typing..." while the answer is prepared (Evolution holds the call as long as it shows)."""
        await self.send_presence(client, account, chat, "composing", REPLY_TYPING_MS)

    async def send_presence(
        self,
        client: httpx.AsyncClient,
        account: SenderAccount,
        to: str,
        presence: str = "composing",
        delay_ms: int = DEFAULT_PRESENCE_MS,
    ) -> None:
        """Show "typing..." (or "recording...") to ``to`` for ``delay_ms``; returns when it ends."""
        body = {"number": to, "presence": presence, "delay": delay_ms}
        # Evolution answers only after the delay, so the read timeout must outlast it.
        timeout = _with_extra_read_time(client, delay_ms / 1000)
        path = f"/chat/sendPresence/{_instance(account)}"
        await _call(client, account, "POST", path, json=body, timeout=timeout)

    async def mark_chat_read(
        self, client: httpx.AsyncClient, account: SenderAccount, chat: str, provider_message_ids: list[str]
    ) -> None:
        """POST /chat/markMessageAsRead/{instance}: the person's messages, each by its chat and key."""
        remote = jid.chat_jid(chat)
        body = {
            "readMessages": [
                {"remoteJid": remote, "fromMe": False, "id": key} for key in provider_message_ids
            ]
        }
        await _call(client, account, "POST", f"/chat/markMessageAsRead/{_instance(account)}", json=body)

    async def create_instance(
        self, client: httpx.AsyncClient, account: SenderAccount, webhook_url: str, webhook_secret: str
    ) -> GatewayInstance:
        """Create the instance (global key) with QR linking and our webhook; token is its hash."""
        name = _instance_name(account)
        body = {
            "instanceName": name,
            "integration": INTEGRATION,
            "qrcode": True,
            # Group chats are out of scope: Evolution then does not even post them.
            "groupsIgnore": True,
            "webhook": _webhook_config(webhook_url, webhook_secret),
        }
        return _created(await _call(client, account, "POST", "/instance/create", json=body), name)

    async def register_webhook(
        self, client: httpx.AsyncClient, account: SenderAccount, webhook_url: str, webhook_secret: str
    ) -> None:
        """Point the instance's webhook at us with the secret header and our events."""
        body = {"webhook": _webhook_config(webhook_url, webhook_secret)}
        await _call(client, account, "POST", f"/webhook/set/{_instance(account)}", json=body)

    async def connect(
        self, client: httpx.AsyncClient, account: SenderAccount, phone: str | None = None
    ) -> ConnectChallenge:
        """Start linking: QR code (and pairing code with ``phone``), or OPEN when already linked."""
        params = {"number": phone} if phone else None
        path = f"/instance/connect/{_instance(account)}"
        return _challenge(await _call(client, account, "GET", path, params=params))

    async def status(self, client: httpx.AsyncClient, account: SenderAccount) -> GatewayInstance:
        """The instance's connection state."""
        body = await _call(client, account, "GET", f"/instance/connectionState/{_instance(account)}")
        instance = body.get("instance") if isinstance(body, dict) else None
        if not isinstance(instance, dict):
            raise _bad_answer("connectionState", body)
        return GatewayInstance(
            name=_opt_str(instance, "instanceName") or _instance_name(account),
            state=_state(instance.get("state")),
        )

    async def list_instances(
        self, client: httpx.AsyncClient, account: SenderAccount
    ) -> list[GatewayInstance]:
        """Every instance the key can see (all of them with the global key)."""
        body = await _call(client, account, "GET", "/instance/fetchInstances")
        if not isinstance(body, list):
            raise _bad_answer("fetchInstances", body)
        return [_listed(row) for row in body]


evolution_api = EvolutionApi()
