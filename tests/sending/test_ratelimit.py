"""Token buckets: one contract, run on the in-process limiter and on Redis.

The memory limiter runs on an injected clock. Redis's script reads Redis's own clock, so there
time really passes: buckets there refill slowly enough (1 token a second) that the immediate
behaviours cannot be undone by a slow machine, and refilling is shown by sleeping for the wait
the limiter asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as redis

from messaging_whatsapp.config import Settings
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.sending.ratelimit import (
    RECIPIENT_BURST,
    RECIPIENT_RATE,
    MemoryRateLimiter,
    RateLimit,
    RateLimiter,
    RedisRateLimiter,
    client_limit,
    open_rate_limiter,
    send_limits,
)

# Slack for float rounding and Redis's millisecond clock when comparing a wait with 1/rate.
EPSILON = 0.01


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """A limiter under test and a way to let time pass for it."""

    name: str
    limiter: RateLimiter
    clock: Clock | None = None

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass: move the injected clock, or really wait for Redis's clock."""
        if self.clock is not None:
            self.clock.now += seconds
        else:
            await asyncio.sleep(seconds)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Harness:
    """Each limiter in turn; Redis keys live under this test's prefix and are deleted after."""
    if request.param == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("stream_prefix")
        request.getfixturevalue("redis_cleanup")
        return Harness("redis", RedisRateLimiter(redis_url, prefix))
    clock = Clock()
    return Harness("memory", MemoryRateLimiter(clock), clock=clock)


@pytest.fixture
async def harness(backend: Harness) -> AsyncIterator[Harness]:
    """The limiter, closed after the test."""
    yield backend
    await backend.limiter.close()


async def _take_all(limiter: RateLimiter, limits: list[RateLimit], count: int) -> list[float]:
    return [await limiter.acquire(limits) for _ in range(count)]


# --- the contract --------------------------------------------------------------------------------


async def test_no_buckets_means_no_wait(harness: Harness) -> None:
    assert await harness.limiter.acquire([]) == 0.0


async def test_burst_is_available_at_once_then_the_wait_is_one_token(harness: Harness) -> None:
    bucket = [RateLimit("instance:a", rate=1.0, burst=4.0)]
    assert await _take_all(harness.limiter, bucket, 4) == [0.0] * 4
    wait = await harness.limiter.acquire(bucket)
    assert 0 < wait <= 1.0 + EPSILON
    # Asking again does not take anything or change the answer's bound.
    again = await harness.limiter.acquire(bucket)
    assert 0 < again <= 1.0 + EPSILON


@pytest.mark.parametrize(("rate", "burst"), [(0.5, 1.0), (1.0, 1.0), (RECIPIENT_RATE, RECIPIENT_BURST)])
async def test_the_wait_is_at_most_one_over_the_rate(harness: Harness, rate: float, burst: float) -> None:
    bucket = [RateLimit("pair:a:b", rate=rate, burst=burst)]
    assert await _take_all(harness.limiter, bucket, int(burst)) == [0.0] * int(burst)
    wait = await harness.limiter.acquire(bucket)
    assert 0 < wait <= 1 / rate + EPSILON
    # Over half of it is still to come (time has barely moved, if at all).
    assert wait > 0.5 / rate


async def test_the_wait_given_is_enough(harness: Harness) -> None:
    bucket = [RateLimit("instance:a", rate=2.0, burst=1.0)]
    assert await harness.limiter.acquire(bucket) == 0.0
    wait = await harness.limiter.acquire(bucket)
    assert 0 < wait <= 0.5 + EPSILON
    await harness.advance(wait + EPSILON)
    assert await harness.limiter.acquire(bucket) == 0.0
    assert await harness.limiter.acquire(bucket) > 0


async def test_a_fast_bucket_refills(harness: Harness) -> None:
    # 20 ms at 1000 tokens a second fills the bucket whatever was left in it.
    bucket = [RateLimit("instance:fast", rate=1000.0, burst=3.0)]
    for _round in range(3):
        assert await _take_all(harness.limiter, bucket, 3) == [0.0] * 3
        await harness.advance(0.02)


