"""Inbox items as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ContactItem(BaseModel):
    """A contact; `phone` is E.164 with '+' (Brazilian mobiles with the ninth digit), null for a
    person known only by Meta's business-scoped user id (`bsuid`) or a gateway's `lid`."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    phone: str | None
    name: str | None
    opted_out: bool
    opted_out_at: datetime | None = None
    wa_id: str | None = None
    bsuid: str | None = None
    lid: str | None = None
    first_source: str | None = None
    first_campaign: str | None = None
    first_medium: str | None = None
    last_interaction_at: datetime | None = None
    messages_received: int = 0
    created_at: datetime


class ContactRef(BaseModel):
    """The contact as embedded in a conversation (`phone` null: known by `bsuid` or `lid` alone)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    phone: str | None
    name: str | None
    opted_out: bool
    bsuid: str | None = None
    lid: str | None = None


class LastMessage(BaseModel):
    """A conversation's last message as the list shows it: its type, direction and the first
    characters of its text or caption (`preview` null for a message without text)."""

    type: str
    direction: str
    preview: str | None


class CurrentTicket(BaseModel):
    """A conversation's open ticket, or its latest closed one when none is open."""

    id: str
    status: str
    assignee_id: str | None
    # The assignee's e-mail (users have no other name).
    assignee_name: str | None = None
    # The customer asked for a person (talk_to_human) and nobody of the team has answered since.
    wants_person: bool = False


class ConversationItem(BaseModel):
    """A conversation between one contact and one instance, with what the inbox list shows of it."""

    id: str
    status: str
    unread_count: int
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    instance_id: str
    contact: ContactRef
    created_at: datetime
    last_message: LastMessage | None = None
    ticket: CurrentTicket | None = None


class ContactUpdate(BaseModel):
    """What an agent may change of a contact: the name the team knows them by (null clears it)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(max_length=200)


class TicketItem(BaseModel):
    """A session of attendance inside a conversation, with the attribution it opened with."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    conversation_id: str
    status: str
    source: str | None
    campaign: str | None
    medium: str | None
    ad_id: str | None
    click_id: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None
    opened_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    outcome: str | None = None
    assignee_id: str | None
    # When the customer asked for a person (talk_to_human): no automation writes to it since.
    wants_person_at: datetime | None = None
    created_at: datetime


class TicketAssign(BaseModel):
    """Who attends a ticket: one of the tenant's users, or nobody."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(max_length=36)


class TicketClose(BaseModel):
    """How an agent ends a ticket: done with it, won (a sale) or lost, and what came of it (required
    for `lost`: why, e.g. price or timing)."""

    model_config = ConfigDict(extra="forbid")

    reason: Literal["manual", "sale", "lost"] = "manual"
    outcome: str | None = Field(default=None, max_length=500)


class MessageError(BaseModel):
    """Why a message failed, as the provider said it."""

    code: str | None
    title: str | None


class QuotedMessage(BaseModel):
    """The message a reply quotes, found in the same conversation (`id` null when it is not stored:
    sent before the engine knew the conversation, or deleted by retention)."""

    provider_message_id: str
    id: str | None = None
    type: str | None = None
    direction: str | None = None
    preview: str | None = None


class Reaction(BaseModel):
    """An emoji someone put on a message (their latest; a removed one is not listed)."""

    emoji: str
    direction: str
    # The customer's name for their own, else the name the sender was recorded with.
    sender_name: str | None = None
    at: datetime


class Location(BaseModel):
    """Where a location message points."""

    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None


class MessageItem(BaseModel):
    """A message, inbound or outbound, with its delivery status."""

    id: str
    conversation_id: str
    instance_id: str
    ticket_id: str | None = None
    direction: str
    sender_type: str
    # The user who sent it (null for the customer's, a campaign's, an API key's or the CLI's), and
    # the name recorded then (the user's e-mail; "API key <name>" for a key's sends).
    sender_user_id: str | None = None
    sender_name: str | None = None
    type: str
    content: str | None
    media: dict[str, Any] | None
    extra: dict[str, Any] | None
    # An AI answer's knowledge base chunks (their ids), the ones it cites (assistant/).
    sources: list[str] = Field(default_factory=list)
    quoted_provider_message_id: str | None
    status: str
    provider_message_id: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    error: MessageError | None
    created_at: datetime
    # In a conversation's listing only: what a reply quotes, the reactions to it, a location's place.
    quoted: QuotedMessage | None = None
    reactions: list[Reaction] = Field(default_factory=list)
    location: Location | None = None
