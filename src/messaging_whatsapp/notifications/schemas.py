"""What the event mappings and events-in routes take and answer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from messaging_whatsapp.notifications.models import EventMapping, InboundEvent

# A payload key as a template parameter names it: a plain identifier ("customer_name", "quote_id").
PAYLOAD_KEY = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# A template takes at most this many body parameters here (as POST /api/v1/messages does).
MAX_PARAMETERS = 50


class MappingChange(BaseModel):
    """PUT /api/v1/event-mappings/{event_type}: the template the event sends."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(min_length=1, max_length=512)
    language: str = Field(default="pt_BR", pattern=r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
    # Payload keys whose values fill the template's parameters, in order.
    parameters: list[str] = Field(default_factory=list, max_length=MAX_PARAMETERS)
    # One of the tenant's numbers to send through; None: the best that can send templates.
    instance_id: str | None = Field(default=None, max_length=36)

    @field_validator("template")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("template must name a template (it is empty)")
        return value.strip()

    @field_validator("parameters")
    @classmethod
    def _payload_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not re.fullmatch(PAYLOAD_KEY, key):
                raise ValueError(
                    f"parameter {key!r} is not a payload key (letters, digits and _, at most 64, "
                    "not starting with a digit)"
                )
        return keys


class MappingItem(BaseModel):
    """One event type's mapping as stored."""

    event_type: str
    template: str
    language: str
    parameters: list[str]
    instance_id: str | None
    updated_at: datetime

    @classmethod
    def of(cls, mapping: EventMapping) -> MappingItem:
        """The item of a stored mapping."""
        return cls(
            event_type=mapping.event_type,
            template=mapping.template,
            language=mapping.language,
            parameters=[str(key) for key in mapping.parameters],
            instance_id=mapping.instance_id,
            updated_at=mapping.updated_at,
        )


class EventIn(BaseModel):
    """POST /api/v1/events: one event of another system, for the caller's tenant."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    event_type: str = Field(min_length=1, max_length=100)
    payload: dict[str, Any]
    occurred_at: datetime | None = None


class EventAccepted(BaseModel):
    """The event is on the events:materials stream (durably): the consumer takes it from there."""

    id: str
    status: str = "accepted"


class EventInItem(BaseModel):
    """One event consumed and what became of it."""

    id: str
    event_id: str
    event_type: str
    outcome: str
    reason: str | None
    message_id: str | None
    received_at: datetime

    @classmethod
    def of(cls, event: InboundEvent) -> EventInItem:
        """The item of a recorded event."""
        return cls(
            id=event.id,
            event_id=event.event_id,
            event_type=event.event_type,
            outcome=event.outcome,
            reason=event.reason,
            message_id=event.message_id,
            received_at=event.received_at,
        )