async def test_a_refused_acquire_takes_no_token_from_the_others(harness: Harness) -> None:
    scarce = RateLimit("instance:a", rate=1.0, burst=1.0)
    plenty = RateLimit("tenant:t", rate=1.0, burst=3.0)
    assert await harness.limiter.acquire([scarce, plenty]) == 0.0
    # `scarce` is empty: the whole acquire is refused...
    assert await harness.limiter.acquire([plenty, scarce]) > 0
    assert await harness.limiter.acquire([scarce, plenty]) > 0
    # ...and `plenty` still holds the two tokens the refused acquires did not take.
    assert await _take_all(harness.limiter, [plenty], 2) == [0.0, 0.0]
    assert await harness.limiter.acquire([plenty]) > 0


async def test_a_refused_acquire_does_not_start_a_new_bucket(harness: Harness) -> None:
    scarce = RateLimit("instance:a", rate=1.0, burst=1.0)
    new = RateLimit("recipient:t:+5511987654321", rate=1.0, burst=1.0)
    assert await harness.limiter.acquire([scarce]) == 0.0
    assert await harness.limiter.acquire([scarce, new]) > 0
    # The new bucket is still full: its one token is there to take.
    assert await harness.limiter.acquire([new]) == 0.0
    assert await harness.limiter.acquire([new]) > 0


async def test_the_wait_is_the_longest_of_the_empty_buckets(harness: Harness) -> None:
    one_second = RateLimit("instance:a", rate=1.0, burst=1.0)
    two_seconds = RateLimit("pair:a:b", rate=0.5, burst=1.0)
    full = RateLimit("tenant:t", rate=1.0, burst=5.0)
    assert await harness.limiter.acquire([one_second, two_seconds]) == 0.0
    wait = await harness.limiter.acquire([one_second, full, two_seconds])
    assert 1.0 < wait <= 2.0 + EPSILON
    assert 0 < await harness.limiter.acquire([one_second, full]) <= 1.0 + EPSILON


async def test_buckets_are_separate_by_key(harness: Harness) -> None:
    first = [RateLimit("client:10.0.0.1", rate=1.0, burst=2.0)]
    second = [RateLimit("client:10.0.0.2", rate=1.0, burst=2.0)]
    assert await _take_all(harness.limiter, first, 2) == [0.0, 0.0]
    assert await harness.limiter.acquire(first) > 0
    assert await _take_all(harness.limiter, second, 2) == [0.0, 0.0]
    assert await harness.limiter.acquire(second) > 0


# --- the memory limiter on its injected clock ----------------------------------------------------


async def test_memory_refills_at_the_rate_and_holds_at_most_the_burst() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    bucket = [RateLimit("instance:a", rate=4.0, burst=2.0)]
    assert await _take_all(limiter, bucket, 2) == [0.0, 0.0]
    assert await limiter.acquire(bucket) == pytest.approx(0.25)
    clock.now += 0.125
    assert await limiter.acquire(bucket) == pytest.approx(0.125)
    clock.now += 0.125
    assert await limiter.acquire(bucket) == 0.0
    assert await limiter.acquire(bucket) == pytest.approx(0.25)
    # A long idle time fills the bucket only up to its burst.
    clock.now += 3600.0
    assert await _take_all(limiter, bucket, 2) == [0.0, 0.0]
    assert await limiter.acquire(bucket) == pytest.approx(0.25)
    await limiter.close()


async def test_memory_refused_acquire_keeps_the_others_refilling() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    slow = RateLimit("pair:a:b", rate=0.5, burst=1.0)
    fast = RateLimit("instance:a", rate=1.0, burst=1.0)
    assert await limiter.acquire([slow, fast]) == 0.0
    clock.now += 1.0
    assert await limiter.acquire([slow, fast]) == pytest.approx(1.0)
    # The refused acquire neither took `fast`'s refilled token nor reset its refill time.
    assert await limiter.acquire([fast]) == 0.0
    clock.now += 1.0
    assert await limiter.acquire([slow, fast]) == 0.0


