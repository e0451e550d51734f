"""Failed logins slow the next ones down: per client address and per account, with growing delays.

A few failures are free (a person mistypes); after that each failure makes the next attempt wait
twice as long as the last, up to LONGEST. A success clears the account's count. Counts live in
Redis when REDIS_URL is set (every API process sees them) and in the process otherwise, and are
forgotten WINDOW after the last failure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from messaging_whatsapp.config import Settings
from messaging_whatsapp.redis_client import redis_client

WINDOW = 15 * 60.0
LONGEST = 15 * 60.0


@dataclass(frozen=True, slots=True)
class Counted:
    """What is counted: a client address or an account, and how many failures it may make freely."""

    key: str
    free: int


def delay_after(failures: int, free: int) -> float:
    """Seconds to wait after `failures` failures: none while free, then 1, 2, 4 ... up to LONGEST."""
    if failures <= free:
        return 0.0
    return min(LONGEST, 2.0 ** (failures - free - 1))


class LoginThrottle(Protocol):
    """Remembers failed logins and says how long the next attempt must wait."""

    async def wait(self, counted: list[Counted]) -> float:
        """Seconds until an attempt for these is allowed (0: now)."""
        ...

    async def failed(self, counted: list[Counted]) -> None:
        """Count a failure for each."""
        ...

    async def succeeded(self, counted: Counted) -> None:
        """Forget the failures of one (the account that logged in)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryLoginThrottle:
    """Counts in this process (the embedded deployment runs one)."""

    MAX_KEYS = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> (failures, time of the last one, allowed again at)
        self._counts: dict[str, tuple[int, float, float]] = {}

    async def wait(self, counted: list[Counted]) -> float:
        """Seconds until an attempt for these is allowed (0: now)."""
        now = self._clock()
        return max((self._allowed_at(c.key, now) - now for c in counted), default=0.0)

    def _allowed_at(self, key: str, now: float) -> float:
        _, last, allowed_at = self._counts.get(key, (0, now, now))
        return now if now - last > WINDOW else allowed_at

    async def failed(self, counted: list[Counted]) -> None:
        """Count a failure for each."""
        now = self._clock()
        for c in counted:
            failures, last, _ = self._counts.get(c.key, (0, now, now))
            failures = 1 if now - last > WINDOW else failures + 1
            self._counts[c.key] = (failures, now, now + delay_after(failures, c.free))
        if len(self._counts) > self.MAX_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if now - v[1] <= WINDOW}

    async def succeeded(self, counted: Counted) -> None:
        """Forget the account's failures."""
        self._counts.pop(counted.key, None)

    async def close(self) -> None:
        """Nothing to release."""


class RedisLoginThrottle:
    """Counts in Redis, shared by every API process."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self._redis: Redis = redis_client(redis_url)
        self._prefix = f"{prefix}login:"

    async def wait(self, counted: list[Counted]) -> float:
        """Seconds until an attempt for these is allowed (0: now)."""
        if not counted:
            return 0.0
        async with self._redis.pipeline(transaction=False) as pipe:
            for c in counted:
                pipe.pttl(f"{self._prefix}block:{c.key}")
            remaining = await pipe.execute()
        return max([0.0, *(int(ms) / 1000.0 for ms in remaining)])

    async def failed(self, counted: list[Counted]) -> None:
        """Count a failure for each, and block the next attempts for the delay it earned."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for c in counted:
                pipe.incr(f"{self._prefix}count:{c.key}")
                pipe.expire(f"{self._prefix}count:{c.key}", int(WINDOW))
            replies = await pipe.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            for c, failures in zip(counted, replies[::2], strict=True):
                delay = delay_after(int(failures), c.free)
                if delay > 0:
                    pipe.set(f"{self._prefix}block:{c.key}", 1, px=math.ceil(delay * 1000))
            await pipe.execute()

    async def succeeded(self, counted: Counted) -> None:
        """Forget the account's failures."""
        await self._redis.delete(f"{self._prefix}count:{counted.key}", f"{self._prefix}block:{counted.key}")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def open_login_throttle(settings: Settings) -> LoginThrottle:
    """Redis counts when REDIS_URL is set, else in-process ones."""
    if settings.redis_url:
        return RedisLoginThrottle(settings.redis_url, settings.stream_prefix)
    return MemoryLoginThrottle()
