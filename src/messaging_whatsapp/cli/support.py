"""What every command module shares: the consoles, failing with a message, JSON output, running
work in an engine context, and the lookups several groups of commands make.

User mistakes print one line to stderr and exit 1, never a traceback; JSON goes to stdout, logs
to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import textwrap
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp import migrate as migrations
from messaging_whatsapp.config import Settings, get_settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.crypto import CredentialsError
from messaging_whatsapp.errors import EngineError, InvalidInput, NotFound
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.base import provider_named
from messaging_whatsapp.streams.base import StreamError
from messaging_whatsapp.tenancy.models import Tenant

stdout = Console()
# Our ids are UUIDs as text.
ID_WIDTH = 36
# Wider than any terminal: to measure a table's natural width.
UNBOUNDED = 100_000
stderr = Console(stderr=True)
T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of text.")]


def fail(message: str) -> typer.Exit:
    """Print the error on stderr; raise the returned Exit (code 1)."""
    stderr.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def print_json(data: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")


def validation_message(exc: Exception) -> str:
    """A pydantic error as `field: problem; ...` (any other error as its text)."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
    return str(exc)


def configure_logging(settings: Settings) -> None:
    """Logs to stderr at LOG_LEVEL, without the lines that are noise or could carry secrets."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Migrations run on every start; their INFO lines are noise once the schema is current.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    quiet_httpx()


def quiet_httpx() -> None:
    """httpx logs every request's URL at INFO, and webhook URLs carry per-instance secrets."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def default_provider() -> str:
    """WHATSAPP_PROVIDER (seed 001): the provider `bind-tenant` binds when --provider is not given."""
    try:
        return provider_named(get_settings().whatsapp_provider).value
    except ValueError as exc:
        raise fail(f"WHATSAPP_PROVIDER: {exc}") from None


def run_engine(work: Callable[[EngineContext], Awaitable[T]], *, migrate: bool = True) -> T:
    """Open the engine context (migrating first), run `work`, and turn user errors into exit 1."""
    settings = get_settings()

    async def main() -> T:
        if migrate:
            await migrations.ensure_current(settings.database_url)
        context = await EngineContext.open(settings)
        try:
            return await work(context)
        finally:
            await context.close()

    try:
        return asyncio.run(main())
    except EngineError as exc:
        raise fail(exc.message) from None
    except ValidationError as exc:
        raise fail(validation_message(exc)) from None
    except (StreamError, CredentialsError, ValueError, OSError) as exc:
        raise fail(str(exc)) from None


async def in_session(context: EngineContext, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction."""
    async with context.sessions() as session, session.begin():
        return await work(session)


async def tenant_or_only_one(
    session: AsyncSession,
    tenant_id: str | None,
    hint: str = "there are several tenants: say which with --tenant-id",
) -> str:
    """The tenant named, or the only tenant there is; with several and none named, `hint` says how."""
    if tenant_id:
        return tenant_id
    tenants = list((await session.scalars(select(Tenant.id).limit(2))).all())
    if not tenants:
        raise InvalidInput("there is no tenant yet: create one with create-tenant")
    if len(tenants) > 1:
        raise InvalidInput(hint)
    return tenants[0]


async def find_instance(session: AsyncSession, ref: str, tenant_id: str | None = None) -> WhatsAppInstance:
    """A number by its id or its name (its label, or its instance name on the provider), within the
    tenant when one is given; a name several numbers share is refused with their ids."""
    instance = await session.get(WhatsAppInstance, ref)
    if instance is not None and tenant_id in (None, instance.tenant_id):
        return instance
    query = (
        select(WhatsAppInstance)
        .where(or_(WhatsAppInstance.name == ref, WhatsAppInstance.instance_name == ref))
        .order_by(WhatsAppInstance.created_at)
        .limit(10)
    )
    if tenant_id:
        query = query.where(WhatsAppInstance.tenant_id == tenant_id)
    found = list((await session.scalars(query)).all())
    if not found:
        raise NotFound(f"instance {ref} not found (no instance has that id or name)")
    if len(found) > 1:
        ids = ", ".join(instance.id for instance in found)
        raise InvalidInput(f"several instances are named {ref!r}: give one's id ({ids})")
    return found[0]


def table(*columns: str, ids: tuple[str, ...] = ("id",), title: str | None = None) -> Table:
    """A table whose id columns are never cut (ids are copied into other commands); the other
    columns wrap or shrink instead when the terminal is narrow."""
    shown = Table(title=title)
    for column in columns:
        if column in ids:
            shown.add_column(column, no_wrap=True, min_width=ID_WIDTH)
        else:
            shown.add_column(column, overflow="fold")
    return shown


def print_table(shown: Table) -> None:
    """The table when the terminal is wide enough for it; else one record per row, its first
    column (the id) whole on a line of its own and the others as `header: value` below it."""
    unbounded = stdout.options.update_width(UNBOUNDED)
    if Measurement.get(stdout, unbounded, shown).maximum <= stdout.width:
        stdout.print(shown)
        return
    headers = [str(column.header) for column in shown.columns]
    for row in zip(*(column.cells for column in shown.columns), strict=True):
        first, *rest = (str(cell) for cell in row)
        stdout.print(first, highlight=False, soft_wrap=True)
        fields = "  ".join(f"{header}: {value}" for header, value in zip(headers[1:], rest, strict=True))
        indented = textwrap.fill(fields, width=stdout.width, initial_indent="  ", subsequent_indent="  ")
        stdout.print(indented, markup=False, highlight=False, soft_wrap=True)
