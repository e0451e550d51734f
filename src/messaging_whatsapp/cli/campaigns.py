"""Campaign commands: create, import a CSV (with a progress bar), start / pause / resume / cancel,
a live status view, and the list."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import contacts, lifecycle, service
from messaging_whatsapp.campaigns.importing import ContactRow, decode, read_csv
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.models import Campaign, CampaignStatus
from messaging_whatsapp.campaigns.schemas import CampaignCreate, CampaignItem, ImportReport
from messaging_whatsapp.cli.support import (
    JsonOption,
    fail,
    find_instance,
    in_session,
    print_json,
    print_table,
    run_engine,
    stderr,
    stdout,
    validation_message,
)
from messaging_whatsapp.cli.support import table as support_table
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import take_sqlite_writer, utcnow
from messaging_whatsapp.errors import NotFound

FINISHED = frozenset({CampaignStatus.COMPLETED.value, CampaignStatus.CANCELLED.value})


async def _campaign(session: AsyncSession, campaign_id: str, *, lock: bool = False) -> Campaign:
    """A campaign of any tenant (the operator's CLI)."""
    query = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        await take_sqlite_writer(session)  # where FOR UPDATE means nothing
        query = query.with_for_update()
    campaign = await session.scalar(query)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def _variations(
    texts: list[str], template: str | None, language: str, parameters: list[str]
) -> list[dict[str, Any]]:
    """The campaign's variations: each text, then the template (what official numbers send to
    people who have not written in the last 24 hours)."""
    variations: list[dict[str, Any]] = [{"content": text} for text in texts]
    if template is not None:
        variations.append({"template": {"name": template, "language": language, "parameters": parameters}})
    elif parameters:
        raise fail("--template-param needs --template")
    return variations


def campaign_create(
    name: Annotated[str, typer.Option(help="The campaign's name.")],
    instance: Annotated[
        list[str], typer.Option(help="An instance (id or name) to send through; repeat for more.")
    ],
    message: Annotated[
        list[str] | None, typer.Option(help="A variation of the text ({{name}} etc.); repeat for more.")
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(help="An approved template (Meta: its name; Twilio: its Content SID) as a variation."),
    ] = None,
    template_language: Annotated[str, typer.Option(help="The template's language.")] = "pt_BR",
    template_param: Annotated[
        list[str] | None, typer.Option(help="The template's next body parameter ({{name}} etc.); repeat.")
    ] = None,
    tenant_id: Annotated[str | None, typer.Option(help="Needed when there are several tenants.")] = None,
    rotation_mode: Annotated[str, typer.Option(help="round_robin, balanced or intelligent.")] = "intelligent",
    interval_min: Annotated[
        float | None, typer.Option(help="Seconds between messages of a number, at least.")
    ] = None,
    interval_max: Annotated[
        float | None, typer.Option(help="Seconds between messages of a number, at most.")
    ] = None,
    daily_limit: Annotated[int | None, typer.Option(help="Messages per number per day.")] = None,
    warmup: Annotated[bool, typer.Option(help="Cap new numbers with the warm-up schedule.")] = True,
    max_per_minute: Annotated[
        int | None, typer.Option(help="Messages a number may send a minute (gateways: 8).")
    ] = None,
    max_per_hour: Annotated[
        int | None, typer.Option(help="Messages a number may send an hour (gateways: 200).")
    ] = None,
    max_identical_per_hour: Annotated[
        int | None, typer.Option(help="Times a number may send one same text an hour (gateways: 3).")
    ] = None,
    typing: Annotated[
        bool | None, typer.Option(help="Show typing... before each message (gateways: on).")
    ] = None,
    window: Annotated[str | None, typer.Option(help="Send window, e.g. 08:00-20:00.")] = None,
    weekdays: Annotated[
        str | None, typer.Option(help="Window weekdays, 0 Monday .. 6 Sunday: 0,1,2,3,4.")
    ] = None,
    scheduled_at: Annotated[
        datetime | None, typer.Option(help="Start at this time (ISO 8601) once started.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a draft campaign (add contacts with campaign-import, then campaign-start)."""
    settings: dict[str, Any] = {
        "interval_min_s": interval_min,
        "interval_max_s": interval_max,
        "daily_limit": daily_limit,
        "warmup": warmup,
        "max_per_minute": max_per_minute,
        "max_per_hour": max_per_hour,
        "max_identical_per_hour": max_identical_per_hour,
        "typing": typing,
    }
    if window:
        start, _, end = window.partition("-")
        days = [int(day) for day in weekdays.split(",")] if weekdays else list(range(7))
        settings["send_window"] = {"start": start.strip(), "end": end.strip(), "weekdays": days}
    try:
        data = CampaignCreate.model_validate(
            {
                "name": name,
                "rotation_mode": rotation_mode,
                "instance_ids": instance,
                "messages": _variations(message or [], template, template_language, template_param or []),
                "settings": settings,
                "scheduled_at": scheduled_at,
            }
        )
    except (ValidationError, ValueError) as exc:
        raise fail(validation_message(exc)) from None

    async def work(context: EngineContext) -> CampaignItem:
        async def create(session: AsyncSession) -> CampaignItem:
            # The numbers may be named by id or name; they say whose campaign it is.
            numbers = [await find_instance(session, ref, tenant_id) for ref in instance]
            tenant = tenant_id or numbers[0].tenant_id
            resolved = data.model_copy(update={"instance_ids": [number.id for number in numbers]})
            campaign, _ = await service.create_campaign(session, tenant, resolved, user_id=None, now=utcnow())
            return CampaignItem.of(campaign)

        return await in_session(context, create)

    item = run_engine(work)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"campaign {item.id} ({item.name}) created as a draft")


def campaign_import(
    campaign_id: Annotated[str, typer.Argument(help="The campaign.")],
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with a phone column; name and other columns optional.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Add the contacts of a CSV file to a campaign, with a progress bar."""
    try:
        text = decode(csv_file.read_bytes())
    except OSError as exc:
        raise fail(f"cannot read {csv_file}: {exc.strerror}") from None
    total = max(text.count("\n") - 1, 0)

    async def work(context: EngineContext) -> ImportReport:
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            disable=as_json,
        ) as progress:
            task = progress.add_task("rows", total=total)

            def rows() -> Iterator[ContactRow]:
                for row in read_csv(text):
                    progress.advance(task)
                    yield row

            async def add(session: AsyncSession) -> ImportReport:
                campaign = await _campaign(session, campaign_id, lock=True)
                return await contacts.add_contacts(session, campaign, rows(), now=utcnow(), imported=True)

            return await in_session(context, add)

    report = run_engine(work)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    stdout.print(
        f"added {report.added}, duplicates {report.duplicates}, "
        f"opted out {report.opted_out}, invalid {report.invalid}"
    )
    for rejected in report.rejected[:20]:
        stdout.print(f"  line {rejected.line}: {rejected.phone!r}: {rejected.reason}", markup=False)
    if report.invalid > 20:
        stdout.print(f"  ... and {report.invalid - 20} more invalid rows (--json lists up to 1,000)")


def _transition(campaign_id: str, action: Action, as_json: bool) -> None:
    async def work(context: EngineContext) -> CampaignItem:
        async def change(session: AsyncSession) -> CampaignItem:
            tenant_id = (await _campaign(session, campaign_id)).tenant_id
            campaign = await lifecycle.transition(
                session, tenant_id, campaign_id, action, user_id=None, now=utcnow()
            )
            return CampaignItem.of(campaign)

        return await in_session(context, change)

    item = run_engine(work)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"campaign {item.id} is {item.status}")


def campaign_start(
    campaign_id: Annotated[str, typer.Argument(help="The campaign.")], as_json: JsonOption = False
) -> None:
    """Start a draft campaign (now, or at its scheduled time). A dispatcher must be running."""
    _transition(campaign_id, Action.START, as_json)


def campaign_pause(
    campaign_id: Annotated[str, typer.Argument(help="The campaign.")], as_json: JsonOption = False
) -> None:
    """Pause a running campaign."""
    _transition(campaign_id, Action.PAUSE, as_json)


def campaign_resume(
    campaign_id: Annotated[str, typer.Argument(help="The campaign.")], as_json: JsonOption = False
) -> None:
    """Resume a paused campaign."""
    _transition(campaign_id, Action.RESUME, as_json)


def campaign_cancel(
    campaign_id: Annotated[str, typer.Argument(help="The campaign.")], as_json: JsonOption = False
) -> None:
    """Cancel a campaign for good (contacts not yet sent end skipped)."""
    _transition(campaign_id, Action.CANCEL, as_json)


def _status_table(item: CampaignItem) -> Table:
    table = Table(title=item.name, show_header=False)
    table.add_row("id", item.id)
    table.add_row("status", item.status + (f" ({item.paused_reason})" if item.paused_reason else ""))
    if item.waiting_reason is not None:
        table.add_row("waiting", f"{item.waiting_reason.code}: {item.waiting_reason.message}")
    table.add_row("progress", f"{item.progress:.1f}% of {item.total_contacts}")
    table.add_row("pending", str(item.pending_count))
    table.add_row("sent", str(item.sent_count))
    table.add_row("delivered", f"{item.delivered_count} ({item.delivery_rate:.1f}%)")
    table.add_row("read", f"{item.read_count} ({item.read_rate:.1f}%)")
    table.add_row("failed", str(item.failed_count))
    table.add_row("opted out", str(item.opted_out_count))
    table.add_row("skipped", str(item.skipped_count))
    return table


def status_line(item: CampaignItem) -> str:
    """A campaign's status in one plain line (for output that is not a terminal), with why it waits."""
    status = item.status + (f" ({item.paused_reason})" if item.paused_reason else "")
    return (
        f"{item.id} {status}: {item.progress:.1f}% of {item.total_contacts}, pending {item.pending_count}, "
        f"sent {item.sent_count}, delivered {item.delivered_count}, read {item.read_count}, "
        f"failed {item.failed_count}, opted out {item.opted_out_count}, skipped {item.skipped_count}"
        + (f"; waiting: {item.waiting_reason.message}" if item.waiting_reason is not None else "")
    )


async def _follow_plainly(
    load: Callable[[EngineContext], Awaitable[CampaignItem]], context: EngineContext, item: CampaignItem
) -> CampaignItem:
    """Print the campaign's status line whenever it changes, until the campaign finishes."""
    line = status_line(item)
    stdout.print(line, markup=False, highlight=False, soft_wrap=True)
    while item.status not in FINISHED:
        await asyncio.sleep(0.5)
        item = await load(context)
        if status_line(item) != line:
            line = status_line(item)
            stdout.print(line, markup=False, highlight=False, soft_wrap=True)
    return item


def campaign_status(
    campaign_id: Annotated[str, typer.Argument(help="The campaign.")],
    follow: Annotated[bool, typer.Option(help="Keep the view live until the campaign finishes.")] = True,
    as_json: JsonOption = False,
) -> None:
    """A campaign's progress, live until it completes or is cancelled (Ctrl-C to leave)."""

    async def load(context: EngineContext) -> CampaignItem:
        async with context.sessions() as session:
            return CampaignItem.of(await _campaign(session, campaign_id))

    async def work(context: EngineContext) -> CampaignItem:
        item = await load(context)
        if as_json or not follow:
            return item
        if not stdout.is_terminal:
            # Output to a file or a pipe: a plain line at each change, not a live view's redraws.
            return await _follow_plainly(load, context, item)
        with Live(_status_table(item), console=stdout, refresh_per_second=4) as live:
            while item.status not in FINISHED:
                await asyncio.sleep(0.5)
                item = await load(context)
                live.update(_status_table(item))
        return item

    try:
        item = run_engine(work)
    except KeyboardInterrupt:
        return
    if as_json:
        print_json(item.model_dump(mode="json"))
    elif not follow:
        if stdout.is_terminal:
            stdout.print(_status_table(item))
        else:
            stdout.print(status_line(item), markup=False, highlight=False, soft_wrap=True)


def campaign_list(
    tenant_id: Annotated[str | None, typer.Option(help="Only this tenant's campaigns.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List campaigns, newest first."""

    async def work(context: EngineContext) -> list[CampaignItem]:
        async with context.sessions() as session:
            query = select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())
            if tenant_id:
                query = query.where(Campaign.tenant_id == tenant_id)
            return [CampaignItem.of(campaign) for campaign in await session.scalars(query)]

    items = run_engine(work)
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    table = support_table("id", "name", "status", "progress", "sent", "delivered", "read", "failed")
    for item in items:
        table.add_row(
            item.id,
            item.name,
            item.status,
            f"{item.progress:.0f}%",
            str(item.sent_count),
            str(item.delivered_count),
            str(item.read_count),
            str(item.failed_count),
        )
    print_table(table)
