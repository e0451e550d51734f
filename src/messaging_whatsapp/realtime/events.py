"""What the outbox publishes, as the small events a live screen needs (ids, status, no content)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

# Realtime event ids are `<milliseconds>-<sequence>`, as Redis Stream ids are: they grow per tenant.
EVENT_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")

# The outbox event type -> the realtime events it becomes, and the payload keys each keeps.
_MESSAGE_KEYS = ("message_id", "conversation_id", "contact_id", "instance_id", "message_type")
_STATUS_KEYS = ("message_id", "conversation_id", "instance_id", "status", "error")
_TICKET_KEYS = ("ticket_id", "conversation_id", "close_reason", "outcome", "closed_at")
_CONTACT_KEYS = ("contact_id", "conversation_id")
_INSTANCE_KEYS = ("instance_id", "reason")
_MAPPING: dict[str, list[tuple[str, tuple[str, ...], dict[str, Any]]]] = {
    "whatsapp_inbound_received": [
        ("new_message", _MESSAGE_KEYS, {"direction": "inbound"}),
        ("conversation_updated", ("conversation_id", "contact_id", "message_id"), {}),
    ],
    "whatsapp_message_sent": [("message_status", _STATUS_KEYS, {})],
    "whatsapp_delivery_confirmed": [("message_status", _STATUS_KEYS, {})],
    "whatsapp_delivery_failed": [("message_status", _STATUS_KEYS, {})],
    "whatsapp_ticket_closed": [("ticket_updated", _TICKET_KEYS, {"status": "closed"})],
    "whatsapp_instance_paused": [("instance_updated", _INSTANCE_KEYS, {"status": "paused"})],
    "whatsapp_customer_opted_out": [("conversation_updated", _CONTACT_KEYS, {"opted_out": True})],
    "whatsapp_customer_opted_in": [("conversation_updated", _CONTACT_KEYS, {"opted_out": False})],
    "whatsapp_contact_erased": [("conversation_updated", _CONTACT_KEYS, {"erased": True})],
}


@dataclass(frozen=True, slots=True)
class RealtimeEvent:
    """An event for a tenant's live clients, before it has its id."""

    tenant_id: str
    type: str
    data: dict[str, Any]

    @property
    def conversation_id(self) -> str | None:
        """The conversation it concerns, for clients narrowed to one."""
        value = self.data.get("conversation_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class StampedEvent:
    """A realtime event with its per-tenant id, as a stream client receives it."""

    id: str
    type: str
    data: bytes
    conversation_id: str | None

    def frame(self) -> bytes:
        """The Server-Sent Events frame."""
        return b"id: %s\nevent: %s\ndata: %s\n\n" % (self.id.encode(), self.type.encode(), self.data)


def parse_event_id(value: str | None) -> tuple[int, int] | None:
    """An event id as comparable numbers; None for anything malformed (treated as absent)."""
    match = EVENT_ID.match(value.strip()) if value else None
    return (int(match[1]), int(match[2])) if match else None


def realtime_events(entries: list[dict[str, str]]) -> list[RealtimeEvent]:
    """The realtime events for committed outbox stream entries (unknown types become none)."""
    events = []
    for entry in entries:
        mapped = _MAPPING.get(entry.get("event_type", ""))
        if not mapped:
            continue
        payload = orjson.loads(entry["payload"])
        for name, keys, extra in mapped:
            data = {key: payload[key] for key in keys if payload.get(key) is not None}
            events.append(RealtimeEvent(entry["tenant_id"], name, {**data, **extra}))
    return events


def stamped(event_id: str, type_: str, data: bytes) -> StampedEvent:
    """A stamped event from its stored parts."""
    conversation_id = orjson.loads(data).get("conversation_id")
    return StampedEvent(event_id, type_, data, conversation_id if isinstance(conversation_id, str) else None)
