"""Rotation over many sends, with random fleets (property style, seeded)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from messaging_whatsapp.campaigns.models import RotationMode
from messaging_whatsapp.campaigns.rotation import Slot, assign, choose


def _fleet(rng: random.Random, size: int) -> list[Slot]:
    slots = []
    for index in range(size):
        limit = rng.choice([50, 200, 1000])
        sent = rng.randrange(0, limit)
        slots.append(
            Slot(
                instance_id=f"i{index:02d}",
                health_score=rng.uniform(50, 100),
                sent_today=sent,
                capacity=10_000,
                daily_remaining=limit - sent,
                daily_limit=limit,
            )
        )
    return slots


@pytest.mark.parametrize("seed", range(25))
def test_round_robin_is_even(seed: int) -> None:
    rng = random.Random(seed)
    slots = [Slot(f"i{k}", 100, 0, 10_000, 10_000, 10_000) for k in range(rng.randrange(2, 8))]
    sends = rng.randrange(50, 500)
    counts = Counter(
        slot.instance_id for slot in assign(RotationMode.ROUND_ROBIN, slots, sends, rng.randrange(100))
    )
    assert sum(counts.values()) == sends
    assert max(counts.values()) - min(counts.values()) <= 1
    assert len(counts) == len(slots)


@pytest.mark.parametrize("seed", range(25))
def test_balanced_evens_out_the_days_counts(seed: int) -> None:
    rng = random.Random(seed)
    slots = [
        Slot(f"i{k}", 100, rng.randrange(0, 100), 10_000, 10_000, 10_000) for k in range(rng.randrange(2, 8))
    ]
    total = sum(slot.sent_today for slot in slots) + 2_000
    assign(RotationMode.BALANCED, slots, 2_000, 0)
    finals = [slot.sent_today + slot.assigned for slot in slots]
    assert sum(finals) == total
    assert max(finals) - min(finals) <= 1


@pytest.mark.parametrize("seed", range(50))
def test_intelligent_never_exceeds_capacity_and_favours_healthy_capacity(seed: int) -> None:
    rng = random.Random(seed)
    slots = _fleet(rng, rng.randrange(1, 8))
    room = sum(slot.daily_remaining for slot in slots)
    chosen = assign(RotationMode.INTELLIGENT, slots, room + 50, 0)
    assert len(chosen) == room
    assert all(slot.assigned <= slot.daily_remaining for slot in slots)
    assert choose(RotationMode.INTELLIGENT, slots, 0) is None


def test_intelligent_picks_the_healthiest_with_room() -> None:
    strong = Slot("a", 95, 0, 100, 500, 500)
    weak = Slot("b", 55, 0, 100, 500, 500)
    exhausted = Slot("c", 100, 500, 100, 0, 500)
    picks = Counter(
        slot.instance_id for slot in assign(RotationMode.INTELLIGENT, [weak, exhausted, strong], 100, 0)
    )
    assert picks["c"] == 0
    assert picks["a"] > picks["b"]


@pytest.mark.parametrize("mode", list(RotationMode))
def test_no_mode_uses_a_number_beyond_its_pass_capacity(mode: RotationMode) -> None:
    slots = [Slot("a", 100, 0, 1, 100, 100), Slot("b", 80, 0, 1, 100, 100)]
    assert len(assign(mode, slots, 10, 0)) == 2
