"""Choosing the number for each message of a campaign (seed 002's three rotation modes).

Pure functions over a snapshot of the campaign's numbers, so the rules can be tested on their own:
the dispatcher builds the snapshot, asks for a number per contact, and records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging_whatsapp.campaigns.models import RotationMode


@dataclass
class Slot:
    """A number that may send now, with how much more it may send in this pass and today."""

    instance_id: str
    health_score: float
    sent_today: int
    # Messages it may still send in this pass (pacing) and today (daily limit, warm-up).
    capacity: int
    daily_remaining: int
    daily_limit: int
    assigned: int = 0

    @property
    def available(self) -> bool:
        """Whether it can take one more message now."""
        return self.assigned < self.capacity and self.assigned < self.daily_remaining


def choose(mode: RotationMode, slots: list[Slot], turn: int) -> Slot | None:
    """The number for the next message, or None when none can take one.

    `turn` is how many messages the campaign handed out before this one: round robin continues
    from it, so the cycle stays even across passes and dispatchers.
    """
    ready = [slot for slot in slots if slot.available]
    if not ready:
        return None
    if mode is RotationMode.ROUND_ROBIN:
        ordered = sorted(slots, key=lambda slot: slot.instance_id)
        for step in range(len(ordered)):
            slot = ordered[(turn + step) % len(ordered)]
            if slot.available:
                return slot
        return None
    if mode is RotationMode.BALANCED:
        return min(ready, key=lambda slot: (slot.sent_today + slot.assigned, slot.instance_id))
    return max(ready, key=_weight)


def _weight(slot: Slot) -> tuple[float, str]:
    """Intelligent mode: health times the share of today's capacity still free."""
    left = (slot.daily_remaining - slot.assigned) / max(slot.daily_limit, 1)
    return (slot.health_score * left, slot.instance_id)


def assign(mode: RotationMode, slots: list[Slot], count: int, turn: int) -> list[Slot]:
    """Numbers for up to `count` messages in order; shorter when capacity runs out."""
    chosen = []
    for index in range(count):
        slot = choose(mode, slots, turn + index)
        if slot is None:
            break
        slot.assigned += 1
        chosen.append(slot)
    return chosen
