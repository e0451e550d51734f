"""Token-bucket rate limits, in Redis when scaled and in the process when embedded.

A send takes one token from every bucket it touches (the instance, the instance-and-recipient
pair, the tenant, the recipient across the tenant) or none: when any bucket is empty the caller
learns how long to wait and nothing is taken, so a refused send does not eat the others' room.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from messaging_whatsapp.config import Settings
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.redis_client import redis_client


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A bucket: `rate` tokens a second, holding at most `burst`."""

    key: str
    rate: float
    burst: float


class RateLimiter(Protocol):
    """Takes one token from each of several buckets, all or nothing."""

    async def acquire(self, limits: list[RateLimit]) -> float:
        """0 when the tokens were taken; otherwise the seconds to wait before trying again."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryRateLimiter:
    """Buckets in this process's memory (the embedded deployment runs one process)."""

    MAX_BUCKETS = 100_000
    # Longer than the slowest bucket takes to refill (a recipient's: 5 tokens at 1 per 6 s).
    IDLE_SECONDS = 3600.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    async def acquire(self, limits: list[RateLimit]) -> float:
        """0 when the tokens were taken; otherwise the seconds to wait."""
        now = self._clock()
        levels = [self._level(limit, now) for limit in limits]
        wait = max(
            ((1.0 - level) / limit.rate for limit, level in zip(limits, levels, strict=True) if level < 1.0),
            default=0.0,
        )
        if wait > 0:
            return wait
        for limit, level in zip(limits, levels, strict=True):
            self._buckets[limit.key] = (level - 1.0, now)
        if len(self._buckets) > self.MAX_BUCKETS:
            self._forget_idle(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop buckets idle long enough to be full again (one per recipient would grow forever)."""
        idle = [key for key, (_, updated) in self._buckets.items() if now - updated > self.IDLE_SECONDS]
        for key in idle:
            del self._buckets[key]

    def _level(self, limit: RateLimit, now: float) -> float:
        tokens, updated = self._buckets.get(limit.key, (limit.burst, now))
        return min(limit.burst, tokens + (now - updated) * limit.rate)

    async def close(self) -> None:
        """Nothing to release."""


# All-or-nothing over every bucket, on Redis's own clock so hosts with skewed clocks agree.
_ACQUIRE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local data = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(data[1]) or burst
  local stamp = tonumber(data[2]) or now
  tokens = math.min(burst, tokens + (now - stamp) * rate)
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 't', tostring(levels[i] - 1), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate) + 1000)
end
return '0'
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every sender and API process."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self._redis: Redis = redis_client(redis_url)
        self._prefix = prefix
        self._script = self._redis.register_script(_ACQUIRE_SCRIPT)

    async def acquire(self, limits: list[RateLimit]) -> float:
        """0 when the tokens were taken; otherwise the seconds to wait."""
        if not limits:
            return 0.0
        keys = [f"{self._prefix}ratelimit:{limit.key}" for limit in limits]
        # Rates travel per millisecond, the script's unit of time.
        args: list[float] = []
        for limit in limits:
            args += [limit.rate / 1000.0, limit.burst]
        wait_ms = float(await self._script(keys=keys, args=args))
        return wait_ms / 1000.0

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def open_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis buckets when REDIS_URL is set, else in-process ones."""
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.stream_prefix)
    return MemoryRateLimiter()


# Messages a second an instance may send by default: Meta's and Twilio's documented throughput,
# a cautious pace for the unofficial gateways (campaigns pace them far lower still).
INSTANCE_RATES: dict[ProviderName, float] = {
    ProviderName.META: 80.0,
    ProviderName.TWILIO: 80.0,
    ProviderName.EVOLUTION: 5.0,
    ProviderName.WUZAPI: 5.0,
    ProviderName.SIMULATOR: 1000.0,
}
# Meta's pair limit: about one message every 6 s to the same person, with small bursts.
RECIPIENT_RATE = 1 / 6
RECIPIENT_BURST = 5.0


def send_limits(
    settings: Settings, provider: ProviderName, tenant_id: str, instance_id: str, phone: str
) -> list[RateLimit]:
    """The buckets one send takes a token from (none when limits are lifted)."""
    if not settings.rate_limits_enabled:
        return []
    instance_rate = INSTANCE_RATES[provider]
    return [
        RateLimit(f"instance:{instance_id}", instance_rate, max(1.0, instance_rate)),
        RateLimit(f"pair:{instance_id}:{phone}", RECIPIENT_RATE, RECIPIENT_BURST),
        # A burst under one token would refuse every send for good (a rate below 1/s).
        RateLimit(f"tenant:{tenant_id}", settings.tenant_send_rate, max(1.0, settings.tenant_send_rate)),
        RateLimit(f"recipient:{tenant_id}:{phone}", RECIPIENT_RATE, RECIPIENT_BURST),
    ]


def client_limit(settings: Settings, client: str) -> list[RateLimit]:
    """The public API's bucket for one client address (none when limits are lifted)."""
    if not settings.rate_limits_enabled:
        return []
    return [RateLimit(f"client:{client}", settings.api_rate_per_client, settings.api_burst_per_client)]
