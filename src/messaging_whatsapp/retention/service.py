"""Data retention (LGPD): each tenant's messages, closed tickets and raw webhook requests are
deleted once older than the days the tenant set (tenants.retention_*_days; unset keeps them
forever, the default).

Contacts and conversations stay, with their counters and times: they are the tenant's CRM, and
the inbox reads a conversation's last message and service window from it, not from its messages.
A deleted ticket's messages stay (their ticket_id becomes NULL). The scheduler applies retention
every hour; `apply-retention` applies it now, or only reports what it would delete (dry run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, or_, select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import checkpoint_sqlite
from messaging_whatsapp.inbox.models import messages_table, tickets_table
from messaging_whatsapp.retention.raw_requests import expire_raw_requests
from messaging_whatsapp.retention.rows import (
    count_expired,
    delete_expired,
    expired_messages,
    expired_tickets,
)
from messaging_whatsapp.tenancy.models import Tenant
from messaging_whatsapp.tenancy.service import get_tenant

# Told after each tenant: how many are done, of how many, and that tenant's report.
Progress = Callable[[int, int, "RetentionReport"], None]


@dataclass(frozen=True, slots=True)
class Expiry:
    """One kind of a tenant's data past its retention: the period, the cut-off (what was stored or
    closed before it goes) and how many rows or entries went (or, in a dry run, would go)."""

    days: int
    cutoff: datetime
    count: int

    def as_json(self) -> dict[str, Any]:
        """The expiry for JSON output."""
        return {"days": self.days, "cutoff": self.cutoff.isoformat(), "count": self.count}


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one tenant's retention deleted, or in a dry run would delete, per kind of data; a kind
    the tenant keeps forever is None."""

    tenant_id: str
    tenant_name: str
    dry_run: bool
    messages: Expiry | None
    closed_tickets: Expiry | None
    raw_requests: Expiry | None

    @property
    def total(self) -> int:
        """Rows and entries deleted (or that would be), all kinds together."""
        return sum(expiry.count for expiry in self.kinds().values() if expiry is not None)

    def kinds(self) -> dict[str, Expiry | None]:
        """Each kind of data by its name in the output."""
        return {
            "messages": self.messages,
            "closed_tickets": self.closed_tickets,
            "raw_requests": self.raw_requests,
        }

    def as_json(self) -> dict[str, Any]:
        """The report for JSON output (null for a kind kept forever)."""
        kinds = {name: expiry and expiry.as_json() for name, expiry in self.kinds().items()}
        return {"tenant_id": self.tenant_id, "tenant_name": self.tenant_name, **kinds}


async def apply_retention(
    context: EngineContext, tenant: Tenant, now: datetime, *, dry_run: bool = False
) -> RetentionReport:
    """Delete the tenant's data older than its retention settings allow, as of `now`; in a dry
    run delete nothing and count what would go."""
    [report] = await _apply(context, [tenant], now, dry_run, None)
    return report


async def apply_retention_everywhere(
    context: EngineContext,
    now: datetime,
    *,
    dry_run: bool = False,
    tenant_id: str | None = None,
    progress: Progress | None = None,
) -> list[RetentionReport]:
    """Apply the retention of every tenant that has one (only `tenant_id`'s, whatever it is, when
    given: NotFound if there is no such tenant); one report per tenant."""
    return await _apply(context, await tenants_with_retention(context, tenant_id), now, dry_run, progress)


async def tenants_with_retention(context: EngineContext, tenant_id: str | None = None) -> list[Tenant]:
    """The tenants with at least one retention setting, oldest first; or just `tenant_id`."""
    async with context.sessions() as session:
        if tenant_id is not None:
            return [await get_tenant(session, tenant_id)]
        limited = or_(
            Tenant.retention_messages_days.is_not(None),
            Tenant.retention_closed_tickets_days.is_not(None),
            Tenant.retention_raw_requests_days.is_not(None),
        )
        query = select(Tenant).where(limited).order_by(Tenant.created_at, Tenant.id)
        return list((await session.scalars(query)).all())


async def _apply(
    context: EngineContext, tenants: Sequence[Tenant], now: datetime, dry_run: bool, progress: Progress | None
) -> list[RetentionReport]:
    raw_cutoffs = {
        tenant.id: now - timedelta(days=tenant.retention_raw_requests_days)
        for tenant in tenants
        if tenant.retention_raw_requests_days is not None
    }
    # One scan of the DLQ serves every tenant.
    raw_counts = await expire_raw_requests(context.streams, context.names, raw_cutoffs, dry_run=dry_run)
    reports: list[RetentionReport] = []
    for done, tenant in enumerate(tenants, start=1):
        reports.append(await _apply_to_tenant(context, tenant, now, dry_run, raw_counts))
        if progress is not None:
            progress(done, len(tenants), reports[-1])
    if not dry_run and any(report.total for report in reports):
        await checkpoint_sqlite(context.engine)
    return reports


async def _apply_to_tenant(
    context: EngineContext, tenant: Tenant, now: datetime, dry_run: bool, raw_counts: dict[str, int]
) -> RetentionReport:
    # Messages first: the tickets deleted after them have fewer messages left to unlink.
    messages = await _expire_rows(
        context, tenant.id, tenant.retention_messages_days, now, dry_run, messages_table, expired_messages
    )
    closed_tickets = await _expire_rows(
        context, tenant.id, tenant.retention_closed_tickets_days, now, dry_run, tickets_table, expired_tickets
    )
    raw_days = tenant.retention_raw_requests_days
    raw_requests = (
        None if raw_days is None else Expiry(raw_days, now - timedelta(days=raw_days), raw_counts[tenant.id])
    )
    return RetentionReport(tenant.id, tenant.name, dry_run, messages, closed_tickets, raw_requests)


async def _expire_rows(
    context: EngineContext,
    tenant_id: str,
    days: int | None,
    now: datetime,
    dry_run: bool,
    table: Table,
    expired: Callable[[str, datetime], Select[str]],
) -> Expiry | None:
    if days is None:
        return None
    moment = now - timedelta(days=days)
    rows = expired(tenant_id, moment)
    if dry_run:
        return Expiry(days, moment, await count_expired(context.sessions, rows))
    return Expiry(days, moment, await delete_expired(context.sessions, table, rows))
