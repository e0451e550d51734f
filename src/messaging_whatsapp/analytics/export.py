"""The analytics series as CSV files: one row per bucket, a header naming the columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from messaging_whatsapp.analytics.schemas import DeliveryReport, VolumeReport

DELIVERY_COLUMNS = ("start", "sent", "delivered", "read", "failed")
VOLUME_COLUMNS = ("start", "inbound", "outbound")


def delivery_csv(report: DeliveryReport) -> str:
    """Sent, delivered, read and failed per bucket."""
    return _csv(
        DELIVERY_COLUMNS,
        ([p.start.isoformat(), p.sent, p.delivered, p.read, p.failed] for p in report.series),
    )


def volume_csv(report: VolumeReport) -> str:
    """Inbound and outbound per bucket."""
    return _csv(VOLUME_COLUMNS, ([p.start.isoformat(), p.inbound, p.outbound] for p in report.series))


def _csv(header: tuple[str, ...], rows: Iterable[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def file_name(what: str, start: datetime, end: datetime) -> str:
    """A download's name: what it holds and its range."""
    return f"analytics-{what}-{start.date().isoformat()}-{end.date().isoformat()}.csv"
