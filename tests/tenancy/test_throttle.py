"""The login throttle: free failures, then doubling waits; per key; forgotten after a success or
a quiet window. In process and in Redis, with the same answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from messaging_whatsapp.tenancy.throttle import (
    LONGEST,
    WINDOW,
    Counted,
    LoginThrottle,
    MemoryLoginThrottle,
    RedisLoginThrottle,
    delay_after,
)

ACCOUNT = Counted("account:ana@loja.com.br", 5)
ADDRESS = Counted("ip:203.0.113.9", 20)


def test_delays_double_after_the_free_failures_up_to_the_longest() -> None:
    assert [delay_after(n, 5) for n in range(1, 10)] == [0, 0, 0, 0, 0, 1, 2, 4, 8]
    assert delay_after(100, 5) == LONGEST


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_in_process_counts_wait_forget_on_success_and_after_the_window() -> None:
    clock = Clock()
    throttle = MemoryLoginThrottle(clock)
    for _ in range(5):
        await throttle.failed([ADDRESS, ACCOUNT])
    assert await throttle.wait([ADDRESS, ACCOUNT]) == 0
    await throttle.failed([ADDRESS, ACCOUNT])
    assert await throttle.wait([ADDRESS, ACCOUNT]) == 1.0
    assert await throttle.wait([ADDRESS]) == 0  # the address has failures to spare
    clock.now += 1.0
    assert await throttle.wait([ACCOUNT]) == 0
    await throttle.failed([ACCOUNT])
    assert await throttle.wait([ACCOUNT]) == 2.0

    await throttle.succeeded(ACCOUNT)
    assert await throttle.wait([ACCOUNT]) == 0

    for _ in range(8):
        await throttle.failed([ACCOUNT])
    clock.now += WINDOW + 1
    assert await throttle.wait([ACCOUNT]) == 0
    await throttle.failed([ACCOUNT])
    assert await throttle.wait([ACCOUNT]) == 0  # counting starts again


@pytest.fixture
async def redis_throttle(
    redis_url: str, stream_prefix: str, redis_cleanup: None
) -> AsyncIterator[LoginThrottle]:
    throttle = RedisLoginThrottle(redis_url, stream_prefix)
    yield throttle
    await throttle.close()


async def test_redis_counts_are_shared_and_forgotten_on_success(redis_throttle: LoginThrottle) -> None:
    for _ in range(5):
        await redis_throttle.failed([ACCOUNT])
    assert await redis_throttle.wait([ACCOUNT]) == 0
    await redis_throttle.failed([ACCOUNT, ADDRESS])
    assert 0.5 < await redis_throttle.wait([ACCOUNT, ADDRESS]) <= 1.0
    assert await redis_throttle.wait([ADDRESS]) == 0
    await redis_throttle.succeeded(ACCOUNT)
    assert await redis_throttle.wait([ACCOUNT]) == 0
