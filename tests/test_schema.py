"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from messaging_whatsapp.db import create_engine
from messaging_whatsapp.inbox.models import (
    CONTACTS_SEARCH_TABLE,
    MESSAGES_SEARCH_TABLE,
    POSTGRESQL_ONLY_INDEXES,
)
from messaging_whatsapp.knowledge.models import KNOWLEDGE_SEARCH_TABLE, SEARCH_VECTOR_COLUMN
from messaging_whatsapp.knowledge.models import POSTGRESQL_ONLY_INDEXES as KNOWLEDGE_FTS_INDEXES
from messaging_whatsapp.models import Base


def _compared(connection: Connection) -> Callable[..., bool]:
    """What the check compares: everything, but for what SQLite cannot have or reflect."""
    sqlite = connection.dialect.name == "sqlite"

    def include(item: Any, name: str | None, type_: str, _reflected: bool, _other: Any) -> bool:
        if (type_ == "index" and name in KNOWLEDGE_FTS_INDEXES) or (
            type_ == "column" and name == SEARCH_VECTOR_COLUMN
        ):
            # The knowledge base's tsvector (PostgreSQL), kept by a trigger: no model's column.
            return False
        if not sqlite:
            return True
        if type_ == "table":
            # The full-text indexes (FTS5 tables and their shadow tables) are no models.
            return not (name or "").startswith(
                (MESSAGES_SEARCH_TABLE, CONTACTS_SEARCH_TABLE, KNOWLEDGE_SEARCH_TABLE)
            )
        if type_ == "index":
            return name not in POSTGRESQL_ONLY_INDEXES
        # A column added with its reference in place (migration 0019): SQLite keeps no name for it.
        return not (
            type_ == "foreign_key_constraint"
            and item.table.name == "conversations"
            and {c.name for c in item.columns} == {"assignee_id"}
        )

    return include


def _differences(connection: Connection) -> list[Any]:
    opts = {"compare_type": True, "include_object": _compared(connection)}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, Base.metadata))


# SQLite has no trigram indexes (the include filter leaves them out); alembic warns of the one on
# an expression before it asks.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
async def test_the_migrated_schema_is_the_models_schema(
    database: str, request: pytest.FixtureRequest
) -> None:
    engine = create_engine(request.getfixturevalue(database))
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
