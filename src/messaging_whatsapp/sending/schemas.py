"""What a caller sends to POST /api/v1/messages, and what it answers."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from messaging_whatsapp.inbox.schemas import MessageItem
from messaging_whatsapp.providers.capabilities import LONGEST_TEXT
from messaging_whatsapp.providers.outbound import OutboundMediaType

# WhatsApp's own limits: a text body of 4096 characters, a caption of 1024, 3 reply buttons of 20.
# A one-to-one text may be longer, up to what the most generous provider takes: it is split into
# parts that fit the sending number's provider (sending/parts.py).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20


class MediaIn(BaseModel):
    """A media message by public URL."""

    model_config = ConfigDict(extra="forbid")

    type: OutboundMediaType
    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    caption: str | None = Field(default=None, max_length=MAX_CAPTION)
    filename: str | None = Field(default=None, max_length=240)


class TemplateIn(BaseModel):
    """An approved template: its name (Meta) or Content SID (Twilio), language and body parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="pt_BR", min_length=2, max_length=16)
    parameters: list[str] = Field(default_factory=list, max_length=50)


class ButtonIn(BaseModel):
    """One reply button."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=MAX_BUTTON_TITLE)


class ButtonsIn(BaseModel):
    """A text with up to three reply buttons."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    buttons: list[ButtonIn] = Field(min_length=1, max_length=MAX_BUTTONS)


class SendMessageRequest(BaseModel):
    """One message to one person: exactly one of text, media, template or buttons."""

    model_config = ConfigDict(extra="forbid")

    # A phone, or the BSUID ("BR.1502576394655843") or LID ("97318254610077@lid") of a person
    # known only by it.
    to: str = Field(min_length=1, max_length=160)
    instance_id: str | None = Field(default=None, max_length=36)
    text: str | None = Field(default=None, min_length=1, max_length=LONGEST_TEXT)
    media: MediaIn | None = None
    template: TemplateIn | None = None
    buttons: ButtonsIn | None = None
    # Our id of a message of this conversation that this one answers (shown quoted on WhatsApp).
    reply_to: str | None = Field(default=None, min_length=1, max_length=36)
    # Send later: an ISO datetime with its offset, in the future (sending/scheduled.py); checked
    # now, stored as scheduled, queued at that time through the same rules.
    send_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _exactly_one_content(self) -> Self:
        given = [name for name in ("text", "media", "template", "buttons") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of text, media, template or buttons (got {len(given)})")
        return self

    @property
    def kind(self) -> str:
        """Which content the request carries: text, media, template or buttons."""
        for name in ("text", "media", "template", "buttons"):
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated request has content")


class QueuedMessageItem(MessageItem):
    """The message just queued, with `to`: the E.164 number it goes to, as `to` was read (a
    national form is a number of the tenant's default country), or the BSUID or LID it named."""

    to: str


class ScheduledMessageItem(BaseModel):
    """A message scheduled to be sent later, and what became of it."""

    id: str
    # scheduled, sent, failed, cancelled
    status: str
    send_at: datetime
    # The E.164 number (or BSUID, LID) it goes to.
    to: str
    instance_id: str | None
    contact_id: str | None
    conversation_id: str | None
    # text, media, template or buttons, and its text (or caption, or template name).
    kind: str
    preview: str | None
    # The message it became once sent.
    message_id: str | None
    sent_at: datetime | None
    error: dict[str, str] | None
    sender_user_id: str | None
    created_at: datetime
