"""What the privacy routes take and give: a consent to record, an erasure's report, and
everything held about a contact."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from messaging_whatsapp.campaigns.schemas import CampaignContactItem
from messaging_whatsapp.inbox.schemas import ContactItem, ConversationItem, MessageItem, TicketItem


class ConsentChoice(BaseModel):
    """The person's choice, as a user or a system of the tenant records it: `opted_out` (stop
    messaging them everywhere) or `opted_in` (they asked to hear from the business again)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["opted_in", "opted_out"]
    # How the person said it ("asked on the phone on 3 Dec"): the ledger's evidence.
    note: str | None = Field(default=None, max_length=2000)


class ConsentItem(BaseModel):
    """One entry of the consent ledger."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    source: str
    actor: str | None
    phone: str | None
    provider_message_id: str | None
    evidence: str | None
    created_at: datetime


class OptOutItem(BaseModel):
    """The person's opt-out record: how and when they asked to stop."""

    model_config = ConfigDict(from_attributes=True)

    phone: str
    reason: str
    keyword: str | None
    original_text: str | None
    provider_message_id: str | None
    instance_id: str | None
    created_at: datetime


class ErasureReport(BaseModel):
    """What an erasure removed; `suppressed`: the person had opted out and stays unreachable."""

    contact_id: str | None
    messages: int
    conversations: int
    tickets: int
    campaign_contacts: int
    opt_outs: int
    consents_blanked: int
    suppressed: bool
    # Stream entries that mentioned the phone: raw requests (waiting or in the DLQ) and events.
    raw_requests: int
    events: int


class CampaignRowExport(CampaignContactItem):
    """The person's row in a campaign, with the campaign's name."""

    campaign_id: str
    campaign_name: str


class ContactExport(BaseModel):
    """Everything the tenant holds about one person (LGPD's right of access)."""

    exported_at: datetime
    contact: ContactItem
    conversations: list[ConversationItem]
    tickets: list[TicketItem]
    messages: list[MessageItem]
    campaigns: list[CampaignRowExport]
    consents: list[ConsentItem]
    opt_out: OptOutItem | None