# --- Redis storage -------------------------------------------------------------------------------


async def test_redis_keys_are_prefixed_expire_and_are_not_written_on_refusal(
    redis_url: str, stream_prefix: str, redis_cleanup: None
) -> None:
    limiter = RedisRateLimiter(redis_url, stream_prefix)
    client = redis.from_url(redis_url)
    try:
        scarce = RateLimit("instance:a", rate=1.0, burst=1.0)
        new = RateLimit("tenant:t", rate=1.0, burst=10.0)
        assert await limiter.acquire([scarce]) == 0.0
        assert await limiter.acquire([scarce, new]) > 0
        keys = sorted([key async for key in client.scan_iter(match=f"{stream_prefix}*")])
        assert keys == [f"{stream_prefix}ratelimit:instance:a".encode()]
        # The key lives about as long as the bucket takes to fill again, then goes.
        ttl = await client.pttl(keys[0])
        assert 0 < ttl <= 2000
    finally:
        await client.aclose()
        await limiter.close()


# --- which buckets a send and an API client use --------------------------------------------------


def _settings(**values: Any) -> Settings:
    """Settings from these values only (no .env file)."""
    return Settings(_env_file=None, **values)


def test_no_buckets_when_limits_are_lifted() -> None:
    settings = _settings(rate_limits_enabled=False)
    for provider in ProviderName:
        assert send_limits(settings, provider, "t1", "i1", "+5511987654321") == []
    assert client_limit(settings, "10.0.0.1") == []


@pytest.mark.parametrize(
    ("provider", "instance_rate"),
    [
        (ProviderName.META, 80.0),
        (ProviderName.TWILIO, 80.0),
        (ProviderName.EVOLUTION, 5.0),
        (ProviderName.WUZAPI, 5.0),
        (ProviderName.SIMULATOR, 1000.0),
    ],
)
def test_a_send_takes_from_four_buckets(provider: ProviderName, instance_rate: float) -> None:
    settings = _settings(rate_limits_enabled=True, tenant_send_rate=150.0)
    limits = send_limits(settings, provider, "t1", "i1", "+5511987654321")
    assert limits == [
        RateLimit("instance:i1", instance_rate, instance_rate),
        RateLimit("pair:i1:+5511987654321", RECIPIENT_RATE, RECIPIENT_BURST),
        RateLimit("tenant:t1", 150.0, 150.0),
        RateLimit("recipient:t1:+5511987654321", RECIPIENT_RATE, RECIPIENT_BURST),
    ]
    assert len({limit.key for limit in limits}) == 4
    assert all(limit.rate > 0 and limit.burst >= 1 for limit in limits)


async def test_a_tenant_rate_below_one_a_second_still_lets_sends_through() -> None:
    # The tenant bucket's burst follows its rate; under 1 it could never hold a whole token.
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    settings = _settings(rate_limits_enabled=True, tenant_send_rate=0.5)
    limits = send_limits(settings, ProviderName.META, "t1", "i1", "+5511987654321")
    assert await limiter.acquire(limits) == 0.0
    wait = await limiter.acquire(limits)
    assert 0 < wait <= 2.0
    clock.now += 3600.0
    assert await limiter.acquire(limits) == 0.0


def test_an_api_client_takes_from_one_bucket() -> None:
    settings = _settings(rate_limits_enabled=True, api_rate_per_client=20.0, api_burst_per_client=40.0)
    assert client_limit(settings, "10.0.0.1") == [RateLimit("client:10.0.0.1", 20.0, 40.0)]


async def test_open_rate_limiter_picks_redis_only_when_configured(redis_url: str, stream_prefix: str) -> None:
    memory = open_rate_limiter(_settings(redis_url=None))
    assert isinstance(memory, MemoryRateLimiter)
    await memory.close()
    shared = open_rate_limiter(_settings(redis_url=redis_url, stream_prefix=stream_prefix))
    assert isinstance(shared, RedisRateLimiter)
    await shared.close()
