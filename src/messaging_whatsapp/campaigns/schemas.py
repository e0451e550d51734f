"""What goes in and out of the campaigns API and CLI."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from messaging_whatsapp.campaigns.logs import progress_of
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignInstance,
    CampaignMessage,
    CampaignStatus,
    RotationMode,
)
from messaging_whatsapp.campaigns.variations import CampaignMessageIn, CampaignMessageItem

__all__ = ["CampaignMessageIn", "CampaignMessageItem"]  # defined with the variations, used from here


def _in_utc(value: datetime) -> datetime:
    """A time as UTC (a naive one is taken as UTC); one that has no UTC form is refused."""
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:03 is a valid ISO time but falls before year 1 in UTC.
        raise ValueError("the time is out of range") from None


ScheduleTime = Annotated[datetime, AfterValidator(_in_utc)]


# A request carries at most this many contacts; larger lists go through the CSV import.
MAX_CONTACTS_PER_REQUEST = 10_000
ALL_WEEKDAYS = [0, 1, 2, 3, 4, 5, 6]


class SendWindow(BaseModel):
    """Hours and weekdays (0 Monday .. 6 Sunday) when the campaign may send, in the tenant's time
    zone. An end before the start is a window across midnight (22:00 to 06:00)."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time
    weekdays: list[int] = Field(default_factory=lambda: list(ALL_WEEKDAYS), min_length=1, max_length=7)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.start == self.end:
            raise ValueError("send_window start and end must differ")
        if any(day not in ALL_WEEKDAYS for day in self.weekdays):
            raise ValueError("send_window weekdays are 0 (Monday) to 6 (Sunday)")
        self.weekdays = sorted(set(self.weekdays))
        return self


class PacingIn(BaseModel):
    """Pacing that replaces the provider's defaults (campaigns/pacing.py); left out, each keeps it.

    On the unofficial gateways the defaults are a random 5 to 30 s gap, at most 8 messages a
    minute and 200 an hour, at most 3 identical texts an hour, and "typing..." before each message;
    the official APIs have no gaps or caps beyond their rate limits.
    """

    model_config = ConfigDict(extra="forbid")

    interval_min_s: float | None = Field(default=None, ge=0, le=86_400)
    interval_max_s: float | None = Field(default=None, ge=0, le=86_400)
    daily_limit: int | None = Field(default=None, ge=0, le=10_000_000)
    max_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    max_per_hour: int | None = Field(default=None, ge=1, le=1_000_000)
    max_identical_per_hour: int | None = Field(default=None, ge=1, le=1_000_000)
    typing: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        low, high = self.interval_min_s, self.interval_max_s
        if low is not None and high is not None and high < low:
            raise ValueError("interval_max_s must not be below interval_min_s")
        return self


class CampaignSettings(PacingIn):
    """The campaign's pacing and limits. Zero intervals, no warm-up and no window mean as fast as
    the numbers' rate limits allow (and the gateway caps, unless raised here)."""

    warmup: bool = True
    send_window: SendWindow | None = None


# An instance's id as a request names it: checked here, so a malformed one is a 422, not a lookup.
InstanceId = Annotated[str, Field(min_length=1, max_length=36)]


class CampaignInstanceIn(PacingIn):
    """A number of the campaign with its own pacing, overriding the campaign's and the provider's."""

    id: InstanceId
    warmup: bool | None = None


# What a campaign and each of its numbers may set alike (CampaignInstance has the same columns).
PACING_FIELDS = tuple(PacingIn.model_fields)


def numbers_of(
    instance_ids: list[str] | None, instances: list[CampaignInstanceIn] | None
) -> list[CampaignInstanceIn] | None:
    """The numbers from `instance_ids` and `instances` (whose overrides win); None when neither came."""
    if instance_ids is None and instances is None:
        return None
    merged = {instance_id: CampaignInstanceIn(id=instance_id) for instance_id in instance_ids or []}
    merged.update({number.id: number for number in instances or []})
    return list(merged.values())


