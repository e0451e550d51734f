"""Sending through a provider: the provider-neutral message the sender hands over, the account it
goes out as, and what comes back (a result, or an error classified by what to do about it)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from messaging_whatsapp.providers.events import StatusError


class ErrorClass(enum.StrEnum):
    """What to do about a provider error (FORMATS.md common_model_mapping.json "error_classes")."""

    RETRY = "retry"
    RETRY_LATER_SAME_RECIPIENT = "retry_later_same_recipient"
    NEEDS_TEMPLATE = "needs_template"
    OPT_OUT = "opt_out"
    INVALID_RECIPIENT = "invalid_recipient"
    DEFER = "defer"
    FIX_REQUEST = "fix_request"
    PAUSE_CHANNEL = "pause_channel"
    # The request may have reached the provider but no answer came (timeout after sending, reset):
    # never retried blindly, because a retry could message the customer twice.
    UNKNOWN_OUTCOME = "unknown_outcome"


TRANSIENT_ERROR_CLASSES = frozenset({ErrorClass.RETRY, ErrorClass.RETRY_LATER_SAME_RECIPIENT})
# Errors that say something about the number (blocks, spam flags, undeliverable, policy, its pair
# limits): they cost its health. The others are the sender's own mistakes (an invalid phone,
# unsupported content, a template missing, bad parameters) or the provider's trouble (5xx).
NUMBER_ERROR_CLASSES = frozenset(
    {ErrorClass.RETRY_LATER_SAME_RECIPIENT, ErrorClass.OPT_OUT, ErrorClass.DEFER, ErrorClass.PAUSE_CHANNEL}
)
# Rate limits the number hit, though they are retried: Meta's throughput and WABA limits, Twilio's
# per-channel and account limits, a gateway's or any provider's bare 429.
RATE_LIMIT_CODES = frozenset({"130429", "80007", "131056", "63018", "20429", "http_429", "rate_limited"})


def costs_health(error_class: ErrorClass, code: str) -> bool:
    """Whether a failure with this class and code says something about the number (and costs it
    health), rather than about the request or the provider."""
    return error_class in NUMBER_ERROR_CLASSES or code.strip() in RATE_LIMIT_CODES


def receipt_error(code: str, title: str, error_class: ErrorClass) -> StatusError:
    """A failed receipt's error, classified: permanent unless a retry may help, and whether it
    costs the number health."""
    return StatusError(
        code=code,
        title=title,
        permanent=error_class not in TRANSIENT_ERROR_CLASSES,
        number_level=costs_health(error_class, code),
    )


class RecipientKind(enum.StrEnum):
    """How a recipient is addressed: by phone (every provider), or by an identity a provider
    gave us instead of the phone."""

    PHONE = "phone"
    # Meta's business-scoped user id ("BR.1502576394655843"): the Cloud API's `recipient` field.
    BSUID = "bsuid"
    # A WhatsApp-Web LID ("97318254610077@lid"): the gateways take the JID where they take a number.
    LID = "lid"


# "97318254610077@lid" (a device suffix is not part of the person); "BR.1502576394655843", or a
# parent BSUID "US.ENT.11815799212886844830": two letters, a dot, up to 128 letters and digits.
_LID = re.compile(r"\d{1,40}@(?:hosted\.)?lid")
_BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")


def identity_kind(text: str) -> RecipientKind | None:
    """Whether a recipient someone typed is a LID or a BSUID (None: take it for a phone)."""
    text = text.strip()
    if _LID.fullmatch(text):
        return RecipientKind.LID
    if _BSUID.fullmatch(text):
        return RecipientKind.BSUID
    return None


def recipient_kind(to: str) -> RecipientKind:
    """How `to` addresses the person: a LID, a BSUID, else a phone (checked by each provider)."""
    return identity_kind(to) or RecipientKind.PHONE


class OutboundMediaType(enum.StrEnum):
    """Media kinds we send by URL."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"


@dataclass(frozen=True, slots=True)
class OutboundMedia:
    """A media message by public URL, with optional caption and (for documents) file name."""

    type: OutboundMediaType
    url: str
    caption: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateContent:
    """An approved template: Meta template name, or Twilio Content SID (HX...), with body parameters."""

    name: str
    language: str = "pt_BR"
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyButton:
    """One quick-reply button: the id comes back in the customer's reply, the title is shown."""

    id: str
    title: str


@dataclass(frozen=True, slots=True)
class ButtonsContent:
    """A text with up to three reply buttons."""

    text: str
    buttons: tuple[ReplyButton, ...]

    def as_numbered_text(self) -> str:
        """The fallback where a provider has no reply buttons: the text, then "1. Title" lines."""
        options = "\n".join(f"{index}. {button.title}" for index, button in enumerate(self.buttons, start=1))
        return f"{self.text}\n\n{options}"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send: exactly one of text, media, template or buttons is set."""

    # Our message id: travels with the message where the provider echoes it back, so an ambiguous
    # send can be reconciled from its receipts.
    message_id: str
    # The recipient as E.164 digits without '+'; for a person known only by an identity, their
    # BSUID (Meta) or LID JID (the gateways): see RecipientKind.
    to: str
    text: str | None = None
    media: OutboundMedia | None = None
    template: TemplateContent | None = None
    buttons: ButtonsContent | None = None
    # Provider message id of the message this one replies to.
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class SenderAccount:
    """Who sends: the instance's provider ids and decrypted credentials (in memory only)."""

    display_number: str
    # Base URL of the provider's REST API: Meta Graph (with version), Twilio API, the gateway's URL.
    api_url: str
    phone_number_id: str | None = None
    waba_id: str | None = None
    account_sid: str | None = None
    instance_name: str | None = None
    access_token: str | None = None
    auth_token: str | None = None
    api_key: str | None = None
    # Where the provider should post this message's receipts (Twilio StatusCallback).
    status_callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted the message (accepted, not delivered)."""

    provider_message_id: str
    # The recipient as the provider resolved it (Meta's wa_id may drop the Brazilian 9th digit).
    recipient_id: str | None = None


class SendError(Exception):
    """The provider did not take the message, classified so the sender knows what to do next."""

    def __init__(
        self,
        error_class: ErrorClass,
        code: str,
        title: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = None,
        number_level: bool | None = None,
    ) -> None:
        super().__init__(f"{code}: {title}")
        self.error_class = error_class
        self.code = code
        self.title = title
        self.retry_after = retry_after
        self.http_status = http_status
        # Whether the failure is about the number (costs health); by default from class and code.
        self.number_level = costs_health(error_class, code) if number_level is None else number_level

    @property
    def retryable(self) -> bool:
        """Whether sending the same message again is safe and may succeed."""
        return self.error_class in TRANSIENT_ERROR_CLASSES
