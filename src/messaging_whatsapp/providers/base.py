"""The provider interface and the normalised events every provider parses into.

Providers import nothing from the domains: they turn raw HTTP into these dataclasses (inbound) and
our send requests into provider HTTP calls (outbound). The domain decides what the events mean and
what to do about a failed send.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import httpx


class ProviderName(enum.StrEnum):
    """The five providers an instance can be connected through."""

    META = "meta"
    TWILIO = "twilio"
    EVOLUTION = "evolution"
    WUZAPI = "wuzapi"
    SIMULATOR = "simulator"


# The unofficial gateways: each number's own server, at the address its tenant gives, and a
# WhatsApp account that a robotic pace gets banned (campaigns pace them like a person).
GATEWAYS = frozenset({ProviderName.EVOLUTION, ProviderName.WUZAPI})


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


# --------------------------------------------------------------------------------------------------
# Outbound: what the sender hands a provider, and what comes back.


class ErrorClass(enum.StrEnum):
    """What to do about a provider error (FORMATS.md common_model_mapping.json "error_classes")."""

    RETRY = "retry"
    RETRY_LATER_SAME_RECIPIENT = "retry_later_same_recipient"
    NEEDS_TEMPLATE = "needs_template"
    OPT_OUT = "opt_out"
    INVALID_RECIPIENT = "invalid_recipient"
    DEFER = "defer"
    FIX_REQUEST = "fix_request"
    PAUSE_CHANNEL = "pause_channel"
    # The request may have reached the provider but no answer came (timeout after sending, reset):
    # never retried blindly, because a retry could message the customer twice.
    UNKNOWN_OUTCOME = "unknown_outcome"


TRANSIENT_ERROR_CLASSES = frozenset({ErrorClass.RETRY, ErrorClass.RETRY_LATER_SAME_RECIPIENT})


class OutboundMediaType(enum.StrEnum):
    """Media kinds we send by URL."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"


@dataclass(frozen=True, slots=True)
class OutboundMedia:
    """A media message by public URL, with optional caption and (for documents) file name."""

    type: OutboundMediaType
    url: str
    caption: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateContent:
    """An approved template: Meta template name, or Twilio Content SID (HX...), with body parameters."""

    name: str
    language: str = "pt_BR"
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyButton:
    """One quick-reply button: the id comes back in the customer's reply, the title is shown."""

    id: str
    title: str


@dataclass(frozen=True, slots=True)
class ButtonsContent:
    """A text with up to three reply buttons."""

    text: str
    buttons: tuple[ReplyButton, ...]

    def as_numbered_text(self) -> str:
        """The fallback where a provider has no reply buttons: the text, then "1. Title" lines."""
        options = "\n".join(f"{index}. {button.title}" for index, button in enumerate(self.buttons, start=1))
        return f"{self.text}\n\n{options}"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send: exactly one of text, media, template or buttons is set."""

    # Our message id: travels with the message where the provider echoes it back, so an ambiguous
    # send can be reconciled from its receipts.
    message_id: str
    # The recipient as E.164 digits without '+'.
    to: str
    text: str | None = None
    media: OutboundMedia | None = None
    template: TemplateContent | None = None
    buttons: ButtonsContent | None = None
    # Provider message id of the message this one replies to.
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class SenderAccount:
    """Who sends: the instance's provider ids and decrypted credentials (in memory only)."""

    display_number: str
    # Base URL of the provider's REST API: Meta Graph (with version), Twilio API, the gateway's URL.
    api_url: str
    phone_number_id: str | None = None
    waba_id: str | None = None
    account_sid: str | None = None
    instance_name: str | None = None
    access_token: str | None = None
    auth_token: str | None = None
    api_key: str | None = None
    # Where the provider should post this message's receipts (Twilio StatusCallback).
    status_callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted the message (accepted, not delivered)."""

    provider_message_id: str
    # The recipient as the provider resolved it (Meta's wa_id may drop the Brazilian 9th digit).
    recipient_id: str | None = None


class SendError(Exception):
    """The provider did not take the message, classified so the sender knows what to do next."""

    def __init__(
        self,
        error_class: ErrorClass,
        code: str,
        title: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {title}")
        self.error_class = error_class
        self.code = code
        self.title = title
        self.retry_after = retry_after
        self.http_status = http_status

    @property
    def retryable(self) -> bool:
        """Whether sending the same message again is safe and may succeed."""
        return self.error_class in TRANSIENT_ERROR_CLASSES


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