class CampaignContactIn(BaseModel):
    """A contact to add: phone (any common format), optional name and variables."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    variables: dict[str, str] = Field(default_factory=dict, max_length=50)
    # The person agreed to be messaged: recorded in the consent ledger (never overrides an opt-out).
    opted_in: bool = False


class CampaignCreate(BaseModel):
    """A new campaign; contacts may also come later (CSV import or the contacts endpoint)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    rotation_mode: RotationMode = RotationMode.INTELLIGENT
    instance_ids: list[InstanceId] = Field(default_factory=list, max_length=100)
    # The same numbers with per-number pacing overrides (either or both lists may be used).
    instances: list[CampaignInstanceIn] = Field(default_factory=list, max_length=100)
    messages: list[CampaignMessageIn] = Field(default_factory=list, max_length=50)
    contacts: list[CampaignContactIn] = Field(default_factory=list, max_length=MAX_CONTACTS_PER_REQUEST)
    settings: CampaignSettings = Field(default_factory=CampaignSettings)
    scheduled_at: ScheduleTime | None = None


class CampaignUpdate(BaseModel):
    """Changes to a draft or paused campaign; `messages` and `instance_ids` replace the lists."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    rotation_mode: RotationMode | None = None
    instance_ids: list[InstanceId] | None = Field(default=None, max_length=100)
    instances: list[CampaignInstanceIn] | None = Field(default=None, max_length=100)
    messages: list[CampaignMessageIn] | None = Field(default=None, max_length=50)
    settings: CampaignSettings | None = None
    scheduled_at: ScheduleTime | None = None


class ContactsIn(BaseModel):
    """Contacts to add to a campaign."""

    model_config = ConfigDict(extra="forbid")

    contacts: list[CampaignContactIn] = Field(min_length=1, max_length=MAX_CONTACTS_PER_REQUEST)


class RejectedRow(BaseModel):
    """A row that was not added, and why."""

    line: int | None
    phone: str
    reason: str


class ImportReport(BaseModel):
    """What adding contacts did."""

    added: int = 0
    duplicates: int = 0
    opted_out: int = 0
    invalid: int = 0
    rejected: list[RejectedRow] = Field(default_factory=list)


class CampaignInstanceItem(BaseModel):
    """A number of the campaign, with its state and its own pacing in this campaign."""

    model_config = ConfigDict(from_attributes=True)

    instance_id: str
    paused: bool
    paused_reason: str | None
    interval_min_s: float | None
    interval_max_s: float | None
    daily_limit: int | None
    max_per_minute: int | None
    max_per_hour: int | None
    max_identical_per_hour: int | None
    typing: bool | None
    warmup: bool | None
    sent_count: int
    last_sent_at: datetime | None


class WaitingReason(BaseModel):
    """Why a running campaign sends nothing right now: a short code (a limit such as
    `campaign_daily_limit`, `number_daily_limit`, `warmup`, `portfolio_limit`, `send_window`,
    `per_minute_cap`, `per_hour_cap`, `identical_text_cap`; or `numbers_paused`,
    `numbers_unavailable`) and a sentence with the figures and when it frees."""

    code: str
    message: str


class CampaignItem(BaseModel):
    """A campaign with its counters and rates."""

    id: str
    name: str
    description: str | None
    status: str
    rotation_mode: str
    paused_reason: str | None
    # Null while it sends (or when it is not running).
    waiting_reason: WaitingReason | None
    settings: CampaignSettings
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    total_contacts: int
    pending_count: int
    sent_count: int
    delivered_count: int
    read_count: int
    failed_count: int
    opted_out_count: int
    skipped_count: int
    progress: float
    success_rate: float
    delivery_rate: float
    read_rate: float
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, campaign: Campaign) -> Self:
        """The item for a campaign row."""
        attempted = campaign.sent_count + campaign.failed_count
        return cls(
            id=campaign.id,
            name=campaign.name,
            description=campaign.description,
            status=campaign.status,
            rotation_mode=campaign.rotation_mode,
            paused_reason=campaign.paused_reason,
            waiting_reason=_waiting(campaign),
            settings=settings_of(campaign),
            scheduled_at=campaign.scheduled_at,
            started_at=campaign.started_at,
            finished_at=campaign.finished_at,
            total_contacts=campaign.total_contacts,
            pending_count=campaign.pending_count,
            sent_count=campaign.sent_count,
            delivered_count=campaign.delivered_count,
            read_count=campaign.read_count,
            failed_count=campaign.failed_count,
            opted_out_count=campaign.opted_out_count,
            skipped_count=campaign.skipped_count,
            progress=progress_of(campaign),
            success_rate=_percent(campaign.sent_count, attempted),
            delivery_rate=_percent(campaign.delivered_count, campaign.sent_count),
            read_rate=_percent(campaign.read_count, campaign.delivered_count),
            created_at=campaign.created_at,
            updated_at=campaign.updated_at,
        )


def _waiting(campaign: Campaign) -> WaitingReason | None:
    """The dispatcher's last word on why the campaign waits, while it runs."""
    if campaign.status != CampaignStatus.RUNNING.value or campaign.waiting_reason is None:
        return None
    return WaitingReason(code=campaign.waiting_reason, message=campaign.waiting_message or "")


