"""What campaigns report: their logs (seed 002's fields, with a failed send's request and answer)
and the tenant's campaigns in numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from messaging_whatsapp.campaigns.models import CampaignLog


class CampaignLogItem(BaseModel):
    """A campaign log."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    log_type: str
    severity: str
    message: str
    details: dict[str, Any] | None
    instance_id: str | None
    contact_id: str | None
    campaign_contact_id: str | None
    duration_ms: int | None
    http_status: int | None
    # A failed send's request and answer, credentials removed (providers/trace.py).
    request_data: dict[str, Any] | None
    response_data: dict[str, Any] | None
    campaign_progress: float | None
    instance_health_score: float | None
    created_by: str | None
    created_at: datetime

    @classmethod
    def of(cls, log: CampaignLog) -> Self:
        """The item for a log row."""
        return cls.model_validate(log)


class CampaignStats(BaseModel):
    """The tenant's campaigns in numbers."""

    campaigns: int
    by_status: dict[str, int]
    total_contacts: int
    sent: int
    delivered: int
    read: int
    failed: int
    opted_out: int
    delivery_rate: float
    read_rate: float


class NumberSeries(BaseModel):
    """One number's sends per bucket, aligned with the timeline's times."""

    instance_id: str
    display_number: str
    sent: list[int]
    delivered: list[int]
    read: list[int]
    failed: list[int]


class Timeline(BaseModel):
    """A campaign's sends over time: each stage counted per bucket (the start of each in `times`,
    UTC), overall and per number; buckets with nothing in them are left out."""

    bucket: str
    times: list[datetime]
    sent: list[int]
    delivered: list[int]
    read: list[int]
    failed: list[int]
    numbers: list[NumberSeries]
