"""What a caller asks to send (a submission), what it gets back, and the row it is stored as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from messaging_whatsapp.db import new_id
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.inbox.announcements import opened_event
from messaging_whatsapp.inbox.models import Direction, Message, SenderType, SendState
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.providers.events import DeliveryStatus
from messaging_whatsapp.sending.queue import REOFFER_AFTER
from messaging_whatsapp.sending.schemas import SendMessageRequest


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message stored as queued, with the E.164 (or BSUID, LID) it goes to; `created` is False when an
    Idempotency-Key matched an earlier one."""

    message: Message
    created: bool
    to: str
    # Its message opened the conversation's ticket (the first of a session).
    opened_ticket: bool = False


@dataclass(frozen=True, slots=True)
class Submission:
    """One message a tenant asks us to send, with its Idempotency-Key."""

    tenant_id: str
    request: SendMessageRequest
    idempotency_key: str | None = None
    sender_type: SenderType = SenderType.USER
    # Who sends it: a user (recorded with their e-mail) or an API key (its name, no user).
    sender_user_id: str | None = None
    sender_api_key_id: str | None = None
    # Kept with the message (an AI answer's sources: assistant/).
    extra: dict[str, Any] | None = None


SubmissionResult = QueuedMessage | EngineError


def queued_events(results: list[SubmissionResult]) -> list[PublishedEvent]:
    """A `whatsapp_message_queued` for each message stored now (live screens show it at once),
    after a `whatsapp_ticket_opened` for each ticket the messages opened."""
    created = [result for result in results if isinstance(result, QueuedMessage) and result.created]
    tickets = {q.message.ticket_id: q.message for q in created if q.opened_ticket and q.message.ticket_id}
    opened = [opened_event(m.tenant_id, m.conversation_id, ticket_id) for ticket_id, m in tickets.items()]
    return opened + [queued_event(result.message) for result in created]


def queued_event(message: Message) -> PublishedEvent:
    """The message was stored as queued: ids and who sent it, never its content."""
    return PublishedEvent(
        "whatsapp_message_queued",
        message.tenant_id,
        {
            "message_id": message.id,
            "conversation_id": message.conversation_id,
            "contact_id": message.contact_id,
            "instance_id": message.instance_id,
            "ticket_id": message.ticket_id,
            "message_type": message.type,
            "sender_type": message.sender_type,
            "sender_user_id": message.sender_user_id,
            "status": DeliveryStatus.QUEUED.value,
        },
    )


def message_row(
    submission: Submission,
    instance_id: str,
    conversation_id: str,
    contact_id: str,
    quoted_provider_message_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The messages table's row of a submission, queued and due for its first offer."""
    content, media, extra, type_ = message_content(submission.request)
    if submission.extra:
        extra = {**(extra or {}), **submission.extra}
    return {
        "id": new_id(),
        "tenant_id": submission.tenant_id,
        "instance_id": instance_id,
        "conversation_id": conversation_id,
        "contact_id": contact_id,
        "direction": Direction.OUTBOUND.value,
        "sender_type": submission.sender_type.value,
        "type": type_,
        "content": content,
        "media": media,
        "extra": extra,
        "quoted_provider_message_id": quoted_provider_message_id,
        "status": DeliveryStatus.QUEUED.value,
        "status_rank": 0,
        "idempotency_key": submission.idempotency_key,
        "send_state": SendState.PENDING.value,
        "send_attempts": 0,
        "next_attempt_at": now + REOFFER_AFTER,
        "created_at": now,
        "updated_at": now,
    }


def message_content(
    request: SendMessageRequest,
) -> tuple[str | None, dict[str, Any] | None, dict[str, Any] | None, str]:
    """(content, media, extra, type) as the message table keeps them."""
    if request.media is not None:
        return request.media.caption, request.media.model_dump(mode="json"), None, request.media.type.value
    if request.template is not None:
        return request.template.name, None, {"template": request.template.model_dump()}, "template"
    if request.buttons is not None:
        buttons = [button.model_dump() for button in request.buttons.buttons]
        return request.buttons.text, None, {"buttons": buttons}, "interactive"
    return request.text, None, None, "text"
