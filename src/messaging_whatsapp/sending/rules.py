"""The rules a one-to-one message must pass before it is queued: a valid recipient, a number that can
send (the one named, the one a reply must go through, or the best one), and WhatsApp's 24-hour
customer service window on the official APIs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound
from messaging_whatsapp.instances.health import HealthView, unavailable_reason
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.phones import InvalidPhone, typed_phone
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.sending.schemas import SendMessageRequest

# WhatsApp lets a business answer freely for 24 hours after the person's last message; after
# that only an approved template may open the conversation again.
SERVICE_WINDOW = timedelta(hours=24)
# Providers that enforce the window themselves (and charge or fail the message when it is missed).
WINDOWED_PROVIDERS = frozenset({ProviderName.META, ProviderName.TWILIO})


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
) -> WhatsAppInstance:
    """The named instance, or the best one that can send: the one already talking to the person first."""
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
    return max(candidates, key=lambda i: _preference(i, set(talking), now))


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


def _preference(instance: WhatsAppInstance, talking: set[str], now: datetime) -> tuple[bool, float, int]:
    """Already talking to the person first, then the healthiest, then the one that sent least today."""
    health = HealthView.of(instance, now)
    return (instance.id in talking, health.score, -health.sent_today)


def check_service_window(
    instance: WhatsAppInstance, last_inbound: datetime | None, request: SendMessageRequest, now: datetime
) -> None:
    """Refuse free-form text the official APIs would refuse: outside 24 h of the person's last message."""
    if request.template is not None or ProviderName(instance.provider) not in WINDOWED_PROVIDERS:
        return
    if last_inbound is not None and now - last_inbound <= SERVICE_WINDOW:
        return
    since = "has never written" if last_inbound is None else f"last wrote at {last_inbound.isoformat()}"
    raise InvalidInput(
        f"outside the 24-hour customer service window (the person {since}); "
        'send an approved template instead: {"template": {"name", "language", "parameters"}}',
        code="outside_service_window",
    )
