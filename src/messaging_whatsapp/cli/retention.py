"""Data retention (LGPD) on demand: `apply-retention` deletes now what the scheduler would delete
at its next hourly pass, or with --dry-run only says what that is."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from messaging_whatsapp.cli.support import JsonOption, print_json, run_engine, stderr, stdout
from messaging_whatsapp.cli.support import table as support_table
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.retention.service import RetentionReport, apply_retention_everywhere

# Kind names as the table shows them.
KIND_LABELS = {
    "messages": "messages",
    "closed_tickets": "closed tickets",
    "raw_requests": "raw requests",
}


def apply_retention(
    tenant_id: Annotated[
        str | None, typer.Option(help="Only this tenant (default: every tenant with a retention setting).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Delete nothing; say what would be deleted, per tenant and kind."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Apply the tenants' data retention now: delete messages, closed tickets and raw requests in
    the DLQ older than each tenant keeps them (update-tenant --retention-*)."""
    now = utcnow()

    async def work(context: EngineContext) -> list[RetentionReport]:
        return await apply_retention_everywhere(
            context, now, dry_run=dry_run, tenant_id=tenant_id, progress=_show_progress
        )

    reports = run_engine(work)
    if as_json:
        print_json(_as_json(reports, now, dry_run))
    elif not reports:
        stdout.print("no tenant has a retention setting: nothing to delete")
    else:
        stdout.print(_table(reports, dry_run))


def _show_progress(done: int, total: int, report: RetentionReport) -> None:
    """A line on stderr per tenant when there are several (a first run may take a while)."""
    if total > 1:
        verb = "would delete" if report.dry_run else "deleted"
        stderr.print(f"[{done}/{total}] {report.tenant_name}: {verb} {report.total}", highlight=False)


def _as_json(reports: list[RetentionReport], now: datetime, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "now": now.isoformat(),
        "tenants": [report.as_json() for report in reports],
    }


def _table(reports: list[RetentionReport], dry_run: bool) -> Table:
    title = "dry run: nothing was deleted" if dry_run else None
    table = support_table(
        "tenant",
        "kind",
        "kept",
        "cut-off (UTC)",
        "would delete" if dry_run else "deleted",
        ids=("tenant",),
        title=title,
    )
    for report in reports:
        # The tenant's name and id once, in the first of its rows.
        tenant_cells = [f"{report.tenant_name}\n{report.tenant_id}", "", ""]
        for (kind, expiry), tenant in zip(report.kinds().items(), tenant_cells, strict=True):
            if expiry is None:
                table.add_row(tenant, KIND_LABELS[kind], "forever", "", "")
            else:
                cutoff = f"{expiry.cutoff:%Y-%m-%d %H:%M}"
                table.add_row(tenant, KIND_LABELS[kind], f"{expiry.days} days", cutoff, str(expiry.count))
        table.rows[-1].end_section = True
    return table
