"""A circuit breaker per instance: stop hammering a number whose provider keeps failing.

Closed: sends flow. After `threshold` failures in a row it opens: sends wait for `cooldown`.
Then it is half-open: one probe may go; its success closes the breaker, its failure opens it
again for twice as long (up to `max_cooldown`). State is per process: each sender protects the
provider from its own traffic, and the instance's consecutive-error count in the database keeps
the shared view.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class BreakerState(enum.StrEnum):
    """Where the breaker is in its cycle."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """One instance's breaker; times are monotonic seconds passed in by the caller."""

    threshold: int = 5
    cooldown: float = 30.0
    max_cooldown: float = 600.0
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    current_cooldown: float = field(default=0.0)
    probing: bool = False

    def allow(self, now: float) -> bool:
        """Whether a send may go now; in half-open state only one probe at a time."""
        if self.state is BreakerState.OPEN and now >= self.opened_at + self.current_cooldown:
            self.state = BreakerState.HALF_OPEN
            self.probing = False
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def retry_at(self, now: float) -> float:
        """When a refused send should try again."""
        if self.state is BreakerState.OPEN:
            return self.opened_at + self.current_cooldown
        return now + 1.0

    def record_success(self) -> None:
        """A send went through: close."""
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.current_cooldown = 0.0
        self.probing = False

    def record_failure(self, now: float) -> None:
        """A send failed for a reason that says the provider or number is in trouble."""
        if self.state is BreakerState.OPEN:
            # A send that left before the breaker opened: the cooldown already runs.
            return
        if self.state is BreakerState.HALF_OPEN:
            self._open(now, min(self.max_cooldown, max(self.cooldown, self.current_cooldown * 2)))
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self._open(now, self.cooldown)

    def _open(self, now: float, cooldown: float) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = now
        self.current_cooldown = cooldown
        self.probing = False
