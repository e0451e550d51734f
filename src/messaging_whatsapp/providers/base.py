"""The provider interface: what the webhook, the worker, the sender and the gateway commands need
from a provider module, and the raw webhook request they all start from.

Providers import nothing from the domains: they turn raw HTTP into normalised events
(providers/events.py) and our send requests into provider HTTP calls (providers/outbound.py). The
domains decide what the events mean and what to do about a failed send.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import httpx

from messaging_whatsapp.providers.events import ConnectionState, NormalisedEvent
from messaging_whatsapp.providers.outbound import OutboundMessage, RecipientKind, SenderAccount, SendResult


class ProviderName(enum.StrEnum):
    """The five providers an instance can be connected through."""

    META = "meta"
    TWILIO = "twilio"
    EVOLUTION = "evolution"
    WUZAPI = "wuzapi"
    SIMULATOR = "simulator"


# Seed 001's name for its development provider (`WHATSAPP_PROVIDER=stub`): our simulator.
PROVIDER_ALIASES = {"stub": ProviderName.SIMULATOR}


def provider_named(name: str) -> ProviderName:
    """The provider a name means, aliases included; ValueError names the choices."""
    key = name.strip().lower()
    if key in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key]
    try:
        return ProviderName(key)
    except ValueError:
        choices = ", ".join(provider.value for provider in ProviderName)
        raise ValueError(f"unknown provider {name!r} (one of {choices}, or stub for the simulator)") from None


# The unofficial gateways: each number's own server, at the address its tenant gives, and a
# WhatsApp account that a robotic pace gets banned (campaigns pace them like a person).
GATEWAYS = frozenset({ProviderName.EVOLUTION, ProviderName.WUZAPI})

# The providers that can send to a person by each kind of address. A BSUID is Meta's and scoped
# to the business portfolio; a LID is WhatsApp Web's, which only the gateways speak.
REACHES: dict[RecipientKind, frozenset[ProviderName]] = {
    RecipientKind.PHONE: frozenset(ProviderName),
    RecipientKind.BSUID: frozenset({ProviderName.META}),
    RecipientKind.LID: GATEWAYS,
}


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """The raw webhook request as received: what verification and parsing need, nothing more."""

    body: bytes
    # Lower-cased header names.
    headers: dict[str, str]
    # The public URL the provider called (Twilio signs it), including the query string.
    url: str
    query: dict[str, str] = field(default_factory=dict)
    # The per-instance secret when it came in the URL path (gateways that cannot set headers).
    path_secret: str | None = None
    # The body parsed as JSON, kept for the request's other readers (payload.body_json fills it).
    parsed_body: list[object] = field(default_factory=list, compare=False, repr=False)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class InstanceSecrets:
    """The per-instance values a provider needs to verify a webhook (decrypted, in memory only)."""

    webhook_secret: str
    app_secret: str | None = None
    auth_token: str | None = None
    api_key: str | None = None
    hmac_key: str | None = None
    verify_token: str | None = None


# The header carrying an instance's webhook secret, for gateways that can set custom headers.
WEBHOOK_SECRET_HEADER = "x-webhook-secret"


class PayloadError(ValueError):
    """The body is not a usable payload of this provider (malformed or wrong shape)."""


class WebhookProvider(Protocol):
    """What the webhook receiver and the worker need from a provider module."""

    name: ProviderName

    def detect(self, request: WebhookRequest) -> bool:
        """Cheaply tell whether this request looks like one of this provider's webhooks."""
        ...

    def routing_key(self, request: WebhookRequest) -> str | None:
        """The key that names the instance inside the payload (phone number id, instance name...).

        Raises PayloadError when the body cannot be read at all.
        """
        ...

    def verify(self, request: WebhookRequest, secrets: InstanceSecrets) -> bool:
        """Check the request's signature or secret in constant time."""
        ...

    def parse(self, request: WebhookRequest) -> list[NormalisedEvent]:
        """Turn a verified request into normalised events; PayloadError when its inside is unusable."""
        ...


