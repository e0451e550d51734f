"""What the outbox publishes, as the small events a live screen needs (ids, status, no content)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

# Realtime event ids are `<milliseconds>-<sequence>`, as Redis Stream ids are: they grow per tenant.
EVENT_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")

# A payload key a realtime event keeps, or (the payload's key, the event's name for it).
Key = str | tuple[str, str]
# The outbox event type -> the realtime events it becomes, and the payload keys each keeps.
_MESSAGE_KEYS: tuple[Key, ...] = (
    "message_id",
    "conversation_id",
    "contact_id",
    "instance_id",
    "message_type",
)
_OUTBOUND_KEYS: tuple[Key, ...] = (*_MESSAGE_KEYS, "sender_type", "sender_user_id", "status")
_STATUS_KEYS: tuple[Key, ...] = ("message_id", "conversation_id", "instance_id", "status", "error")
_TICKET_KEYS: tuple[Key, ...] = ("ticket_id", "conversation_id", "close_reason", "outcome", "closed_at")
_ASSIGN_KEYS: tuple[Key, ...] = ("ticket_id", "conversation_id", "status", "assignee_id", "wants_person")
_OPENED_KEYS: tuple[Key, ...] = ("ticket_id", "conversation_id", "status")
_FOLLOW_UP_TICKET_KEYS: tuple[Key, ...] = ("ticket_id", "conversation_id", ("ticket_status", "status"))
_FOLLOW_UP_KEYS: tuple[Key, ...] = ("follow_up_id", "ticket_id", "conversation_id", "status", "cancel_reason")
_SCHEDULED_KEYS: tuple[Key, ...] = ("scheduled_message_id", "conversation_id", "message_id")
_READ_KEYS: tuple[Key, ...] = ("conversation_id", "unread_count", "read_by")
_CONTACT_KEYS: tuple[Key, ...] = ("contact_id", "conversation_id")
_INSTANCE_KEYS: tuple[Key, ...] = ("instance_id", "status", "reason")
_CONNECTION_KEYS: tuple[Key, ...] = ("instance_id", "connection_state", "reason")
_HEALTH_KEYS: tuple[Key, ...] = ("instance_id", "health_status", "health_score")
_ALERT_KEYS: tuple[Key, ...] = ("alert_id", "kind", "severity", "instance_id")
_AI_REPLY_KEYS: tuple[Key, ...] = (
    "reply_id",
    "conversation_id",
    "ticket_id",
    "instance_id",
    "mode",
    "status",
    "reason",
)
_CAMPAIGN_KEYS: tuple[Key, ...] = (
    ("id", "campaign_id"),
    "status",
    "paused_reason",
    "waiting_reason",
    ("total_contacts", "total"),
    ("pending_count", "pending"),
    ("sent_count", "sent"),
    ("delivered_count", "delivered"),
    ("read_count", "read"),
    ("failed_count", "failed"),
    ("opted_out_count", "opted_out"),
    ("skipped_count", "skipped"),
    "progress",
)
# Keys kept even when null, because null means something (a ticket back in the queue).
_NULL_SAYS_SOMETHING = frozenset({"assignee_id"})
_MAPPING: dict[str, list[tuple[str, tuple[Key, ...], dict[str, Any]]]] = {
    "whatsapp_inbound_received": [
        ("new_message", _MESSAGE_KEYS, {"direction": "inbound"}),
        ("conversation_updated", ("conversation_id", "contact_id", "message_id"), {}),
    ],
    "whatsapp_message_queued": [("new_message", _OUTBOUND_KEYS, {"direction": "outbound"})],
    "whatsapp_message_sent": [("message_status", _STATUS_KEYS, {})],
    "whatsapp_delivery_confirmed": [("message_status", _STATUS_KEYS, {})],
    "whatsapp_delivery_failed": [("message_status", _STATUS_KEYS, {})],
    "whatsapp_conversation_read": [("conversation_updated", _READ_KEYS, {})],
    "whatsapp_ticket_opened": [("ticket_updated", _OPENED_KEYS, {"status": "open"})],
    "whatsapp_ticket_assigned": [("ticket_updated", _ASSIGN_KEYS, {})],
    "whatsapp_ticket_closed": [("ticket_updated", _TICKET_KEYS, {"status": "closed"})],
    "whatsapp_follow_up_started": [
        ("ticket_updated", _FOLLOW_UP_TICKET_KEYS, {}),
        ("follow_up_updated", _FOLLOW_UP_KEYS, {}),
    ],
    "whatsapp_follow_up_ended": [
        ("ticket_updated", _FOLLOW_UP_TICKET_KEYS, {}),
        ("follow_up_updated", _FOLLOW_UP_KEYS, {}),
    ],
    "whatsapp_scheduled_message_sent": [("scheduled_message_updated", _SCHEDULED_KEYS, {"status": "sent"})],
    "whatsapp_scheduled_message_failed": [
        ("scheduled_message_updated", _SCHEDULED_KEYS, {"status": "failed"})
    ],
    "whatsapp_instance_paused": [("instance_updated", _INSTANCE_KEYS, {"status": "paused"})],
    "whatsapp_instance_resumed": [("instance_updated", _INSTANCE_KEYS, {"status": "active"})],
    "whatsapp_instance_connection_changed": [("instance_updated", _CONNECTION_KEYS, {})],
    "whatsapp_instance_health_changed": [("instance_updated", _HEALTH_KEYS, {})],
    "whatsapp_customer_opted_out": [("conversation_updated", _CONTACT_KEYS, {"opted_out": True})],
    "whatsapp_customer_opted_in": [("conversation_updated", _CONTACT_KEYS, {"opted_out": False})],
    "whatsapp_contact_erased": [("conversation_updated", _CONTACT_KEYS, {"erased": True})],
    "campaign_updated": [("campaign_updated", _CAMPAIGN_KEYS, {})],
    "whatsapp_alert_raised": [("alert_updated", _ALERT_KEYS, {"state": "open"})],
    "whatsapp_alert_resolved": [("alert_updated", _ALERT_KEYS, {"state": "resolved"})],
    "whatsapp_ai_reply": [("ai_reply", _AI_REPLY_KEYS, {})],
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
            events.append(RealtimeEvent(entry["tenant_id"], name, {**_kept(payload, keys), **extra}))
    return events


def _kept(payload: dict[str, Any], keys: tuple[Key, ...]) -> dict[str, Any]:
    data = {}
    for key in keys:
        source, name = (key, key) if isinstance(key, str) else key
        if payload.get(source) is not None or (name in _NULL_SAYS_SOMETHING and source in payload):
            data[name] = payload[source]
    return data


def stamped(event_id: str, type_: str, data: bytes) -> StampedEvent:
    """A stamped event from its stored parts."""
    conversation_id = orjson.loads(data).get("conversation_id")
    return StampedEvent(event_id, type_, data, conversation_id if isinstance(conversation_id, str) else None)
