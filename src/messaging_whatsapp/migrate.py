"""Schema migrations: Alembic, driven from code so the installed package can migrate itself.

Every CLI command migrates first; `ensure_current` asks the database for its revision and runs
Alembic only when that is not the migrations' head, because importing and starting Alembic costs
about a quarter of a second a command.
"""

from __future__ import annotations

import asyncio
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"^revision\b[^=]*=\s*(.+)$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=]*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the package's migrations and the given database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str) -> None:
    """Run `upgrade` from async code (Alembic's env starts its own event loop)."""
    await asyncio.to_thread(upgrade, database_url)


@cache
def head_revisions() -> frozenset[str]:
    """The revisions no other migration follows, read from the migration files' headers."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        if revision is None:
            continue
        revisions.update(_QUOTED.findall(revision.group(1)))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            followed.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions - followed)


async def ensure_current(database_url: str) -> None:
    """Migrate the database unless it is already at the head revision."""
    from messaging_whatsapp.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
            current = set(found.scalars())
    except DBAPIError:  # no alembic_version table yet: a new database
        current = set()
    finally:
        await engine.dispose()
    if current != head_revisions():
        await upgrade_async(database_url)
