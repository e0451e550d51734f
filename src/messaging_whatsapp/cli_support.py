"""What every command module of the CLI shares: consoles, errors, JSON output, the engine context."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp import migrate as migrations
from messaging_whatsapp.config import get_settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.crypto import CredentialsError
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.streams.base import StreamError

stdout = Console()
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


def run_engine(work: Callable[[EngineContext], Awaitable[T]], *, migrate: bool = True) -> T:
    """Open the engine context (migrating first), run `work`, and turn user errors into exit 1."""
    settings = get_settings()

    async def main() -> T:
        if migrate:
            await migrations.upgrade_async(settings.database_url)
        context = await EngineContext.open(settings)
        try:
            return await work(context)
        finally:
            await context.close()

    try:
        return asyncio.run(main())
    except EngineError as exc:
        raise fail(exc.message) from None
    except (StreamError, CredentialsError, ValueError, OSError) as exc:
        raise fail(str(exc)) from None


async def in_session(context: EngineContext, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction."""
    async with context.sessions() as session, session.begin():
        return await work(session)
