"""The assistant's API shapes: a tenant's AI settings, a reply (draft or sent), a preview."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from messaging_whatsapp.assistant.models import AiReply
from messaging_whatsapp.instances.schemas import checked_api_url

LONGEST_INSTRUCTIONS = 4000


class SettingsUpdate(BaseModel):
    """A change to the tenant's AI settings: what is left out stays; base_url, api_key, model or
    handoff_message given as null go back to the engine's."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, min_length=1, max_length=500)
    api_key: str | None = Field(default=None, min_length=1, max_length=4096)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    instructions: str | None = Field(default=None, max_length=LONGEST_INSTRUCTIONS)
    guardrails: str | None = Field(default=None, max_length=LONGEST_INSTRUCTIONS)
    handoff_message: str | None = Field(default=None, min_length=1, max_length=1000)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else checked_api_url(value)

    def changes(self) -> dict[str, object]:
        """The fields the request names, with their values (null ones included)."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class SettingsItem(BaseModel):
    """The tenant's AI settings as they apply (the key never appears: only whether one is set)."""

    base_url: str | None
    api_key_set: bool
    model: str
    instructions: str
    guardrails: str
    handoff_message: str
    # Where answers come from: "tenant" (its own server), "engine" (AI_BASE_URL), "fake" (the
    # engine's deterministic stand-in, AI_FAKE: the demo), or "none".
    endpoint: str
    updated_at: datetime | None


class ReplySource(BaseModel):
    """A chunk an answer cites: its id and where it came from ("Title > Heading")."""

    id: str
    source: str


class AiReplyItem(BaseModel):
    """A reply of the assistant: a draft for the agent, an answer sent, a handoff or a skip."""

    id: str
    conversation_id: str
    ticket_id: str | None
    instance_id: str
    mode: str
    status: str
    message_id: str
    text: str | None
    sources: list[ReplySource]
    reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, reply: AiReply) -> Self:
        """The item for a reply row."""
        return cls(
            id=reply.id,
            conversation_id=reply.conversation_id,
            ticket_id=reply.ticket_id,
            instance_id=reply.instance_id,
            mode=reply.mode,
            status=reply.status,
            message_id=reply.message_id,
            text=reply.text,
            sources=[ReplySource(**source) for source in reply.sources or []],
            reason=reply.reason,
            created_at=reply.created_at,
            updated_at=reply.updated_at,
        )


class DraftAnswer(BaseModel):
    """The conversation's current draft (null when there is none, or an agent wrote after it)."""

    draft: AiReplyItem | None


class PreviewIn(BaseModel):
    """A question to try the assistant with (nothing is sent or stored)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=1000)


class PreviewAnswer(BaseModel):
    """What the assistant would answer: the text (or the handoff message), its sources, and why
    it handed off when it did."""

    text: str
    handed_off: bool
    reason: str | None
    sources: list[ReplySource]
