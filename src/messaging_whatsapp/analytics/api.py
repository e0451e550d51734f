"""Delivery and volume figures of the caller's tenant (supervisors and admins), as JSON or CSV."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from messaging_whatsapp.analytics import export, service
from messaging_whatsapp.analytics.schemas import Bucket, DeliveryReport, VolumeReport
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import DbSession
from messaging_whatsapp.tenancy.deps import AnalyticsReader

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


class Format(enum.StrEnum):
    """The answer's format: JSON, or the series as a CSV file."""

    JSON = "json"
    CSV = "csv"


From = Annotated[
    datetime | None, Query(alias="from", description="start (ISO 8601); default: 7 days before `to`")
]
To = Annotated[datetime | None, Query(alias="to", description="end (ISO 8601); default: now")]
InstanceId = Annotated[str | None, Query(max_length=36)]
CampaignId = Annotated[str | None, Query(max_length=36)]


async def _period_and_filters(
    session: DbSession,
    tenant_id: str,
    start: datetime | None,
    end: datetime | None,
    bucket: Bucket,
    filters: service.Filters,
) -> service.Period:
    period = await service.read_period(session, tenant_id, utcnow(), start, end, bucket)
    await service.check_filters(session, tenant_id, filters)
    return period


@router.get("/delivery", response_model=DeliveryReport)
async def delivery(
    session: DbSession,
    principal: AnalyticsReader,
    start: From = None,
    end: To = None,
    instance_id: InstanceId = None,
    campaign_id: CampaignId = None,
    bucket: Bucket = Bucket.DAY,
    format: Format = Format.JSON,
) -> DeliveryReport | Response:
    """Sent, delivered, read and failed of the outbound messages created in the range, with the
    rates and the mean and p90 times to delivery and to read; per bucket, number and campaign."""
    filters = service.Filters(instance_id, campaign_id)
    period = await _period_and_filters(session, principal.tenant_id, start, end, bucket, filters)
    report = await service.delivery(session, principal.tenant_id, period, filters)
    if format is Format.CSV:
        return _csv(export.delivery_csv(report), export.file_name("delivery", report.start, report.end))
    return report


@router.get("/volume", response_model=VolumeReport)
async def volume(
    session: DbSession,
    principal: AnalyticsReader,
    start: From = None,
    end: To = None,
    instance_id: InstanceId = None,
    campaign_id: CampaignId = None,
    bucket: Bucket = Bucket.DAY,
    format: Format = Format.JSON,
) -> VolumeReport | Response:
    """Messages in and out per bucket and per number, the peak hour and the agents' mean first
    response time per ticket."""
    filters = service.Filters(instance_id, campaign_id)
    period = await _period_and_filters(session, principal.tenant_id, start, end, bucket, filters)
    report = await service.volume(session, principal.tenant_id, period, filters)
    if format is Format.CSV:
        return _csv(export.volume_csv(report), export.file_name("volume", report.start, report.end))
    return report


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
