"""Everything a running process shares: settings, database, streams and cipher."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import CIPHER_KEY, Cipher
from messaging_whatsapp.crypto.stored import open_cipher
from messaging_whatsapp.db import create_engine, session_factory
from messaging_whatsapp.realtime.factory import open_realtime
from messaging_whatsapp.realtime.hub import Hub
from messaging_whatsapp.streams.base import StreamNames, Streams
from messaging_whatsapp.streams.factory import open_streams

# Objects allocated before a young collection runs (Python's default is 700).
GC_YOUNG_THRESHOLD = 50_000


def settle_garbage_collector() -> None:
    """Once a process has started: keep its long-lived heap out of collections, collect less often.

    Full collections walk every object the framework and the engine hold for the life of the
    process; on the webhook path they were the p99 stalls (about 100 ms, 10 ms after this).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


@dataclass
class EngineContext:
    """The process's shared resources; open once, close on shutdown."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    streams: Streams
    names: StreamNames
    cipher: Cipher
    # The live events' fan-out (in process, or through Redis when it is configured).
    realtime: Hub

    @classmethod
    async def open(cls, settings: Settings) -> EngineContext:
        """Connect to the database and the stream backend named by the settings."""
        engine = create_engine(settings.database_url)
        try:
            # Refuses to open when the keys do not fit the stored credentials (crypto/stored.py).
            cipher = await open_cipher(settings, engine)
        except BaseException:
            await engine.dispose()
            raise
        # Every session carries the cipher: whether a person may be messaged depends on the
        # tenant's suppression list, whose key is encrypted (consent/suppression.py).
        sessions = session_factory(engine, info={CIPHER_KEY: cipher})
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            streams=open_streams(settings, engine),
            names=StreamNames(settings.stream_prefix),
            cipher=cipher,
            realtime=open_realtime(settings),
        )

    async def close(self) -> None:
        """Release connections."""
        await self.realtime.close()
        await self.streams.close()
        await self.engine.dispose()
