"""The automation API's bodies: intents, auto-reply rules (when / then), business hours."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from messaging_whatsapp.followups.schemas import FollowUpRequest
from messaging_whatsapp.sending.schemas import MAX_TEXT, ButtonIn, TemplateIn

MAX_INTENTS = 30
MAX_KEYWORDS = 50
MAX_PAYLOADS = 20
MAX_RULES = 100
# A week: a longer wait reads as a typo.
MAX_WAIT_MINUTES = 7 * 24 * 60
INTENT_NAME = r"^[a-z][a-z0-9_]*$"

# Seed 001's default buttons: their ids are the intents they ask for.
DEFAULT_BUTTONS_TEXT = "Olá! Como podemos ajudar?"
DEFAULT_BUTTONS: tuple[tuple[str, str], ...] = (
    ("create_quote", "Fazer cotação"),
    ("order_status", "Status do pedido"),
    ("talk_to_human", "Falar com atendente"),
)

Keyword = Annotated[str, Field(min_length=1, max_length=80)]
Payload = Annotated[str, Field(min_length=1, max_length=256)]


class IntentIn(BaseModel):
    """One intent: its name, the words that ask for it, the button payloads that choose it (a
    button whose id is the intent's name always does)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=INTENT_NAME)
    keywords: list[Keyword] = Field(default_factory=list, max_length=MAX_KEYWORDS)
    button_payloads: list[Payload] = Field(default_factory=list, max_length=MAX_PAYLOADS)


class IntentsIn(BaseModel):
    """The tenant's whole intent list (replaces the one before; [] turns intents off)."""

    model_config = ConfigDict(extra="forbid")

    intents: list[IntentIn] = Field(max_length=MAX_INTENTS)


class IntentsOut(BaseModel):
    """The tenant's intents, in the order they are tried; `default` when they are seed 001's."""

    intents: list[IntentIn]
    default: bool


class NewTicketWhen(BaseModel):
    """A customer's message opened a new ticket."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["new_ticket"]


class KeywordWhen(BaseModel):
    """The customer's message holds one of these words (case and accents folded, whole words)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["keyword"]
    keywords: list[Keyword] = Field(min_length=1, max_length=MAX_KEYWORDS)


class IntentWhen(BaseModel):
    """The customer's message is this intent (by its words or a button)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["intent"]
    intent: str = Field(min_length=1, max_length=64)


class OutsideHoursWhen(BaseModel):
    """A customer's message arrives while the business is closed (its hours, its time zone)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["outside_hours"]


class NoAgentAnswerWhen(BaseModel):
    """The customer wrote and nobody of the team answered for this many minutes."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["no_agent_answer"]
    minutes: int = Field(ge=1, le=MAX_WAIT_MINUTES)


When = Annotated[
    NewTicketWhen | KeywordWhen | IntentWhen | OutsideHoursWhen | NoAgentAnswerWhen,
    Field(discriminator="type"),
]


class TextThen(BaseModel):
    """Send a text (for outside_hours, none: the tenant's away message)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)


class ButtonsThen(BaseModel):
    """Send a text with up to three reply buttons (by default seed 001's three)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["buttons"]
    text: str = Field(default=DEFAULT_BUTTONS_TEXT, min_length=1, max_length=MAX_TEXT)
    buttons: list[ButtonIn] = Field(
        default_factory=lambda: [ButtonIn(id=id_, title=title) for id_, title in DEFAULT_BUTTONS],
        min_length=1,
        max_length=3,
    )


class TemplateThen(BaseModel):
    """Send an approved template."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["template"]
    template: TemplateIn


class AssignThen(BaseModel):
    """Give the ticket to one of the tenant's active users."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["assign"]
    user_id: str = Field(min_length=1, max_length=36)


class CloseThen(BaseModel):
    """Close the ticket (reason `manual`)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["close"]


class FollowUpThen(FollowUpRequest):
    """Start a follow-up sequence on the ticket (its steps as POST /tickets/{id}/follow-ups takes)."""

    type: Literal["follow_up"]


Then = Annotated[
    TextThen | ButtonsThen | TemplateThen | AssignThen | CloseThen | FollowUpThen,
    Field(discriminator="type"),
]


class RuleIn(BaseModel):
    """A new auto-reply rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    enabled: bool = True
    position: int = Field(default=0, ge=0, le=10_000)
    once_per_ticket: bool = True
    instance_ids: list[Annotated[str, Field(min_length=1, max_length=36)]] = Field(
        default_factory=list, max_length=50
    )
    when: When
    then: Then


class RulePatch(BaseModel):
    """A change to a rule: the fields given replace the rule's (`when` and `then` whole)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    enabled: bool | None = None
    position: int | None = Field(default=None, ge=0, le=10_000)
    once_per_ticket: bool | None = None
    instance_ids: list[Annotated[str, Field(min_length=1, max_length=36)]] | None = Field(
        default=None, max_length=50
    )
    when: When | None = None
    then: Then | None = None


class RuleItem(BaseModel):
    """An auto-reply rule as the API shows it."""

    id: str
    name: str
    enabled: bool
    position: int
    once_per_ticket: bool
    instance_ids: list[str]
    when: dict[str, Any]
    then: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class BusinessHoursIn(BaseModel):
    """When the team answers (weekday -> [["HH:MM", "HH:MM"], ...] in the tenant's time zone; null:
    no hours, never closed) and the away message sent outside them. `timezone` is read-only: it
    is accepted so a GET's body can be sent back, and ignored."""

    model_config = ConfigDict(extra="forbid")

    schedule: dict[str, Any] | None
    away_message: str | None = Field(default=None, max_length=MAX_TEXT)
    timezone: str | None = None


class BusinessHoursOut(BaseModel):
    """The tenant's business hours, its away message, its time zone, and whether it is open now."""

    schedule: dict[str, list[list[str]]] | None
    away_message: str | None
    timezone: str
    open_now: bool
