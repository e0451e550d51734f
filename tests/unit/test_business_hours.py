"""Business hours in the tenant's time zone: open, closed, the next opening, and bad schedules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.tenancy.hours import business_hours, stored_schedule

WEEKDAYS_9_TO_18 = {
    day: [["09:00", "12:00"], ["13:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


def test_open_and_closed_in_the_tenants_zone() -> None:
    schedule = business_hours(stored_schedule(WEEKDAYS_9_TO_18), "America/Sao_Paulo")
    assert schedule is not None
    # Monday 2026-12-07 10:00 in São Paulo is 13:00 UTC.
    assert schedule.is_open(datetime(2026, 12, 7, 13, 0, tzinfo=UTC))
    # 08:59 local: not yet; 12:30 local: lunch; 18:00 local: closed (end is exclusive).
    assert not schedule.is_open(datetime(2026, 12, 7, 11, 59, tzinfo=UTC))
    assert not schedule.is_open(datetime(2026, 12, 7, 15, 30, tzinfo=UTC))
    assert not schedule.is_open(datetime(2026, 12, 7, 21, 0, tzinfo=UTC))
    # Sunday is closed.
    assert not schedule.is_open(datetime(2026, 12, 6, 15, 0, tzinfo=UTC))


def test_next_opening() -> None:
    schedule = business_hours(stored_schedule(WEEKDAYS_9_TO_18), "America/Sao_Paulo")
    assert schedule is not None
    # Friday 19:00 local -> Monday 09:00 local (12:00 UTC).
    friday_evening = datetime(2026, 12, 11, 22, 0, tzinfo=UTC)
    assert schedule.next_open(friday_evening) == datetime(2026, 12, 14, 12, 0, tzinfo=UTC)
    # Lunch -> 13:00 the same day; while open -> now.
    assert schedule.next_open(datetime(2026, 12, 7, 15, 30, tzinfo=UTC)) == datetime(
        2026, 12, 7, 16, 0, tzinfo=UTC
    )
    now = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    assert schedule.next_open(now) == now


def test_no_hours_means_always_open() -> None:
    assert business_hours(None, "America/Sao_Paulo") is None


@pytest.mark.parametrize(
    "schedule",
    [
        {"monday": [["09:00", "18:00"]]},
        {"mon": [["9h", "18:00"]]},
        {"mon": [["18:00", "09:00"]]},
        {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]},
        {"mon": [["09:00", "25:00"]]},
        {"mon": "09:00-18:00"},
        [],
    ],
)
def test_bad_schedules_are_refused(schedule: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        stored_schedule(schedule)
    assert refused.value.code == "invalid_business_hours"
