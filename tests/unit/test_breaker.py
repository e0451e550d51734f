"""The per-instance circuit breaker: closed, open after a run of failures, half-open with one probe."""

from __future__ import annotations

import pytest

from messaging_whatsapp.sending.breaker import BreakerState, CircuitBreaker


def _state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read fresh (each call can change it, which mypy's narrowing misses)."""
    return breaker.state


def _opened(threshold: int = 3, cooldown: float = 10.0, max_cooldown: float = 35.0) -> CircuitBreaker:
    """A breaker that has just opened at t=100."""
    breaker = CircuitBreaker(threshold=threshold, cooldown=cooldown, max_cooldown=max_cooldown)
    for _ in range(threshold):
        breaker.record_failure(100.0)
    assert _state(breaker) is BreakerState.OPEN
    return breaker


def test_closed_lets_everything_through() -> None:
    breaker = CircuitBreaker(threshold=3)
    assert _state(breaker) is BreakerState.CLOSED
    assert all(breaker.allow(float(t)) for t in range(10))
    assert breaker.retry_at(5.0) == 6.0


def test_opens_after_threshold_failures_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=10.0)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.allow(2.5)
    breaker.record_failure(3.0)
    assert _state(breaker) is BreakerState.OPEN
    assert breaker.opened_at == 3.0
    assert breaker.current_cooldown == 10.0


def test_refuses_while_open_and_says_when_to_retry() -> None:
    breaker = _opened(cooldown=10.0)
    for now in (100.0, 105.0, 109.999):
        assert not breaker.allow(now)
        assert _state(breaker) is BreakerState.OPEN
        assert breaker.retry_at(now) == 110.0


def test_success_in_closed_state_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(threshold=3)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    breaker.record_success()
    assert breaker.failures == 0
    breaker.record_failure(3.0)
    breaker.record_failure(4.0)
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.allow(4.5)
    breaker.record_failure(5.0)
    assert _state(breaker) is BreakerState.OPEN


def test_half_open_after_cooldown_lets_exactly_one_probe_through() -> None:
    breaker = _opened(cooldown=10.0)
    assert breaker.allow(110.0)
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allow(110.0)
    assert not breaker.allow(200.0)
    assert _state(breaker) is BreakerState.HALF_OPEN
    # Refused while the probe is out: try again shortly.
    assert breaker.retry_at(200.0) == 201.0


def test_probe_success_closes() -> None:
    breaker = _opened(cooldown=10.0)
    assert breaker.allow(111.0)
    breaker.record_success()
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.failures == 0
    assert all(breaker.allow(111.0 + i) for i in range(5))
    # A fresh run of failures is needed to open it again, with the base cooldown.
    breaker.record_failure(120.0)
    breaker.record_failure(121.0)
    assert _state(breaker) is BreakerState.CLOSED
    breaker.record_failure(122.0)
    assert _state(breaker) is BreakerState.OPEN
    assert breaker.current_cooldown == 10.0


def test_probe_failure_reopens_with_doubled_cooldown_up_to_the_cap() -> None:
    breaker = _opened(cooldown=10.0, max_cooldown=35.0)
    now = 100.0
    for expected in (20.0, 35.0, 35.0):
        now += breaker.current_cooldown
        assert breaker.allow(now)
        assert _state(breaker) is BreakerState.HALF_OPEN
        breaker.record_failure(now)
        assert _state(breaker) is BreakerState.OPEN
        assert breaker.opened_at == now
        assert breaker.current_cooldown == expected
        assert breaker.retry_at(now) == now + expected
        assert not breaker.allow(now + expected - 0.001)
    assert breaker.allow(now + 35.0)


def test_half_open_probe_is_reoffered_after_each_reopening() -> None:
    breaker = _opened(cooldown=10.0)
    assert breaker.allow(110.0)
    breaker.record_failure(110.0)
    assert not breaker.allow(129.0)
    assert breaker.allow(130.0)
    assert not breaker.allow(130.0)
    breaker.record_success()
    assert _state(breaker) is BreakerState.CLOSED


@pytest.mark.parametrize("threshold", [1, 2, 5])
def test_threshold_is_exact(threshold: int) -> None:
    breaker = CircuitBreaker(threshold=threshold, cooldown=1.0)
    for i in range(threshold - 1):
        breaker.record_failure(float(i))
        assert _state(breaker) is BreakerState.CLOSED
    breaker.record_failure(float(threshold))
    assert _state(breaker) is BreakerState.OPEN


def test_a_late_failure_while_open_does_not_restart_the_cooldown() -> None:
    breaker = _opened(threshold=3, cooldown=10.0)
    opened_until = breaker.retry_at(100.0)
    breaker.record_failure(105.0)  # a send that left before the breaker opened
    assert breaker.retry_at(105.0) == opened_until == 110.0
    assert _state(breaker) is BreakerState.OPEN
