"""Recording what became of a batch of sends, set-based: a few statements per batch, not per message.

Sent messages get their provider id and `sent` (never lowering a status a receipt already
raised) and lose an earlier attempt's error; failures their error; retries their next attempt;
lost answers wait for a receipt and are settled `unknown_outcome` when none comes. Each returns
the events to publish. What the outcomes mean to campaigns, opt-outs and the numbers' health the
sender applies through those domains, in the same transaction (worker/sender.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, case, delete, exists, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.batch import Outcomes
from messaging_whatsapp.consent.models import ConsentSource
from messaging_whatsapp.consent.service import OptOutCandidate
from messaging_whatsapp.db import one_of, rows_table
from messaging_whatsapp.inbox.models import SenderType, SendState, messages_table
from messaging_whatsapp.instances.service import pause_instances
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.providers.events import STATUS_RANK, DeliveryStatus
from messaging_whatsapp.providers.outbound import ErrorClass, SendError
from messaging_whatsapp.sending.claims import Claim
from messaging_whatsapp.sending.delivery import SendOutcome

logger = logging.getLogger(__name__)

SENT_RANK = STATUS_RANK[DeliveryStatus.SENT]
FAILED_RANK = STATUS_RANK[DeliveryStatus.FAILED]
# A queued message whose recipient opted out before it left: it ends failed, unsent.
OPTED_OUT = SendError(ErrorClass.OPT_OUT, "opted_out", "the person opted out before the message was sent")


async def record_sent(
    session: AsyncSession, outcomes: list[SendOutcome], now: datetime
) -> list[PublishedEvent]:
    """The messages went: their provider ids and `sent`; a `whatsapp_message_sent` for each."""
    if not outcomes:
        return []
    m = messages_table.c
    rows = [
        (o.claim.message.id, o.claim.instance.id, o.result.provider_message_id) for o in outcomes if o.result
    ]
    sent = rows_table(session, "sent", SENT_COLUMNS, rows).c
    # An echo of our own send (Evolution's send.message, WuzAPI's IsFromMe) may have been stored
    # as a phone-typed message before we knew the id: it is this message, so it goes.
    echo = exists().where(
        m.instance_id == sent.instance_id, m.provider_message_id == sent.provider_message_id
    )
    await session.execute(
        delete(messages_table)
        .where(m.sender_type == SenderType.PHONE.value, echo)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(messages_table)
        .where(m.id == sent.id)
        .values(
            provider_message_id=sent.provider_message_id,
            send_state=SendState.DONE.value,
            status=_below(SENT_RANK, DeliveryStatus.SENT.value, m.status),
            status_rank=_below(SENT_RANK, SENT_RANK, m.status_rank),
            sent_at=func.coalesce(m.sent_at, now),
            # It went: an earlier attempt's error (a 130429 before the retry) no longer says
            # anything. A failure a receipt already reported for it stays.
            error_code=case((m.status_rank == FAILED_RANK, m.error_code), else_=None),
            error_title=case((m.status_rank == FAILED_RANK, m.error_title), else_=None),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    published = []
    for outcome in outcomes:
        assert outcome.result is not None
        message = outcome.claim.message
        published.append(
            PublishedEvent(
                "whatsapp_message_sent",
                message.tenant_id,
                {
                    "message_id": message.id,
                    "provider_message_id": outcome.result.provider_message_id,
                    "instance_id": message.instance_id,
                    "conversation_id": message.conversation_id,
                    "status": DeliveryStatus.SENT.value,
                },
            )
        )
    return published


SENT_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("instance_id", String()),
    ("provider_message_id", String()),
]


def _below(rank: int, new: Any, current: Any) -> Any:
    """`new` where the message's status is still below `rank`, else what it has (never downgrade)."""
    return case((messages_table.c.status_rank < rank, new), else_=current)


