"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from messaging_whatsapp.db import create_engine
from messaging_whatsapp.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


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
