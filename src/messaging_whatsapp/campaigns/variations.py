"""A campaign's variations: free-form text (with optional media) or an approved template, each with
`{{variables}}` filled per contact, as the API takes them and shows them back.

A template variation is `{"template": {"name", "language", "parameters"}}`: the name is Meta's
template name or Twilio's Content SID (HX...), and its parameters may hold `{{variables}}` like a
text does. It is the only kind the official APIs (Meta, Twilio) deliver to someone outside the
24-hour customer service window; the gateways have no templates (campaigns/templates.py).
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from messaging_whatsapp.campaigns.handout import render
from messaging_whatsapp.campaigns.models import CampaignMessage
from messaging_whatsapp.sending.schemas import MAX_TEXT, MediaIn, TemplateIn


class CampaignMessageIn(BaseModel):
    """One variation of the message: `content` (with optional media) or `template`; `{{name}}` and
    other `{{variable}}`s are filled per contact, in a template's parameters too."""

    model_config = ConfigDict(extra="forbid")

    content: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    # Bounded so that every database stores it (an order of 2**63 overflowed SQLite's integers).
    order: int = Field(default=0, ge=0, le=1_000_000)
    media: MediaIn | None = None
    template: TemplateIn | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.content is None) == (self.template is None):
            raise ValueError("a variation has exactly one of content or template")
        if self.template is not None and self.media is not None:
            raise ValueError("a template variation takes no media (the template defines its header)")
        return self


class CampaignMessageItem(BaseModel):
    """A variation as given: its text and media, or its template (variables not filled)."""

    id: str
    content: str | None
    template: dict[str, Any] | None
    order: int
    media: dict[str, Any] | None
    usage_count: int

    @classmethod
    def of(cls, variation: CampaignMessage) -> Self:
        """The item for a stored variation (a template's `content` is only its name: not shown)."""
        return cls(
            id=variation.id,
            content=None if variation.template else variation.content,
            template=variation.template,
            order=variation.order,
            media=variation.media,
            usage_count=variation.usage_count,
        )


def variation_row(message: CampaignMessageIn) -> dict[str, Any]:
    """The stored columns of a variation: a template keeps its name as content."""
    if message.template is not None:
        return {"content": message.template.name, "media": None, "template": message.template.model_dump()}
    media = message.media.model_dump(mode="json") if message.media else None
    return {"content": message.content, "media": media, "template": None}


def render_template(template: dict[str, Any], variables: dict[str, Any] | None) -> dict[str, Any]:
    """The template with its parameters' `{{variables}}` filled from the contact's values."""
    parameters = [render(parameter, variables) for parameter in template.get("parameters", [])]
    return {**template, "parameters": parameters}