class CampaignDetail(CampaignItem):
    """A campaign with its variations and numbers."""

    messages: list[CampaignMessageItem]
    instances: list[CampaignInstanceItem]

    @classmethod
    def with_parts(
        cls, campaign: Campaign, messages: list[CampaignMessage], instances: list[CampaignInstance]
    ) -> Self:
        """The detail for a campaign and its parts."""
        return cls(
            **CampaignItem.of(campaign).model_dump(),
            messages=[CampaignMessageItem.of(message) for message in messages],
            instances=[CampaignInstanceItem.model_validate(instance) for instance in instances],
        )


class ContactRef(BaseModel):
    """Who a campaign contact is."""

    id: str
    # Campaigns reach people by phone; None only for a contact known by an identity alone.
    phone: str | None
    name: str | None


class SendErrorItem(BaseModel):
    """Why a message failed."""

    code: str | None
    title: str | None


class CampaignContactItem(BaseModel):
    """One contact of a campaign and what happened to it."""

    id: str
    contact: ContactRef
    status: str
    instance_id: str | None
    campaign_message_id: str | None
    message_id: str | None
    provider_message_id: str | None
    attempts: int
    variables: dict[str, Any] | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    replied_at: datetime | None
    error: SendErrorItem | None

    @classmethod
    def of(cls, row: CampaignContact, phone: str | None, name: str | None) -> Self:
        """The item for a campaign contact and its contact's phone and name."""
        error = None
        if row.error_code or row.error_title:
            error = SendErrorItem(code=row.error_code, title=row.error_title)
        return cls(
            id=row.id,
            contact=ContactRef(id=row.contact_id, phone=phone, name=name),
            status=row.status,
            instance_id=row.instance_id,
            campaign_message_id=row.campaign_message_id,
            message_id=row.message_id,
            provider_message_id=row.provider_message_id,
            attempts=row.attempts,
            variables=row.variables,
            sent_at=row.sent_at,
            delivered_at=row.delivered_at,
            read_at=row.read_at,
            failed_at=row.failed_at,
            replied_at=row.replied_at,
            error=error,
        )


def settings_of(campaign: Campaign) -> CampaignSettings:
    """The campaign's settings as the API shows them."""
    window = SendWindow.model_validate(campaign.send_window) if campaign.send_window else None
    return CampaignSettings(
        **{name: getattr(campaign, name) for name in PACING_FIELDS},
        warmup=campaign.warmup,
        send_window=window,
    )


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0
