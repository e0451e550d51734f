"""Contacts, conversations, tickets and messages: what the team inbox shows."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin

# A ticket in follow_up (a follow-up sequence runs on it) is an open session for everything but
# the inactivity close: messages join it and no second ticket opens beside it.
OPEN_TICKET_PREDICATE = "status IN ('open', 'follow_up')"
# Outbound messages, the only ones with a send state (see SendState).
SENDING_PREDICATE = "send_state IS NOT NULL"
# Messages of a ticket (every message sent or received since tickets record the team's side too;
# a ticket deleted by retention leaves its messages with none).
TICKETED_PREDICATE = "ticket_id IS NOT NULL"


# SQLite's full-text index of messages.content (FTS5, trigram tokenizer, external content keyed by
# the messages' rowid), kept by triggers. Not a model: the schema check leaves it and its shadow
# tables out. A migration that rebuilds `messages` must recreate its triggers and run
# `INSERT INTO messages_search(messages_search) VALUES ('rebuild')`.
MESSAGES_SEARCH_TABLE = "messages_search"
# The same for contacts' names and phones (a rebuild of `contacts` must recreate it likewise).
CONTACTS_SEARCH_TABLE = "contacts_search"


# The indexes only PostgreSQL has (trigram_index).
POSTGRESQL_ONLY_INDEXES = frozenset(
    {"ix_contacts_name_trgm", "ix_contacts_phone_trgm", "ix_messages_content_trgm"}
)


# A contact's phone as digits, the expression the phone search and its trigram index share.
PHONE_DIGITS = "replace(phone, '+', '')"


def trigram_index(name: str, column: str) -> Index:
    """A PostgreSQL GIN trigram index (pg_trgm) serving `ILIKE '%fragment%'`; none on SQLite."""
    index = Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
    return index.ddl_if(dialect="postgresql")


class Direction(enum.StrEnum):
    """Whether a message came from the customer or went to them."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class SenderType(enum.StrEnum):
    """Who wrote a message (DESIGN section 8)."""

    LEAD = "lead"
    USER = "user"
    AI = "ai"
    SYSTEM = "system"
    CAMPAIGN = "campaign"
    # Typed on the business phone itself and echoed back by the gateway (fromMe).
    PHONE = "phone"


# Written by a person of the business: an agent in the inbox, or someone on the phone itself
# (what "the team answered" means to automation, follow-ups and the AI replies).
TEAM_SENDERS = (SenderType.USER.value, SenderType.PHONE.value)


class SendState(enum.StrEnum):
    """Where an outbound message is on its way to the provider (null for inbound messages)."""

    # Offered to the senders (queued); next_attempt_at is when it is offered again if unclaimed.
    PENDING = "pending"
    # Waiting out a retry's backoff (or a rate limit, or an open breaker) until next_attempt_at.
    WAITING = "waiting"
    # A sender took it and may be talking to the provider right now.
    CLAIMED = "claimed"
    # The request may have reached the provider but its answer was lost: receipts decide.
    UNKNOWN = "unknown"
    # The provider answered (sent) or the message ended failed: nothing more to do.
    DONE = "done"


# Characters of the last message's text kept on its conversation for the list.
PREVIEW_CHARS = 120


class ConversationStatus(enum.StrEnum):
    """Open conversations are shown in the inbox queue."""

    OPEN = "open"
    CLOSED = "closed"


class TicketStatus(enum.StrEnum):
    """A ticket is one session of attendance inside a conversation (seed 003)."""

    OPEN = "open"
    CLOSED = "closed"
    # Open, with a follow-up sequence running on it (followups/): left to the follow-up by the
    # inactivity close, back to open when the follow-up is cancelled or completes.
    FOLLOW_UP = "follow_up"


# The statuses of an open session (OPEN_TICKET_PREDICATE in Python).
OPEN_TICKET_STATUSES = (TicketStatus.OPEN.value, TicketStatus.FOLLOW_UP.value)


class TicketCloseReason(enum.StrEnum):
    """Why a ticket ended (seed 003's closing rules)."""

    INACTIVITY = "inactivity"
    MANUAL = "manual"
    SALE = "sale"
    # A lost sale; the close's outcome says why (seed 003's lost_price, lost_timing...).
    LOST = "lost"
    FOLLOW_UP_EXHAUSTED = "follow_up_exhausted"


