"""The scheduler's AI replies pass: take each due reply (a conditional UPDATE, so two schedulers
never take the same), gather the knowledge base's evidence, ask the model (with "typing..." shown
on automatic numbers), then in one transaction check again what may have changed meanwhile and
draft, send, hand off or skip; publish after commit and offer the messages to the senders."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.assistant.client import AiFailed, Endpoint, complete
from messaging_whatsapp.assistant.masking import PLACEHOLDER, Masker
from messaging_whatsapp.assistant.models import AiReply, ReplyStatus
from messaging_whatsapp.assistant.prompt import (
    HISTORY_MESSAGES,
    HistoryLine,
    PromptChunk,
    chat_messages,
    read_answer,
)
from messaging_whatsapp.assistant.service import (
    DEFAULT_HANDOFF_MESSAGE,
    ReplyFacts,
    claimable,
    endpoint_for,
    reply_facts,
    settings_row,
    stop_reason,
)
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.inbox.models import Contact, Direction, Message, SenderType
from messaging_whatsapp.inbox.tickets import flag_wants_person
from messaging_whatsapp.instances.models import AiMode
from messaging_whatsapp.instances.service import decrypt_credentials, sender_account
from messaging_whatsapp.knowledge.embeddings import Embedder, embedder_for
from messaging_whatsapp.knowledge.retrieval import query_terms
from messaging_whatsapp.knowledge.service import Evidence, gather_evidence
from messaging_whatsapp.outbox.service import PublishedEvent, relay_outbox, write_outbox
from messaging_whatsapp.providers.base import GATEWAYS, ProviderName, ReplyTypingProvider
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.providers.registry import SENDERS
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.sending.service import queue_messages
from messaging_whatsapp.sending.submissions import QueuedMessage, Submission, queued_events
from messaging_whatsapp.streams.base import StreamError
from messaging_whatsapp.tenancy.models import Tenant

logger = logging.getLogger(__name__)

# A reply taken but not finished in this long (its process died) is taken again, at most
# MAX_ATTEMPTS times in all; then it fails.
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 3
REPLIES_PER_PASS = 20
# Model calls in flight per scheduler (each waits seconds on a server).
IN_FLIGHT = 4
# The customer's newest messages read as the question (the burst).
QUESTION_MESSAGES = 5
# Words that ask nothing by themselves (folded): a burst of only these gets no answer and no
# handoff; the customer's question comes next.
_SMALL_TALK_WORDS = (
    "oi ola opa ei eai ai alo bom boa dia tarde noite tudo bem beleza blz td tranquilo obrigado "
    "obrigada obg brigado valeu vlw ok okay certo show legal perfeito entendi combinado hi hello"
)
SMALL_TALK = frozenset(_SMALL_TALK_WORDS.split())
# A burst is searched whole and sentence by sentence (a question's own words), this many at most.
MAX_SENTENCES = 6
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass
class Outcome:
    """What the model work came to: an answer with its cited chunks, a handoff, or a skip, and why."""

    text: str = ""
    sources: list[dict[str, str]] = field(default_factory=list)
    handoff_reason: str | None = None
    # Nothing to do: a stop (opted_out, agent_replied...) or nothing asked (a greeting, a thanks).
    skip_reason: str | None = None


@dataclass(frozen=True)
class Question:
    """Everything the model is given for one answer."""

    # The customer's burst, masked: what is searched.
    typed: str
    endpoint: Endpoint | None
    business: str
    instructions: str
    guardrails: str
    history: list[HistoryLine]
    evidence: Evidence
    masker: Masker


@dataclass(frozen=True)
class Prepared:
    """What a reply's model work needs, read in one session."""

    facts: ReplyFacts
    question: Question
    handoff_message: str
    newest_inbound_id: str | None


async def run_ai_replies(context: EngineContext, now: datetime) -> int:
    """One pass: take the due replies and work them (a few at a time); how many were taken. A
    quiet pass only reads (one indexed query)."""
    async with context.sessions() as session:
        due = list(
            await session.scalars(
                select(AiReply.id).where(claimable(now)).order_by(AiReply.due_at).limit(REPLIES_PER_PASS)
            )
        )
    taken: list[tuple[str, int]] = []
    for reply_id in due:
        async with context.sessions() as session, session.begin():
            attempt = await _take(session, reply_id, now)
        if attempt is not None:
            taken.append((reply_id, attempt))
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def work(reply_id: str, attempt: int) -> None:
        async with gate:
            try:
                await answer_reply(context, reply_id, attempt)
            except Exception:
                logger.exception("AI reply %s failed; it is taken again after its lease", reply_id)

    await asyncio.gather(*(work(reply_id, attempt) for reply_id, attempt in taken))
    return len(taken)


