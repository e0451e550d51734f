"""The raw webhook requests a tenant's retention deletes from the DLQ.

A DLQ entry records the entry that failed (streams/records.py): the stream it came from and that
entry's fields, as JSON. A raw request is an entry of the inbound stream, and its fields name the
tenant the webhook receiver resolved (`tenant_id`). An entry whose origin or tenant cannot be read
is nobody's to delete here: DLQ_RETENTION_DAYS deletes it with everyone's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from messaging_whatsapp.streams.base import StoredEntry, StreamNames, Streams
from messaging_whatsapp.streams.records import dead_letter_origin

# DLQ entries read per page of the scan.
SCAN_PAGE = 500


def raw_request_tenant(fields: dict[str, str], inbound_stream: str) -> str | None:
    """The tenant of a dead-lettered raw request, or None when the entry is not one (an outbound
    entry, a record that cannot be read) or names no tenant."""
    origin = dead_letter_origin(fields)
    if origin is None:
        return None
    stream, original = origin
    if stream != inbound_stream:
        return None
    return original.get("tenant_id") or None


async def expire_raw_requests(
    streams: Streams, names: StreamNames, cutoffs: Mapping[str, datetime], *, dry_run: bool
) -> dict[str, int]:
    """Delete (dry run: count) each tenant's raw requests dead-lettered before its cut-off in
    `cutoffs`; how many per tenant. One scan of the DLQ serves every tenant."""
    counts = dict.fromkeys(cutoffs, 0)
    if not cutoffs:
        return counts
    after: str | None = None
    while page := await streams.entries_before(
        names.dlq, max(cutoffs.values()), after=after, count=SCAN_PAGE
    ):
        for tenant_id, ids in _expired_by_tenant(page, names.inbound, cutoffs).items():
            # Counted as deleted only when they were still there (another run may have been first).
            counts[tenant_id] += len(ids) if dry_run else await streams.delete(names.dlq, ids)
        after = page[-1].id
    return counts


def _expired_by_tenant(
    page: list[StoredEntry], inbound_stream: str, cutoffs: Mapping[str, datetime]
) -> dict[str, list[str]]:
    expired: dict[str, list[str]] = {}
    for entry in page:
        tenant_id = raw_request_tenant(entry.fields, inbound_stream)
        if tenant_id is not None and tenant_id in cutoffs and entry.appended_at < cutoffs[tenant_id]:
            expired.setdefault(tenant_id, []).append(entry.id)
    return expired
