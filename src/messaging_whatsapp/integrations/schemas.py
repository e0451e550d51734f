"""What the webhook subscription routes take and answer."""

from __future__ import annotations

from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict, Field

from messaging_whatsapp.integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


class SubscriptionCreate(BaseModel):
    """A new subscription: where to POST and which event types (`["*"]` for all)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)


class SubscriptionItem(BaseModel):
    """A subscription as listed: never its secret."""

    id: str
    url: str
    events: list[str]
    description: str
    active: bool
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> SubscriptionItem:
        """The listing's view of a row."""
        return cls(
            id=subscription.id,
            url=subscription.url,
            events=orjson.loads(subscription.events),
            description=subscription.description,
            active=subscription.active,
            disabled_reason=subscription.disabled_reason,
            created_at=subscription.created_at,
        )


class SubscriptionCreated(SubscriptionItem):
    """The answer to its creation: the only time the secret is shown."""

    secret: str


class AttemptItem(BaseModel):
    """One POST of a delivery."""

    number: int
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str | None

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> AttemptItem:
        """The listing's view of a row."""
        return cls(
            number=attempt.number,
            attempted_at=attempt.attempted_at,
            duration_ms=attempt.duration_ms,
            status_code=attempt.status_code,
            error=attempt.error,
            response_body=attempt.response_body,
        )


class DeliveryItem(BaseModel):
    """One event for a subscription, with its attempts (oldest first)."""

    id: str
    event_id: str
    event_type: str
    occurred_at: datetime
    status: str
    attempts_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempts: list[AttemptItem]

    @classmethod
    def of(cls, delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryItem:
        """The listing's view of a row and its attempts."""
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            occurred_at=delivery.occurred_at,
            status=delivery.status,
            attempts_count=len(attempts),
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            finished_at=delivery.finished_at,
            attempts=[AttemptItem.of(attempt) for attempt in attempts],
        )
