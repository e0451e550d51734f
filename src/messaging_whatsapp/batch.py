"""The ingest batch's types: what the worker hands each domain, and what each domain gives back.

The worker (worker/ingest.py) claims a batch of stream entries, splits their normalised events by
kind, and calls each domain's set-based applier in one transaction: the inbox stores messages and
raises statuses, consent records opt-outs, campaigns move their contacts, instances record
connection changes and health. The sender (worker/sender.py) calls some of the same appliers.
These types are all they share, so every package may import this module and it imports no domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.providers.events import (
    STATUS_RANK,
    ConnectionState,
    DeliveryStatus,
    InboundMessage,
    NormalisedEvent,
    StatusError,
    StatusUpdate,
)


@dataclass(frozen=True, slots=True)
class IngestEntry:
    """One stream entry's events, with the instance it was verified for."""

    key: str
    tenant_id: str
    instance_id: str
    received_at: datetime
    events: list[NormalisedEvent]


@dataclass
class InboundItem:
    """One inbound message of the batch; the inbox fills in whose it is and where it was stored."""

    entry: IngestEntry
    message: InboundMessage
    # The sender's canonical phone (E.164); None when the provider names them only by an identity.
    phone: str | None
    contact_id: str = ""
    conversation_id: str = ""
    message_id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """(instance, provider message id): what makes a message unique."""
        return self.entry.instance_id, self.message.provider_message_id

    @property
    def from_customer(self) -> bool:
        """Written by the person, not an echo of what the business typed on its phone."""
        return not self.message.from_me


@dataclass
class Receipt:
    """Every receipt of one message in the batch folded into one change (order-independent)."""

    tenant_id: str
    instance_id: str
    provider_message_id: str
    rank: int = -1
    status: DeliveryStatus = DeliveryStatus.QUEUED
    stage_times: dict[str, datetime] = field(default_factory=dict)
    error: StatusError | None = None
    # Our message id, where the provider echoes it (Meta callback data, Twilio callback URL).
    callback_data: str | None = None

    def fold(self, update: StatusUpdate) -> None:
        """Take one more receipt in: the highest status wins, each stage keeps its earliest time."""
        stage = update.status.value
        if stage != DeliveryStatus.QUEUED.value:
            previous = self.stage_times.get(stage)
            self.stage_times[stage] = min(previous, update.timestamp) if previous else update.timestamp
        rank = STATUS_RANK[update.status]
        if rank > self.rank:
            self.rank = rank
            self.status = update.status
        if update.status is DeliveryStatus.FAILED and self.error is None:
            self.error = update.error or StatusError(code="unknown", title="failed")
        if self.callback_data is None:
            self.callback_data = update.callback_data


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    """A number's connection change, as of when its webhook was received."""

    instance_id: str
    state: ConnectionState
    reason: str | None
    at: datetime
    tenant_id: str


@dataclass
class Outcomes:
    """What happened to one instance's messages in one batch (each stage counted once a message)."""

    sent: int = 0
    delivered: int = 0
    read: int = 0
    # Failures that say something about the number (they cost health and count in a row) ...
    failed: int = 0
    # ... and the sender's own mistakes (an invalid phone, unsupported content): counted only.
    failed_other: int = 0

    def __bool__(self) -> bool:
        return bool(self.sent or self.delivered or self.read or self.failed or self.failed_other)


@dataclass(frozen=True, slots=True)
class ContactMerge:
    """Two contacts found to be one person (a payload named the phone and the identity together):
    the loser's inbox moved to the survivor and the loser is gone; what other domains keep of
    the loser (the consent ledger, an opt-out to record under the survivor's phone) follows."""

    tenant_id: str
    survivor_id: str
    loser_id: str
    survivor_phone: str | None
    # The loser had opted out and the survivor had not: the survivor is opted out now.
    opted_out: bool = False
    opted_out_at: datetime | None = None


@dataclass
class InboundApplied:
    """What storing the batch's inbound messages did."""

    # The messages stored now (echoes of the business's own included), in batch order.
    created: list[InboundItem] = field(default_factory=list)
    duplicates: int = 0
    published: list[PublishedEvent] = field(default_factory=list)
    merges: list[ContactMerge] = field(default_factory=list)
    # conversation id -> the ticket a customer's message of this batch opened in it.
    opened: dict[str, str] = field(default_factory=dict)


@dataclass
class ReceiptsApplied:
    """What applying receipts did: the messages they moved, and what the numbers' health learns."""

    moved: list[str] = field(default_factory=list)
    published: list[PublishedEvent] = field(default_factory=list)
    # Stages newly reached per instance.
    health: dict[str, Outcomes] = field(default_factory=dict)
    applied: int = 0
    without_effect: int = 0
    # Receipts that matched no message yet, kept until the sender stores its provider id.
    orphans: int = 0
