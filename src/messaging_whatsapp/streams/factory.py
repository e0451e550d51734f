"""Choose the stream backend from the settings: Redis when REDIS_URL is set, else the database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from messaging_whatsapp.config import Settings
from messaging_whatsapp.streams.base import StreamNames, Streams
from messaging_whatsapp.streams.sql import SqlStreams


def open_streams(settings: Settings, engine: AsyncEngine) -> Streams:
    """The configured backend, with stream names, timeouts and durability from the settings."""
    names = StreamNames(prefix=settings.stream_prefix)
    if settings.redis_url:
        # Imported only when configured: the Redis client costs a tenth of a second to import, on
        # every CLI command of an embedded engine.
        from messaging_whatsapp.streams.redis import RedisStreams

        return RedisStreams(
            settings.redis_url,
            names,
            visibility_timeout_ms=settings.stream_visibility_timeout_ms,
            max_deliveries=settings.stream_max_deliveries,
            fsync=settings.webhook_durability == "fsync",
        )
    return SqlStreams(
        engine,
        names,
        visibility_timeout_ms=settings.stream_visibility_timeout_ms,
        max_deliveries=settings.stream_max_deliveries,
    )
