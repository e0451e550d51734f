"""What the analytics routes answer: delivery and volume figures, in totals, buckets and per part."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel


class Bucket(enum.StrEnum):
    """How the series splits the range: by hour, or by day in the tenant's time zone."""

    HOUR = "hour"
    DAY = "day"


class DeliveryFigures(BaseModel):
    """Seed 004's DeliveryMetrics of the outbound messages created in the range."""

    outbound: int
    sent: int
    delivered: int
    read: int
    failed: int
    # delivered / sent, read / delivered, failed / outbound: percentages with two decimals.
    delivery_rate: float
    read_rate: float
    failure_rate: float
    # From sent to delivered and to read, in milliseconds (None: nothing timed).
    average_delivery_ms: int | None
    p90_delivery_ms: int | None
    average_read_ms: int | None
    p90_read_ms: int | None


class DeliveryPoint(BaseModel):
    """One bucket of the delivery series."""

    start: datetime
    sent: int
    delivered: int
    read: int
    failed: int


class InstanceDelivery(DeliveryFigures):
    """One number's delivery figures."""

    instance_id: str
    name: str


class CampaignDelivery(DeliveryFigures):
    """One campaign's delivery figures (campaign_id null: the messages outside campaigns)."""

    campaign_id: str | None
    name: str | None


class DeliveryReport(BaseModel):
    """`GET /api/v1/analytics/delivery`."""

    start: datetime
    end: datetime
    bucket: Bucket
    timezone: str
    totals: DeliveryFigures
    series: list[DeliveryPoint]
    instances: list[InstanceDelivery]
    campaigns: list[CampaignDelivery]


class VolumePoint(BaseModel):
    """One bucket of the volume series."""

    start: datetime
    inbound: int
    outbound: int


class InstanceVolume(BaseModel):
    """One number's messages in and out."""

    instance_id: str
    name: str
    inbound: int
    outbound: int


class VolumeReport(BaseModel):
    """`GET /api/v1/analytics/volume`: seed 004's MessageVolume."""

    start: datetime
    end: datetime
    bucket: Bucket
    timezone: str
    inbound: int
    outbound: int
    # Messages (both ways) per hour of the range.
    messages_per_hour: float
    # The hour of the day ("14:00", the tenant's time) with the most messages; None: no messages.
    peak_hour: str | None
    peak_hour_messages: int
    # Tickets whose first agent reply falls in the range, and their mean wait for it.
    responses: int
    average_response_ms: int | None
    series: list[VolumePoint]
    instances: list[InstanceVolume]