class CredentialCarryingProvider(Protocol):
    """A provider whose webhook bodies may carry a credential (Evolution's apikey, WuzAPI's token)."""

    def without_credentials(self, request: WebhookRequest) -> bytes | None:
        """The body with its credentials emptied, to store; None when it carries none."""
        ...


class BatchingProvider(Protocol):
    """A provider whose one POST may carry several numbers' events (Meta: one app, many numbers)."""

    def split_by_number(self, request: WebhookRequest) -> dict[str, bytes]:
        """One body per routing key when the request names several, else empty (the body stays whole)."""
        ...


# --------------------------------------------------------------------------------------------------
# Sending (the messages and answers are in providers/outbound.py).


class SendProvider(Protocol):
    """What the sender needs from a provider: one call per message over a shared HTTP client."""

    name: ProviderName

    async def send(
        self, client: httpx.AsyncClient, account: SenderAccount, message: OutboundMessage
    ) -> SendResult:
        """Send one message; raises SendError (classified) when the provider does not take it."""
        ...


@runtime_checkable
class TypingProvider(Protocol):
    """A provider that can show "typing..." in the person's chat (the unofficial gateways)."""

    async def show_typing(
        self, client: httpx.AsyncClient, account: SenderAccount, to: str, seconds: float
    ) -> None:
        """Show "typing..." to ``to`` for about ``seconds``; returns when it is time to send."""
        ...


@runtime_checkable
class ReplyTypingProvider(Protocol):
    """A provider that can show "typing..." while an answer to the customer is prepared: Meta
    (marking their newest message read, with its typing indicator) and the gateways (presence)."""

    async def show_reply_typing(
        self, client: httpx.AsyncClient, account: SenderAccount, chat: str, newest_inbound_id: str
    ) -> None:
        """Show "typing..." in the chat now; it ends by itself or when the answer arrives. ``chat``
        as in mark_chat_read; ``newest_inbound_id`` the provider id of the customer's newest message."""
        ...


@runtime_checkable
class ReadReceiptProvider(Protocol):
    """A provider that can tell the customer their messages were read (the blue ticks): Meta's
    Cloud API and the gateways; Twilio and the simulator cannot."""

    async def mark_chat_read(
        self, client: httpx.AsyncClient, account: SenderAccount, chat: str, provider_message_ids: list[str]
    ) -> None:
        """Mark these inbound messages of one person (oldest first) as read; ``chat`` is the
        person as the sender addresses them (E.164 digits, or a LID JID)."""
        ...


# --------------------------------------------------------------------------------------------------
# Gateways (Evolution, WuzAPI): instances we create, connect by QR code and watch.


@dataclass(frozen=True, slots=True)
class GatewayInstance:
    """An instance as the gateway lists it."""

    name: str
    state: ConnectionState
    # The instance's own API token on the gateway, when it has one (Evolution hash, WuzAPI token).
    token: str | None = None
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectChallenge:
    """How to link a phone: the QR code's text (to draw), its PNG, or a pairing code to type."""

    state: ConnectionState
    qr_code: str | None = None
    qr_image_base64: str | None = None
    pairing_code: str | None = None


class GatewayProvider(Protocol):
    """Instance management on the unofficial gateways."""

    async def create_instance(
        self, client: httpx.AsyncClient, account: SenderAccount, webhook_url: str, webhook_secret: str
    ) -> GatewayInstance:
        """Create the instance on the gateway and register our webhook with the events we need."""
        ...

    async def register_webhook(
        self, client: httpx.AsyncClient, account: SenderAccount, webhook_url: str, webhook_secret: str
    ) -> None:
        """Point the instance's webhook at us, carrying its secret, with the events we need."""
        ...

    async def connect(
        self, client: httpx.AsyncClient, account: SenderAccount, phone: str | None = None
    ) -> ConnectChallenge:
        """Start linking a phone: a QR code, or with `phone` a pairing code; already open says so."""
        ...

    async def status(self, client: httpx.AsyncClient, account: SenderAccount) -> GatewayInstance:
        """The instance's connection state as the gateway sees it."""
        ...

    async def list_instances(
        self, client: httpx.AsyncClient, account: SenderAccount
    ) -> list[GatewayInstance]:
        """Every instance the gateway knows (with the global/admin key)."""
        ...
