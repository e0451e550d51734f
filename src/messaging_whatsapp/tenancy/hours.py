"""A tenant's business hours: when its team answers, in the tenant's time zone.

Kept on the tenant as JSON, one list of opening intervals per weekday ("mon" .. "sun"), each
interval `["HH:MM", "HH:MM"]` with the end after the start ("24:00" closes at midnight). No hours
set means the business never counts as closed: nothing is sent "outside business hours" and a
follow-up limited to business hours is never held back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from messaging_whatsapp.errors import InvalidInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Intervals a day may hold: a morning and an afternoon shift, with room to spare.
MAX_INTERVALS = 6
# A week is the longest anyone waits for the next opening; anything else is a bug here.
_SEARCH_DAYS = 8


@dataclass(frozen=True, slots=True)
class Interval:
    """One opening of a day, as minutes after local midnight: start inclusive, end exclusive."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """A week of opening intervals in one time zone."""

    timezone: str
    days: dict[str, tuple[Interval, ...]]

    def is_open(self, at: datetime) -> bool:
        """Whether the business answers at `at` (an aware datetime)."""
        local = at.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        return any(i.start <= minute < i.end for i in self.days.get(WEEKDAYS[local.weekday()], ()))

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the next moment the business opens (UTC); `at` plus a week
        when it never opens (a schedule of empty days)."""
        if self.is_open(at):
            return at
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        for offset in range(_SEARCH_DAYS):
            day = (local + timedelta(days=offset)).date()
            for interval in self.days.get(WEEKDAYS[day.weekday()], ()):
                opening = _local_moment(day, interval.start, zone)
                if opening > at:
                    return opening.astimezone(UTC)
        return at + timedelta(days=7)

    def as_json(self) -> dict[str, list[list[str]]]:
        """The schedule as the API shows it and the tenant row stores it."""
        return {day: [[_clock(i.start), _clock(i.end)] for i in self.days.get(day, ())] for day in WEEKDAYS}


def _local_moment(day: Any, minutes: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone) + timedelta(minutes=minutes)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(value: object, where: str) -> int:
    """Minutes after midnight of "HH:MM" (00:00 to 24:00), or InvalidInput naming `where`."""
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise InvalidInput(f"{where}: {value!r} is not a time as HH:MM", code="invalid_business_hours")
    try:
        hours, minutes = int(value[:2]), int(value[3:])
    except ValueError:
        raise InvalidInput(
            f"{where}: {value!r} is not a time as HH:MM", code="invalid_business_hours"
        ) from None
    if not (0 <= minutes < 60 and (0 <= hours < 24 or (hours == 24 and minutes == 0))):
        raise InvalidInput(f"{where}: {value!r} is not a time of day", code="invalid_business_hours")
    return hours * 60 + minutes


def parse_schedule(schedule: object) -> dict[str, tuple[Interval, ...]]:
    """A week's intervals from `{"mon": [["08:00", "18:00"]], ...}` (missing days closed), checked:
    known days, HH:MM times, each end after its start, no overlaps; InvalidInput otherwise."""
    if not isinstance(schedule, dict):
        raise InvalidInput("business hours must map weekdays to intervals", code="invalid_business_hours")
    unknown = sorted(set(schedule) - set(WEEKDAYS))
    if unknown:
        raise InvalidInput(
            f"unknown weekdays {', '.join(map(str, unknown))}: use {', '.join(WEEKDAYS)}",
            code="invalid_business_hours",
        )
    days: dict[str, tuple[Interval, ...]] = {}
    for day in WEEKDAYS:
        days[day] = _day_intervals(day, schedule.get(day) or [])
    return days


def _day_intervals(day: str, raw: object) -> tuple[Interval, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_INTERVALS:
        raise InvalidInput(
            f"{day}: give a list of at most {MAX_INTERVALS} [start, end] intervals",
            code="invalid_business_hours",
        )
    intervals = []
    for index, pair in enumerate(raw):
        where = f"{day}[{index}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise InvalidInput(f"{where}: an interval is [start, end]", code="invalid_business_hours")
        interval = Interval(_minutes(pair[0], where), _minutes(pair[1], where))
        if interval.end <= interval.start:
            raise InvalidInput(f"{where}: the end must come after the start", code="invalid_business_hours")
        intervals.append(interval)
    intervals.sort(key=lambda i: i.start)
    for before, after in pairwise(intervals):
        if after.start < before.end:
            raise InvalidInput(f"{day}: intervals overlap", code="invalid_business_hours")
    return tuple(intervals)


def stored_schedule(schedule: object) -> str:
    """The checked schedule as the tenant row keeps it (JSON)."""
    days = parse_schedule(schedule)
    return orjson.dumps(BusinessHours("UTC", days).as_json()).decode()


def business_hours(stored: str | None, timezone: str) -> BusinessHours | None:
    """The tenant's business hours from its row, or None when it set none (always open)."""
    if not stored:
        return None
    return BusinessHours(timezone, parse_schedule(orjson.loads(stored)))
