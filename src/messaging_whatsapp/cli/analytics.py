"""The analytics rollup on demand: `rebuild-analytics` recomputes it from the messages."""

from __future__ import annotations

from typing import Annotated

import typer

from messaging_whatsapp.analytics.rollup import rebuild
from messaging_whatsapp.cli.support import JsonOption, print_json, run_engine, stdout
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow


def rebuild_analytics(
    tenant_id: Annotated[str | None, typer.Option(help="Only this tenant (default: every tenant).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the analytics rollup (hourly figures per number and campaign) from the stored
    messages; the scheduler keeps it current, and does this itself on its first pass."""

    async def work(context: EngineContext) -> int:
        async with context.sessions() as session, session.begin():
            return await rebuild(session, utcnow(), tenant_id)

    hours = run_engine(work)
    if as_json:
        print_json({"hours": hours})
    else:
        stdout.print(f"recomputed {hours} hours of numbers' messages")
