"""What POST /api/v1/tickets/{id}/follow-ups takes, and what the follow-up routes answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from messaging_whatsapp.sending.schemas import MAX_TEXT, TemplateIn

MAX_STEPS = 10
# A step waits at most 30 days after the one before it (and the final wait as long).
MAX_DELAY_SECONDS = 30 * 24 * 3600


class FollowUpStepIn(BaseModel):
    """One step: wait `delay_seconds` (after the start, or after the step before), then send a text
    or an approved template."""

    model_config = ConfigDict(extra="forbid")

    delay_seconds: int = Field(ge=0, le=MAX_DELAY_SECONDS)
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    template: TemplateIn | None = None

    @model_validator(mode="after")
    def _exactly_one_content(self) -> Self:
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of text or template")
        return self


class FollowUpRequest(BaseModel):
    """A follow-up sequence for a ticket."""

    model_config = ConfigDict(extra="forbid")

    steps: list[FollowUpStepIn] = Field(min_length=1, max_length=MAX_STEPS)
    # A due step waits for the tenant's next opening (tenant business hours; none set: always open).
    business_hours_only: bool = False
    # When the last step has passed without a reply: close the ticket (follow_up_exhausted), or
    # end `completed` and give the ticket back to the team (false).
    close_ticket: bool = True
    # The wait after the last step before the end; default: the last step's own delay.
    final_wait_seconds: int | None = Field(default=None, ge=0, le=MAX_DELAY_SECONDS)

    def step_rows(self) -> list[dict[str, Any]]:
        """The steps as the follow_ups table keeps them."""
        return [step.model_dump(exclude_none=True) for step in self.steps]

    @property
    def final_wait(self) -> int:
        """The wait after the last step (default: the last step's delay)."""
        if self.final_wait_seconds is not None:
            return self.final_wait_seconds
        return self.steps[-1].delay_seconds


class StartedBy(BaseModel):
    """Who started a follow-up: a user, an API key or an automation rule."""

    user_id: str | None = None
    api_key_id: str | None = None
    rule_id: str | None = None


class FollowUpStepItem(BaseModel):
    """A step as planned, and what became of it once its turn came."""

    step: int
    delay_seconds: int
    text: str | None = None
    template: TemplateIn | None = None
    # sent, skipped, refused; None while it waits.
    outcome: str | None = None
    message_id: str | None = None
    reason: str | None = None
    error: str | None = None
    at: datetime | None = None


class FollowUpItem(BaseModel):
    """A follow-up with its steps' outcomes."""

    id: str
    ticket_id: str
    conversation_id: str
    # running, cancelled, exhausted, completed
    status: str
    # customer_replied, agent_replied, ticket_closed, opted_out, wants_person, cancelled_by_user
    cancel_reason: str | None
    business_hours_only: bool
    close_ticket: bool
    final_wait_seconds: int
    # The index of the next step to send (the number of steps: waiting out the final wait).
    current_step: int
    next_step_at: datetime | None
    started_by: StartedBy
    started_at: datetime
    ended_at: datetime | None
    steps: list[FollowUpStepItem]
