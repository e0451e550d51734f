"""The event types a webhook subscription may ask for: one list, in one place.

They are the types the engine publishes on its events stream (`bc:whatsapp:events`): those the
domains write through the outbox (grep `PublishedEvent(`), the campaign dispatcher's progress,
and the ones issue 16 adds for automation, follow-ups, notifications and scheduled messages. A
subscription to a type that is not here would never hear anything, so it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from messaging_whatsapp.errors import InvalidInput

# Every type, for the page's checkboxes grouped as a person looks for them.
EVENT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Messages",
        (
            "whatsapp_inbound_received",
            "whatsapp_message_queued",
            "whatsapp_message_sent",
            "whatsapp_delivery_confirmed",
            "whatsapp_delivery_failed",
            "whatsapp_scheduled_message_sent",
            "whatsapp_scheduled_message_failed",
        ),
    ),
    (
        "Conversations and tickets",
        (
            "whatsapp_conversation_read",
            "whatsapp_ticket_opened",
            "whatsapp_ticket_assigned",
            "whatsapp_ticket_closed",
        ),
    ),
    (
        "Consent and privacy",
        ("whatsapp_customer_opted_out", "whatsapp_customer_opted_in", "whatsapp_contact_erased"),
    ),
    (
        "Numbers",
        (
            "whatsapp_instance_connection_changed",
            "whatsapp_instance_health_changed",
            "whatsapp_instance_paused",
            "whatsapp_instance_resumed",
        ),
    ),
    (
        "Automation",
        (
            "whatsapp_action_requested",
            "whatsapp_follow_up_started",
            "whatsapp_follow_up_ended",
            "whatsapp_notification_sent",
            "whatsapp_notification_skipped",
            "whatsapp_ai_reply",
        ),
    ),
    ("Campaigns and alerts", ("campaign_updated", "whatsapp_alert_raised", "whatsapp_alert_resolved")),
)

EVENT_TYPES: tuple[str, ...] = tuple(kind for _, kinds in EVENT_GROUPS for kind in kinds)
# A subscription to every type, today's and those added later.
EVERY_EVENT = "*"
# What "send test event" delivers: to the one subscription asked, whatever types it wants.
TEST_EVENT = "whatsapp_webhook_test"


def checked_event_types(requested: Iterable[str]) -> list[str]:
    """The requested types without repeats, in catalogue order ("*" alone when it is among them);
    InvalidInput naming the unknown ones and listing the known ones."""
    wanted = list(dict.fromkeys(requested))
    if not wanted:
        raise InvalidInput('events must name at least one event type (or "*" for all)', code="no_events")
    if EVERY_EVENT in wanted:
        return [EVERY_EVENT]
    unknown = [kind for kind in wanted if kind not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f'unknown event types: {", ".join(unknown)}; known: {", ".join(EVENT_TYPES)} (or "*")',
            code="unknown_event_type",
            details={"unknown": unknown, "known": list(EVENT_TYPES)},
        )
    return [kind for kind in EVENT_TYPES if kind in wanted]


def wants(events: list[str], event_type: str) -> bool:
    """Whether a subscription's types take an event of `event_type`."""
    return EVERY_EVENT in events or event_type in events