class Contact(IdMixin, TimestampMixin, Base):
    """A person a tenant talks to (seed 003's Lead), keyed by the canonical E.164 phone, or by the
    identity a provider names them with when it gives no phone (a BSUID, a LID): at least one of
    the three is set, and a later payload naming two of them merges their contacts (inbox/identity.py)."""

    __tablename__ = "contacts"
    # Each leads with tenant_id, so it serves every lookup by tenant: no index of tenant_id alone.
    __table_args__ = (
        UniqueConstraint("tenant_id", "phone"),
        Index("uq_contacts_tenant_id_bsuid", "tenant_id", "bsuid", unique=True),
        Index("uq_contacts_tenant_id_lid", "tenant_id", "lid", unique=True),
        # The inbox search by any fragment of a name or a phone (PostgreSQL; on SQLite the FTS5
        # table CONTACTS_SEARCH_TABLE, created by migration 0019).
        trigram_index("ix_contacts_name_trgm", "name"),
        # On the phone's digits, an expression: PostgreSQL also answers `=` from a trigram index,
        # and on the bare column it took it for the worker's lookups by phone (the unique index's).
        Index(
            "ix_contacts_phone_trgm",
            literal_column(PHONE_DIGITS).label("phone_digits"),
            postgresql_using="gin",
            postgresql_ops={"phone_digits": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # Canonical E.164 with '+' (Brazilian mobiles always with the ninth digit); None while the
    # person is known only by a BSUID or a LID.
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    # The id WhatsApp last used for the person (may lack the ninth digit).
    wa_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Meta's business-scoped user id ("BR.1502576394655843"): Meta numbers can send to it.
    bsuid: Mapped[str | None] = mapped_column(String(160), default=None)
    # The gateways' privacy alias, as a JID ("97318254610077@lid"): Evolution and WuzAPI send to it.
    lid: Mapped[str | None] = mapped_column(String(160), default=None)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    # The team named the person (PATCH /contacts/{id}): their WhatsApp profile name no longer
    # replaces it.
    named_by_team: Mapped[bool] = mapped_column(default=False, server_default=false())
    first_source: Mapped[str | None] = mapped_column(String(100), default=None)
    first_campaign: Mapped[str | None] = mapped_column(String(200), default=None)
    first_medium: Mapped[str | None] = mapped_column(String(100), default=None)
    opted_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(default=None)
    last_interaction_at: Mapped[datetime | None] = mapped_column(default=None)
    messages_received: Mapped[int] = mapped_column(default=0)


class Conversation(IdMixin, TimestampMixin, Base):
    """All messages between one contact and one instance, with what the inbox list shows of its last
    message and open ticket kept on the row (by the writers of messages and tickets, in their
    transaction), so the list reads one table in one index's order."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "contact_id", "instance_id"),
        # The inbox list, newest activity first, with the id breaking ties of the keyset cursor.
        Index("ix_conversations_tenant_activity", "tenant_id", "last_message_at", "id"),
        # The Mine tab (one assignee) and the Unassigned one (assignee NULL, with an open ticket).
        Index(
            "ix_conversations_tenant_assignee_activity", "tenant_id", "assignee_id", "last_message_at", "id"
        ),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("whatsapp_instances.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.OPEN.value)
    unread_count: Mapped[int] = mapped_column(default=0)
    # Set by whoever creates the conversation (its first message's time), so the list's order and
    # cursor never meet a NULL.
    last_message_at: Mapped[datetime | None] = mapped_column(default=None)
    # Start of the 24-hour customer service window.
    last_inbound_at: Mapped[datetime | None] = mapped_column(default=None)
    # The last message as the list shows it: its type, direction and text (or caption), cut short.
    last_message_type: Mapped[str | None] = mapped_column(String(16), default=None)
    last_message_direction: Mapped[str | None] = mapped_column(String(8), default=None)
    last_message_preview: Mapped[str | None] = mapped_column(String(PREVIEW_CHARS), default=None)
    # The open ticket (None: resolved) and who attends it, copied from tickets by
    # inbox/ticketing.py's sync_open_tickets whenever a ticket opens, closes or changes hands.
    open_ticket_id: Mapped[str | None] = mapped_column(String(36), default=None)
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class Ticket(IdMixin, TimestampMixin, Base):
    """A session of attendance inside a conversation, with its own attribution (seed 003)."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_conversation_status", "conversation_id", "status"),
        # The team's queue: a tenant's tickets by status, newest first.
        Index("ix_tickets_tenant_status_created", "tenant_id", "status", "created_at"),
        # At most one open ticket per conversation, even with several workers applying at once.
        Index(
            "uq_tickets_one_open",
            "conversation_id",
            unique=True,
            sqlite_where=text(OPEN_TICKET_PREDICATE),
            postgresql_where=text(OPEN_TICKET_PREDICATE),
        ),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.OPEN.value)
    source: Mapped[str | None] = mapped_column(String(100), default=None)
    campaign: Mapped[str | None] = mapped_column(String(200), default=None)
    medium: Mapped[str | None] = mapped_column(String(100), default=None)
    ad_id: Mapped[str | None] = mapped_column(String(100), default=None)
    click_id: Mapped[str | None] = mapped_column(String(200), default=None)
    opened_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    close_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    # What came of it, in the closing agent's words (why a sale was lost, the order won...).
    outcome: Mapped[str | None] = mapped_column(String(500), default=None)
    # The UTM parameters of the ad's URL (referral) or of the links in the first message.
    utm_source: Mapped[str | None] = mapped_column(String(200), default=None)
    utm_medium: Mapped[str | None] = mapped_column(String(200), default=None)
    utm_campaign: Mapped[str | None] = mapped_column(String(200), default=None)
    utm_content: Mapped[str | None] = mapped_column(String(200), default=None)
    utm_term: Mapped[str | None] = mapped_column(String(200), default=None)
    # The user attending it (None: nobody yet); indexed for an agent's part of the inbox (their
    # tickets, open or closed) and for a deleted user's SET NULL.
    assignee_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    # When the customer asked for a person (the talk_to_human intent): the ticket waits in the
    # unassigned queue flagged, and no bot, auto-reply or follow-up writes to it afterwards.
    wants_person_at: Mapped[datetime | None] = mapped_column(default=None)


class Message(IdMixin, TimestampMixin, Base):
    """The one message table: inbound and outbound, with delivery status and its timestamps."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("instance_id", "provider_message_id"),
        # Leads with tenant_id, so it serves every lookup by tenant: no index of tenant_id alone.
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        # The senders' sweeps look for messages on their way; inbound messages (most of an
        # inbox) have no send state and stay out of the index.
        Index(
            "ix_messages_send_state_next_attempt",
            "send_state",
            "next_attempt_at",
            sqlite_where=text(SENDING_PREDICATE),
            postgresql_where=text(SENDING_PREDICATE),
        ),
        # A number's recent sends (campaign pacing: per minute, per hour, unique people per day).
        Index("ix_messages_instance_created", "instance_id", "created_at"),
        # The analytics rollup's worker finds the messages changed since its last pass.
        Index("ix_messages_updated_at", "updated_at"),
        # Deleting a ticket (data retention) sets its messages' ticket_id to NULL: without an
        # index each deleted ticket would scan the table.
        Index(
            "ix_messages_ticket_id",
            "ticket_id",
            sqlite_where=text(TICKETED_PREDICATE),
            postgresql_where=text(TICKETED_PREDICATE),
        ),
        # The inbox search by message text: a trigram index on PostgreSQL; SQLite has the FTS5
        # table MESSAGES_SEARCH_TABLE instead (created by migration 0019, outside the models).
        trigram_index("ix_messages_content_trgm", "content"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    instance_id: Mapped[str] = mapped_column(ForeignKey("whatsapp_instances.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), default=None)
    direction: Mapped[str] = mapped_column(String(8))
    sender_type: Mapped[str] = mapped_column(String(16))
    # The user who sent it (an agent's one-to-one message); the name (their e-mail, or the API
    # key's name for a key's sends) stays when the user is deleted.
    sender_user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    sender_name: Mapped[str | None] = mapped_column(String(320), default=None)
    type: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text, default=None)
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Button payload, referral, location, reaction target...: what the type carries beyond text.
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    quoted_provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    provider_timestamp: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16))
    status_rank: Mapped[int] = mapped_column(default=0)
    # The rank before the last receipt raised it. The receipt's UPDATE sets it from the old row in
    # the same statement, so it can report which stages it crossed without reading first.
    previous_status_rank: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    read_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    error_title: Mapped[str | None] = mapped_column(Text, default=None)

    # Outbound delivery to the provider (see SendState); null on inbound messages.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    send_state: Mapped[str | None] = mapped_column(String(16), default=None)
    send_attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    # When a pending message is next (re)offered to the senders: after a retry's backoff, or as a
    # safety net for a message whose stream entry was lost.
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    # A long text's later part: held (waiting, no next attempt) until the part before it is sent
    # (sending/parts.py), so the parts arrive in order.
    follows_message_id: Mapped[str | None] = mapped_column(String(36), default=None)


class OrphanReceipt(Base):
    """A receipt that matched no message yet: the sender may not have stored the provider id.

    Applied when the sender records that id; dropped after a while (receipts of messages sent
    outside the engine).
    """

    __tablename__ = "orphan_receipts"
    __table_args__ = (Index("ix_orphan_receipts_message", "instance_id", "provider_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    instance_id: Mapped[str] = mapped_column(String(36))
    provider_message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    error_title: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]


# The tables, for set-based Core statements (bulk inserts, UPDATE ... FROM).
contacts_table: Table = Contact.__table__  # type: ignore[assignment]
conversations_table: Table = Conversation.__table__  # type: ignore[assignment]
messages_table: Table = Message.__table__  # type: ignore[assignment]
tickets_table: Table = Ticket.__table__  # type: ignore[assignment]
orphans_table: Table = OrphanReceipt.__table__  # type: ignore[assignment]
