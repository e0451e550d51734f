"""The normalised events every provider's webhook parses into (DESIGN section 5): inbound messages,
status receipts, connection changes, and what was recognised and ignored on purpose."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
    # E.164 digits without '+', exactly as the provider identifies the person (may lack BR 9th digit);
    # None when the provider names the person only by `user_id` (a Meta username user, a bare LID).
    phone: str | None
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
    # Provider-specific identity of the person: Meta's BSUID ("BR.1502576394655843") or a gateway's
    # LID JID ("97318254610077@lid"). At least one of phone and user_id is set.
    user_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusError:
    """Why a message failed, as the provider said it."""

    code: str
    title: str
    permanent: bool = True
    # Whether the failure says something about the number (costs health; providers/outbound.py).
    number_level: bool = True


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


@dataclass(frozen=True, slots=True)
class Unusable:
    """One item of a batch that cannot be applied (the rest of the batch can): where it is in the
    payload and why. The worker sends it to the DLQ alone, with the raw request."""

    item: str
    reason: str


NormalisedEvent = InboundMessage | StatusUpdate | ConnectionUpdate | Ignored | Unusable