async def _take(session: AsyncSession, reply_id: str, now: datetime) -> int | None:
    """Take the reply if it is still there to take; its attempt number (None: not taken). One
    whose process died MAX_ATTEMPTS times fails instead."""
    await session.execute(
        update(AiReply)
        .where(AiReply.id == reply_id, claimable(now), AiReply.attempts >= MAX_ATTEMPTS)
        .values(status=ReplyStatus.FAILED.value, reason="gave_up", lease_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    attempt: int | None = await session.scalar(
        update(AiReply)
        .where(AiReply.id == reply_id, claimable(now), AiReply.attempts < MAX_ATTEMPTS)
        .values(
            status=ReplyStatus.WORKING.value,
            lease_until=now + LEASE,
            attempts=AiReply.attempts + 1,
            updated_at=now,
        )
        .returning(AiReply.attempts)
        .execution_options(synchronize_session=False)
    )
    return attempt


async def answer_reply(context: EngineContext, reply_id: str, attempt: int) -> None:
    """Work one taken reply to its end."""
    async with context.sessions() as session:
        reply = await session.get(AiReply, reply_id)
        if reply is None:
            return
        facts = await reply_facts(session, reply)
        stopped = "conversation_gone" if facts is None else stop_reason(facts, utcnow())
        prepared = await _prepare(context, session, facts) if facts is not None and stopped is None else None
    if prepared is None:
        await _finish(context, reply_id, attempt, Outcome(skip_reason=stopped))
        return
    auto = prepared.facts.instance.ai_mode == AiMode.AUTO.value
    typing = _show_typing(context, prepared) if auto else None
    try:
        outcome = await answer_question(prepared.question, context.settings)
    finally:
        if typing is not None:
            typing.cancel()
    await _finish(context, reply_id, attempt, outcome, prepared.handoff_message)


async def _prepare(context: EngineContext, session: AsyncSession, facts: ReplyFacts) -> Prepared:
    """The settings, the conversation so far and the question (the customer's newest messages
    since ours)."""
    row = await settings_row(session, facts.reply.tenant_id)
    rows = list(
        await session.execute(
            select(
                Message.direction,
                Message.sender_type,
                Message.content,
                Message.provider_message_id,
                Message.type,
            )
            .where(Message.conversation_id == facts.conversation.id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(HISTORY_MESSAGES)
        )
    )[::-1]
    history = [
        HistoryLine(row.direction == Direction.INBOUND.value, row.content or f"[{row.type}]") for row in rows
    ]
    burst: list[str] = []
    for message, line in zip(reversed(rows), reversed(history), strict=True):
        if message.sender_type == SenderType.SYSTEM.value:
            continue  # an automatic greeting or away message answers nothing the customer asked
        if not line.from_customer:
            break
        burst.insert(0, line.text)
    newest_inbound = next(
        (r.provider_message_id for r in reversed(rows) if r.direction == Direction.INBOUND.value), None
    )
    masker = Masker()
    typed = masker.mask("\n".join(burst[-QUESTION_MESSAGES:]))
    evidence = await best_evidence(session, embedder_for(context.settings), facts.reply.tenant_id, typed)
    question = Question(
        typed=typed,
        endpoint=endpoint_for(row, context.settings, context.cipher),
        business=facts.tenant_name,
        instructions=row.instructions if row else "",
        guardrails=row.guardrails if row else "",
        history=history,
        evidence=evidence,
        masker=masker,
    )
    handoff_message = (row.handoff_message if row else None) or DEFAULT_HANDOFF_MESSAGE
    return Prepared(facts, question, handoff_message, newest_inbound)


async def answer_question(question: Question, settings: Settings) -> Outcome:
    """Ask the model when the knowledge base holds an answer; else hand off without asking (a
    greeting or a thanks alone asks nothing: no answer, no handoff)."""
    if not asks_something(question.typed):
        return Outcome(skip_reason="nothing_asked")
    if question.endpoint is None:
        return Outcome(handoff_reason="ai_not_configured")
    if not question.evidence.answerable:
        return Outcome(handoff_reason="no_knowledge")
    chunks = [PromptChunk(f.chunk.id, f.chunk.source, f.chunk.text) for f in question.evidence.found]
    messages = chat_messages(
        question.business,
        question.instructions,
        question.guardrails,
        chunks,
        question.history,
        question.masker,
    )
    try:
        raw = await complete(question.endpoint, messages, settings)
    except AiFailed as error:
        logger.warning("AI answer failed: %s", error.message)
        return Outcome(handoff_reason="ai_failed")
    answer = read_answer(raw, len(chunks))
    if answer.handoff:
        return Outcome(handoff_reason="model_handoff")
    cited = [chunks[position - 1] for position in answer.cited]
    return Outcome(question.masker.unmask(answer.text), [{"id": c.id, "source": c.source} for c in cited])


async def preview(context: EngineContext, session: AsyncSession, tenant_id: str, typed: str) -> Outcome:
    """What the assistant would answer `typed` now, as a customer's first message (nothing is
    sent or stored)."""
    row = await settings_row(session, tenant_id)
    business = await session.scalar(select(Tenant.name).where(Tenant.id == tenant_id)) or ""
    masker = Masker()
    masked = masker.mask(typed)
    evidence = await best_evidence(session, embedder_for(context.settings), tenant_id, masked)
    question = Question(
        typed=masked,
        endpoint=endpoint_for(row, context.settings, context.cipher),
        business=business,
        instructions=row.instructions if row else "",
        guardrails=row.guardrails if row else "",
        history=[HistoryLine(from_customer=True, text=typed)],
        evidence=evidence,
        masker=masker,
    )
    return await answer_question(question, context.settings)


async def best_evidence(session: AsyncSession, embedder: Embedder, tenant_id: str, typed: str) -> Evidence:
    """The evidence for the customer's words: for the whole burst and for each of its sentences
    (customers wrap a question in greetings, context or their e-mail, whose words the knowledge
    base does not hold), the answerable one that covers the most; else the whole burst's."""
    whole = await gather_evidence(session, embedder, tenant_id, typed)
    best = whole if whole.answerable else None
    for sentence in question_sentences(typed):
        evidence = await gather_evidence(session, embedder, tenant_id, sentence)
        if evidence.answerable and (best is None or _strength(evidence) > _strength(best)):
            best = evidence
    return best or whole


def _strength(evidence: Evidence) -> float:
    return evidence.coverage + evidence.similarity


def question_sentences(typed: str) -> list[str]:
    """The burst's sentences that ask something, placeholders of personal data left out (at most
    MAX_SENTENCES; none when the burst is one sentence)."""
    sentences = [
        cleaned
        for part in _SENTENCE.split(PLACEHOLDER.sub(" ", typed))
        if (cleaned := part.strip(" ,;:-")) and asks_something(cleaned)
    ]
    return sentences[:MAX_SENTENCES] if len(sentences) > 1 or (sentences and sentences[0] != typed) else []


def asks_something(typed: str) -> bool:
    """Whether the customer's words ask anything beyond a greeting, a thanks or an "ok"."""
    return any(term not in SMALL_TALK for term in query_terms(typed))


def _show_typing(context: EngineContext, prepared: Prepared) -> asyncio.Task[None] | None:
    """Show "typing..." to the customer while the model works (a courtesy: failures are logged)."""
    instance = prepared.facts.instance
    adapter = SENDERS[ProviderName(instance.provider)]
    contact = prepared.facts.contact
    chat = _address(contact)
    if not isinstance(adapter, ReplyTypingProvider) or prepared.newest_inbound_id is None or not chat:
        return None
    account = sender_account(instance, decrypt_credentials(instance, context.cipher), context.settings)
    guarded = ProviderName(instance.provider) in GATEWAYS and not context.settings.outbound_allow_private
    newest = prepared.newest_inbound_id

    async def show() -> None:
        async with provider_client(max_connections=1, guarded=guarded) as client:
            try:
                await adapter.show_reply_typing(client, account, chat, newest)
            except Exception as error:
                logger.info("typing indicator for conversation %s not shown: %s", contact.id, error)

    return asyncio.get_running_loop().create_task(show())


async def _finish(
    context: EngineContext,
    reply_id: str,
    attempt: int,
    outcome: Outcome,
    handoff_message: str = DEFAULT_HANDOFF_MESSAGE,
) -> None:
    """Record the reply's end in one transaction (if it is still this attempt's), checking again
    what stops it; publish after commit and offer what was queued."""
    queued: list[QueuedMessage] = []
    async with context.sessions() as session, session.begin():
        now = utcnow()
        reply = await session.get(AiReply, reply_id)
        if reply is None or reply.status != ReplyStatus.WORKING.value or reply.attempts != attempt:
            return  # another runner took it after our lease ran out
        facts = await reply_facts(session, reply)
        stopped = outcome.skip_reason or ("conversation_gone" if facts is None else stop_reason(facts, now))
        if stopped is not None or facts is None:
            _end(reply, ReplyStatus.SKIPPED, now, reason=stopped)
            published = [reply_event(reply)]
        else:
            reply.ticket_id = facts.ticket.id if facts.ticket else None
            published, queued = await _conclude(session, reply, facts, outcome, handoff_message, now)
        records = await write_outbox(session, published, context.names.events)
    await relay_outbox(context, records)
    offers = [(q.message.id, q.message.tenant_id) for q in queued if q.created]
    if offers:
        with contextlib.suppress(StreamError):
            # Stored as queued: the senders' re-offer sweep picks them up otherwise.
            await offer_messages(context, offers)


async def _conclude(
    session: AsyncSession,
    reply: AiReply,
    facts: ReplyFacts,
    outcome: Outcome,
    handoff_message: str,
    now: datetime,
) -> tuple[list[PublishedEvent], list[QueuedMessage]]:
    """Draft, send or hand off, as the number's mode says."""
    reply.mode = facts.instance.ai_mode
    drafts = reply.mode == AiMode.DRAFTS.value
    if outcome.handoff_reason is not None:
        reply.text = None if drafts else handoff_message
        _end(reply, ReplyStatus.HANDED_OFF, now, reason=outcome.handoff_reason)
        if drafts:
            return [reply_event(reply)], []
        events, queued = await _send(session, reply, facts, handoff_message, [], "handoff", now)
        if facts.ticket is not None:
            events += await flag_wants_person(
                session, reply.tenant_id, facts.ticket.id, facts.conversation.id, now
            )
        return [*events, reply_event(reply)], queued
    reply.text = outcome.text
    reply.sources = outcome.sources
    if drafts:
        _end(reply, ReplyStatus.DRAFTED, now)
        return [reply_event(reply)], []
    events, queued = await _send(session, reply, facts, outcome.text, outcome.sources, "answer", now)
    _end(reply, ReplyStatus.SENT if queued else ReplyStatus.FAILED, now, reason=reply.reason)
    return [*events, reply_event(reply)], queued


async def _send(
    session: AsyncSession,
    reply: AiReply,
    facts: ReplyFacts,
    text: str,
    sources: list[dict[str, str]],
    kind: str,
    now: datetime,
) -> tuple[list[PublishedEvent], list[QueuedMessage]]:
    """Queue the text as the assistant's, through every sending rule (opt-out, window, number)."""
    request = SendMessageRequest(to=_address(facts.contact), instance_id=facts.instance.id, text=text)
    extra = (
        {"sources": [s["id"] for s in sources], "source_names": [s["source"] for s in sources]}
        if sources
        else None
    )
    submission = Submission(reply.tenant_id, request, f"ai:{reply.id}:{kind}", SenderType.AI, extra=extra)
    result = (await queue_messages(session, [submission], now))[0]
    if isinstance(result, EngineError):
        reply.reason = f"{result.code}: {result.message}"[:200]
        return [], []
    return queued_events([result]), [result]


def _address(contact: Contact) -> str:
    """The person as the sender addresses them: their phone, else the identity a provider knows."""
    return contact.phone or contact.lid or contact.bsuid or ""


def _end(reply: AiReply, status: ReplyStatus, now: datetime, *, reason: str | None = None) -> None:
    reply.status = status.value
    reply.reason = reason
    reply.lease_until = None
    reply.updated_at = now


def reply_event(reply: AiReply) -> PublishedEvent:
    """`whatsapp_ai_reply`: what the assistant did (ids and status, never the text)."""
    return PublishedEvent(
        "whatsapp_ai_reply",
        reply.tenant_id,
        {
            "reply_id": reply.id,
            "conversation_id": reply.conversation_id,
            "ticket_id": reply.ticket_id,
            "instance_id": reply.instance_id,
            "mode": reply.mode,
            "status": reply.status,
            "reason": reply.reason,
        },
    )
