"""The rules a one-to-one message must pass before it is queued: a valid recipient, a number that can
send (the one named, the one a reply must go through, or the best one), content that number's
provider can send, and WhatsApp's 24-hour customer service window on the official APIs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound
from messaging_whatsapp.instances.health import HealthView, unavailable_reason
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.phones import InvalidPhone, typed_phone
from messaging_whatsapp.providers.capabilities import has_service_window, takes_templates, text_limit
from messaging_whatsapp.providers.outbound import OutboundMediaType
from messaging_whatsapp.sending.schemas import SendMessageRequest

# WhatsApp lets a business answer freely for 24 hours after the person's last message; after
# that only an approved template may open the conversation again. Meta counts it per business
# phone number, and so do we: the person's last message to the number that sends.
SERVICE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class QuotedMessage:
    """What a reply needs of the message it quotes."""

    contact_id: str
    instance_id: str
    provider_message_id: str | None


def recipient_phone(raw: str, country: str) -> str:
    """The recipient's canonical phone, typed national forms read as numbers of the tenant's
    `country`; InvalidPhone (422 invalid_phone, naming the text) when it is not a valid number."""
    try:
        return typed_phone(raw, country)
    except InvalidPhone as exc:
        raise InvalidPhone(f"'to': {exc.message}", details=exc.details) from None


def choose_instance(
    instances: list[WhatsAppInstance],
    instance_id: str | None,
    talking: dict[str, tuple[str, datetime | None]],
    now: datetime,
    request: SendMessageRequest | None = None,
) -> WhatsAppInstance:
    """The named instance, or the best one that can send: one that can send this content (a
    template: not a gateway; free-form: no closed window), then the one already talking to the
    person first."""
    if instance_id is not None:
        instance = next((i for i in instances if i.id == instance_id), None)
        if instance is None:
            raise NotFound(f"instance {instance_id} not found")
        reason = unavailable_reason(instance, now)
        if reason is not None:
            raise Conflict(f"instance {instance.name} cannot send: {reason}", code="instance_unavailable")
        return instance
    candidates = [instance for instance in instances if unavailable_reason(instance, now) is None]
    if not candidates:
        raise Conflict("no instance of this tenant can send right now", code="instance_unavailable")
    return max(
        candidates, key=lambda i: (_fits(i, talking, request, now), *_preference(i, set(talking), now))
    )


def reply_instance(
    request: SendMessageRequest, quoted: dict[str, QuotedMessage], contact_id: str | None
) -> str | None:
    """The instance a message must go through: a reply through the number of the message it
    quotes (a provider id means nothing on another number), otherwise the one asked for."""
    if request.reply_to is None:
        return request.instance_id
    message = quoted.get(request.reply_to)
    if message is None:
        raise NotFound(f"message {request.reply_to} (reply_to) not found")
    if message.contact_id != contact_id:
        raise InvalidInput(
            f"reply_to {request.reply_to} is a message of another person, not {request.to}",
            code="invalid_reply_to",
        )
    if message.provider_message_id is None:
        raise InvalidInput(
            f"reply_to {request.reply_to} has not reached WhatsApp (no provider message id yet)",
            code="invalid_reply_to",
        )
    if request.instance_id is not None and request.instance_id != message.instance_id:
        raise InvalidInput(
            f"a reply goes through the number of the message it quotes ({message.instance_id})",
            code="invalid_reply_to",
        )
    return message.instance_id


def _fits(
    instance: WhatsAppInstance,
    talking: dict[str, tuple[str, datetime | None]],
    request: SendMessageRequest | None,
    now: datetime,
) -> bool:
    """Whether the number can send this request's content to this person now."""
    if request is None:
        return True
    if request.template is not None:
        return takes_templates(instance.provider)
    return in_service_window(instance, talking.get(instance.id, (None, None))[1], now)


def _preference(instance: WhatsAppInstance, talking: set[str], now: datetime) -> tuple[bool, float, int]:
    """Already talking to the person first, then the healthiest, then the one that sent least today."""
    health = HealthView.of(instance, now)
    return (instance.id in talking, health.score, -health.sent_today)


def check_service_window(
    instance: WhatsAppInstance, last_inbound: datetime | None, request: SendMessageRequest, now: datetime
) -> None:
    """Refuse free-form text the official APIs would refuse: outside 24 h of the person's last message."""
    if request.template is not None or in_service_window(instance, last_inbound, now):
        return
    since = "has never written" if last_inbound is None else f"last wrote at {last_inbound.isoformat()}"
    raise InvalidInput(
        f"outside the 24-hour customer service window (the person {since}); "
        'send an approved template instead: {"template": {"name", "language", "parameters"}}',
        code="outside_service_window",
    )


def in_service_window(instance: WhatsAppInstance, last_inbound: datetime | None, now: datetime) -> bool:
    """Whether free-form text may go through this number to a person who last wrote to it at
    `last_inbound` (always on the gateways and the simulator, which have no window)."""
    if not has_service_window(instance.provider):
        return True
    return last_inbound is not None and now - last_inbound <= SERVICE_WINDOW


def check_content(instance: WhatsAppInstance, request: SendMessageRequest) -> None:
    """Refuse, before anything is queued, content the number's provider cannot send: a template
    on a gateway, a caption on audio, or buttons over the provider's text limit. (Long plain text
    is not refused: it is split into parts, sending/parts.py.)"""
    if request.template is not None and not takes_templates(instance.provider):
        raise InvalidInput(
            f"{instance.name} ({instance.provider}) cannot send templates: the unofficial gateways "
            "send as WhatsApp Web, which has none; send text instead",
            code="template_unsupported",
        )
    if request.media is not None and request.media.type is OutboundMediaType.AUDIO and request.media.caption:
        # Every provider would drop it without a word: WhatsApp audio messages carry no text.
        raise InvalidInput(
            "WhatsApp audio messages take no caption; send the text as a message of its own",
            code="caption_unsupported",
        )
    limit = text_limit(instance.provider)
    if request.buttons is not None and len(request.buttons.text) > limit:
        raise InvalidInput(
            f"the buttons' text is {len(request.buttons.text)} characters; {instance.provider} "
            f"takes at most {limit} in one message",
            code="text_too_long",
        )