async def record_failed(
    session: AsyncSession, outcomes: list[SendOutcome], now: datetime
) -> list[PublishedEvent]:
    """The messages failed for good: their error; a `whatsapp_delivery_failed` for each."""
    if not outcomes:
        return []
    m = messages_table.c
    rows = []
    published = []
    for outcome in outcomes:
        assert outcome.error is not None
        message = outcome.claim.message
        rows.append({"b_id": message.id, "b_code": outcome.error.code[:32], "b_title": outcome.error.title})
        published.append(
            PublishedEvent(
                "whatsapp_delivery_failed",
                message.tenant_id,
                failed_payload(
                    message.id,
                    message.instance_id,
                    message.conversation_id,
                    outcome.error.code,
                    outcome.error.title,
                ),
            )
        )
    await session.execute(
        update(messages_table)
        .where(m.id == bindparam("b_id"))
        .values(
            # A receipt may already have proven delivery: then the failure report is wrong.
            send_state=SendState.DONE.value,
            status=_below(FAILED_RANK, DeliveryStatus.FAILED.value, m.status),
            status_rank=_below(FAILED_RANK, FAILED_RANK, m.status_rank),
            failed_at=_below(FAILED_RANK, now, m.failed_at),
            error_code=_below(FAILED_RANK, bindparam("b_code"), m.error_code),
            error_title=_below(FAILED_RANK, bindparam("b_title"), m.error_title),
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
        rows,
    )
    return published


async def record_waiting(session: AsyncSession, outcomes: list[SendOutcome]) -> None:
    """The messages wait for another try (a retry, or deferred by a limit: then no attempt counted)."""
    if not outcomes:
        return
    m = messages_table.c
    await session.execute(
        update(messages_table)
        .where(m.id == bindparam("b_id"))
        .values(
            send_state=SendState.WAITING.value,
            next_attempt_at=bindparam("b_next"),
            send_attempts=m.send_attempts - bindparam("b_refund"),
            error_code=bindparam("b_code"),
            error_title=bindparam("b_title"),
        )
        .execution_options(synchronize_session=False),
        [
            {
                "b_id": o.claim.message.id,
                "b_next": o.next_attempt_at,
                "b_refund": 1 if o.deferred else 0,
                "b_code": o.error.code[:32] if o.error else None,
                "b_title": o.error.title if o.error else None,
            }
            for o in outcomes
        ],
    )


async def record_unknown(session: AsyncSession, outcomes: list[SendOutcome], now: datetime) -> None:
    """The answers were lost: the messages wait for a receipt, or for the sweep to settle them."""
    if not outcomes:
        return
    m = messages_table.c
    await session.execute(
        update(messages_table)
        .where(
            one_of(session, m.id, [o.claim.message.id for o in outcomes]),
            m.send_state == SendState.CLAIMED.value,
        )
        .values(send_state=SendState.UNKNOWN.value, claimed_at=now, updated_at=now)
    )


def refused_optouts(outcomes: list[SendOutcome], now: datetime) -> list[OptOutCandidate]:
    """The people the provider says blocked or unsubscribed: to be honoured as opt-outs everywhere."""
    return [
        OptOutCandidate(
            tenant_id=o.claim.message.tenant_id,
            contact_id=o.claim.message.contact_id,
            phone=o.claim.phone,
            instance_id=o.claim.instance.id,
            keyword=None,
            text=None,
            provider_message_id=None,
            at=now,
            reason=f"provider:{o.error.code}",
            source=ConsentSource.PROVIDER_BLOCK,
            actor=o.error.code,
        )
        for o in outcomes
        if o.error is not None and o.error.error_class is ErrorClass.OPT_OUT and o.error is not OPTED_OUT
    ]


async def pause_refused_instances(
    session: AsyncSession, outcomes: list[SendOutcome], now: datetime
) -> list[PublishedEvent]:
    """The provider refuses the number itself (blocked, logged out, bad token): pause it, alert."""
    refusals: dict[str, tuple[Claim, SendError]] = {}
    for outcome in outcomes:
        if outcome.error is not None and outcome.error.error_class is ErrorClass.PAUSE_CHANNEL:
            refusals[outcome.claim.instance.id] = (outcome.claim, outcome.error)
    if not refusals:
        return []
    reasons = {instance_id: str(error)[:500] for instance_id, (_, error) in refusals.items()}
    published = []
    for instance_id in await pause_instances(session, reasons, now):
        claim, error = refusals[instance_id]
        logger.error(
            "instance %s (%s) paused: the provider refused it: %s; resume it once fixed",
            instance_id,
            claim.instance.display_number,
            error,
        )
        published.append(
            PublishedEvent(
                "whatsapp_instance_paused",
                claim.instance.tenant_id,
                {
                    "instance_id": instance_id,
                    "display_number": claim.instance.display_number,
                    "reason": "provider_refused",
                    "error": {"code": error.code, "title": error.title},
                },
            )
        )
    return published


def health_of(outcomes: list[SendOutcome]) -> dict[str, Outcomes]:
    """What the batch tells each number's health (a message never sent tells nothing)."""
    by_instance: dict[str, Outcomes] = {}
    for outcome in outcomes:
        if outcome.error is OPTED_OUT:
            # Never sent: says nothing about the number.
            continue
        counts = by_instance.setdefault(outcome.claim.instance.id, Outcomes())
        if outcome.result is not None:
            counts.sent += 1
        elif outcome.state is SendState.DONE:
            # Only a failure that says something about the number costs it health.
            if outcome.error is None or outcome.error.number_level:
                counts.failed += 1
            else:
                counts.failed_other += 1
    return by_instance


async def settle_stale_claims(
    session: AsyncSession, cutoff: datetime, now: datetime
) -> tuple[list[str], list[PublishedEvent]]:
    """Claimed or answer-lost messages claimed before `cutoff` end failed: unknown_outcome. Returns
    their ids and a `whatsapp_delivery_failed` for each."""
    m = messages_table.c
    settled = (
        await session.execute(
            update(messages_table)
            .where(
                m.send_state.in_([SendState.CLAIMED.value, SendState.UNKNOWN.value]),
                m.claimed_at < cutoff,
            )
            .values(
                send_state=SendState.DONE.value,
                status=DeliveryStatus.FAILED.value,
                status_rank=FAILED_RANK,
                failed_at=now,
                error_code="unknown_outcome",
                error_title="the provider's answer was lost and no receipt settled the message",
                updated_at=now,
            )
            .returning(m.id, m.tenant_id, m.instance_id, m.conversation_id)
        )
    ).all()
    published = [
        PublishedEvent(
            "whatsapp_delivery_failed",
            row.tenant_id,
            failed_payload(row.id, row.instance_id, row.conversation_id, "unknown_outcome", "answer lost"),
        )
        for row in settled
    ]
    return [row.id for row in settled], published


def failed_payload(
    message_id: str, instance_id: str, conversation_id: str, code: str, title: str
) -> dict[str, Any]:
    """The payload of `whatsapp_delivery_failed`."""
    return {
        "message_id": message_id,
        "instance_id": instance_id,
        "conversation_id": conversation_id,
        "status": DeliveryStatus.FAILED.value,
        "error": {"code": code, "title": title},
    }
