"""Entry ids are never reused, even after trimming empties the stream (a group's cursor relies on it)."""

from __future__ import annotations

import pytest

from messaging_whatsapp.db import create_engine
from messaging_whatsapp.streams.base import StreamNames
from messaging_whatsapp.streams.sql import SqlStreams


@pytest.mark.parametrize("database", ["fresh_sqlite_url", "fresh_postgres_url"])
async def test_ids_keep_growing_after_the_table_is_emptied(
    request: pytest.FixtureRequest, database: str
) -> None:
    engine = create_engine(request.getfixturevalue(database))
    streams = SqlStreams(engine, StreamNames("ids:"), visibility_timeout_ms=1000, max_deliveries=3)
    try:
        await streams.ensure_group("s", "g")
        first = await streams.append_many("s", [{"n": "1"}, {"n": "2"}])
        await streams.ack("s", "g", [entry.id for entry in await streams.read("s", "g", "c", 10)])
        assert await streams.trim("s") == 2

        later = await streams.append("s", {"n": "3"})

        assert int(later) > max(int(entry_id) for entry_id in first)
        assert [entry.fields for entry in await streams.read("s", "g", "c", 10)] == [{"n": "3"}]
    finally:
        await streams.close()
        await engine.dispose()
