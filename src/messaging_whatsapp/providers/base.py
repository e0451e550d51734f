"""The provider interface and the normalised events every provider parses into.

Providers import nothing from the domains: they turn raw HTTP into these dataclasses (inbound) and
will turn our send requests into provider HTTP calls (outbound, later). The domain decides what the
events mean.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class ProviderName(enum.StrEnum):
    """The five providers an instance can be connected through."""

    META = "meta"
    TWILIO = "twilio"
    EVOLUTION = "evolution"
    WUZAPI = "wuzapi"
    SIMULATOR = "simulator"


class DeliveryStatus(enum.StrEnum):
    """Common delivery status of an outbound message (FORMATS.md section 1.1)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# Rank used for monotonic updates: a status never moves down. Failed sits below delivered so a
# later delivered/read receipt (delivery proven) still wins over it.
STATUS_RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.FAILED: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
}


class ConnectionState(enum.StrEnum):
    """Connection state of an instance as its gateway reports it."""

    OPEN = "open"
    CONNECTING = "connecting"
    CLOSE = "close"


class MessageType(enum.StrEnum):
    """Kinds of inbound message content (DESIGN section 5)."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    UNKNOWN = "unknown"


class IgnoredReason(enum.StrEnum):
    """Why a parsed item produced no domain change; counted, never an error."""

    GROUP = "group"
    BROADCAST = "broadcast"
    UNHANDLED_EVENT = "unhandled_event"
    SELF_RECEIPT = "self_receipt"
    PENDING_STATUS = "pending_status"


@dataclass(frozen=True, slots=True)
class Media:
    """Media attached to a message: a provider media id or a URL, plus what describes it."""

    id: str | None = None
    url: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Referral:
    """Click-to-WhatsApp ad (or post) that started the conversation."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    click_id: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent us, or an echo of one typed on the business phone (from_me)."""

    provider_message_id: str
    # E.164 digits without '+', exactly as the provider identifies the person (may lack BR 9th digit).
    phone: str
    type: MessageType
    timestamp: datetime
    contact_name: str | None = None
    text: str | None = None
    media: Media | None = None
    quoted_message_id: str | None = None
    # Id (or payload) of the tapped reply button / list row / template quick reply.
    button_payload: str | None = None
    referral: Referral | None = None
    from_me: bool = False
    # Provider-specific identity of the person when the phone is not the key (Meta BSUID, LID).
    user_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusError:
    """Why a message failed, as the provider said it."""

    code: str
    title: str
    permanent: bool = True


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery receipt for a message we sent."""

    provider_message_id: str
    status: DeliveryStatus
    timestamp: datetime
    recipient: str | None = None
    error: StatusError | None = None
    # Our own id, where the provider echoes it back (Meta biz_opaque_callback_data).
    callback_data: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionUpdate:
    """The instance's WhatsApp session changed state."""

    state: ConnectionState
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """An item we recognised and chose not to apply (groups, broadcasts, unknown event types)."""

    reason: IgnoredReason
    detail: str = ""


NormalisedEvent = InboundMessage | StatusUpdate | ConnectionUpdate | Ignored


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
