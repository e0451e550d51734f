"""Alert events reach live screens as `alert_updated` (ids and states only), and only the streams of
those who read the numbers: supervisors, admins and keys with `instances:read`, never agents."""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import async_sessionmaker

from messaging_whatsapp.api.events import Audience
from messaging_whatsapp.realtime.events import StampedEvent, realtime_events
from messaging_whatsapp.tenancy.access import Principal

PAYLOAD = {
    "alert_id": "a1",
    "kind": "number_disconnected",
    "severity": "critical",
    "instance_id": "i1",
    "value": 120.0,
    "threshold": 60.0,
    "raised_at": "2026-12-05T23:00:00+00:00",
    "resolved_at": None,
}


def test_alert_events_become_alert_updated() -> None:
    entries = [
        {"event_type": kind, "tenant_id": "t1", "payload": orjson.dumps(PAYLOAD).decode()}
        for kind in ("whatsapp_alert_raised", "whatsapp_alert_resolved")
    ]
    events = realtime_events(entries)
    assert [(event.type, event.data["state"]) for event in events] == [
        ("alert_updated", "open"),
        ("alert_updated", "resolved"),
    ]
    assert events[0].data == {
        "alert_id": "a1",
        "kind": "number_disconnected",
        "severity": "critical",
        "instance_id": "i1",
        "state": "open",
    }


async def test_only_those_who_read_the_numbers_hear_them() -> None:
    event = StampedEvent("1-0", "alert_updated", b"{}", None)
    sessions: async_sessionmaker = async_sessionmaker()  # type: ignore[type-arg]
    for principal, hears in (
        (Principal("t1", "admin"), True),
        (Principal("t1", "supervisor"), True),
        (Principal("t1", "agent"), False),
        (Principal("t1", "admin", scopes=frozenset({"instances:read"})), True),
        (Principal("t1", "admin", scopes=frozenset({"conversations:read"})), False),
    ):
        assert await Audience(principal, sessions).admits(event) is hears, principal
