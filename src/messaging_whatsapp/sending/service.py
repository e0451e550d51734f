"""Sending one-to-one messages: each checked against every rule, then stored as queued, set-based.

Everything that would make a send pointless or harmful is refused here, before anything is
stored or queued: an invalid phone, an opted-out person, a number that cannot send, content its
provider cannot send, a free-form message outside WhatsApp's 24-hour customer service window on
the official APIs (the rules are in sending/rules.py), a template its number has not stored as
approved or that gets the wrong number of parameters (templates/check.py). What passes is stored
as `queued`; the caller commits, then offers it to the senders (sending/queue.py). A text longer
than the number's provider takes is stored as ordered parts, the later ones held until the one
before is sent (sending/parts.py); the caller gets the first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.consent.service import opted_out_phones
from messaging_whatsapp.db import generic_plans, insert_new_rows, insert_rows, one_of
from messaging_whatsapp.errors import Conflict, EngineError, NotFound
from messaging_whatsapp.inbox.activity import last_message_rows, record_last_messages
from messaging_whatsapp.inbox.models import (
    Contact,
    Conversation,
    Message,
    SenderType,
    contacts_table,
    conversations_table,
    messages_table,
)
from messaging_whatsapp.inbox.ticketing import Origin
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.phones import DEFAULT_COUNTRY, needs_country, phone_variants
from messaging_whatsapp.providers.capabilities import text_limit
from messaging_whatsapp.providers.outbound import RecipientKind
from messaging_whatsapp.sending.parts import split_row
from messaging_whatsapp.sending.queue import (
    CONVERSATION_KEY,
    conversations_by_pair,
    new_conversation,
)
from messaging_whatsapp.sending.recipients import (
    KnownIdentity,
    checked_phone,
    identity_contacts,
    new_identity_contacts,
    reaching,
    recipient,
)
from messaging_whatsapp.sending.rules import (
    QuotedMessage,
    check_content,
    check_service_window,
    choose_instance,
    reply_instance,
)
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.sending.submissions import QueuedMessage, Submission, SubmissionResult, message_row
from messaging_whatsapp.sending.team import origin_of, sender_names, session_tickets
from messaging_whatsapp.templates.check import TemplateBook
from messaging_whatsapp.tenancy.service import tenant_country

# contact id -> instance id -> (conversation id, when the person last wrote there)
ConversationsByContact = dict[str, dict[str, tuple[str, datetime | None]]]


async def queue_message(
    session: AsyncSession,
    tenant_id: str,
    request: SendMessageRequest,
    *,
    idempotency_key: str | None,
    sender_type: SenderType,
    now: datetime,
    sender_user_id: str | None = None,
) -> QueuedMessage:
    """Check every rule and store the message as queued; the caller commits, then offers it."""
    submission = Submission(tenant_id, request, idempotency_key, sender_type, sender_user_id)
    [result] = await queue_messages(session, [submission], now)
    if isinstance(result, EngineError):
        raise result
    return result


async def queue_messages(
    session: AsyncSession, submissions: list[Submission], now: datetime
) -> list[SubmissionResult]:
    """Check every rule for each submission and store those that pass as queued, set-based (a few
    statements per tenant, however many messages); results in the order given, each a queued
    message or the error that refused it. The caller commits, then offers the created ones."""
    results: list[SubmissionResult | None] = [None] * len(submissions)
    by_tenant: dict[str, list[int]] = {}
    for index, submission in enumerate(submissions):
        by_tenant.setdefault(submission.tenant_id, []).append(index)
    for tenant_id, indexes in by_tenant.items():
        batch = _TenantBatch(session, tenant_id, now)
        for index, result in zip(indexes, await batch.queue([submissions[i] for i in indexes]), strict=True):
            results[index] = result
    return _complete(results)


def _complete(results: list[SubmissionResult | None]) -> list[SubmissionResult]:
    """The results, every one of them set (a gap would be a bug here, never an answer)."""
    if any(result is None for result in results):
        raise RuntimeError("a submission was neither queued nor refused")
    return [result for result in results if result is not None]


class _TenantBatch:
    """One tenant's submissions of a batch, checked and stored together."""

    def __init__(self, session: AsyncSession, tenant_id: str, now: datetime) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._now = now
        # conversation id -> the ticket this batch's messages opened in it.
        self._opened: dict[str, str] = {}

    async def queue(self, submissions: list[Submission]) -> list[SubmissionResult]:
        results: list[SubmissionResult | None] = [None] * len(submissions)
        earlier = await self._by_idempotency_keys(
            {s.idempotency_key for s in submissions if s.idempotency_key}
        )
        # index -> who the message goes to: a canonical phone, or an identity (BSUID, LID).
        phones: dict[int, str] = {}
        # Most callers write E.164: the tenant's country is read only for a national form.
        country = DEFAULT_COUNTRY
        if any(needs_country(s.request.to) for s in submissions if s.idempotency_key not in earlier):
            country = await tenant_country(self._session, self._tenant_id)
        kinds: dict[int, RecipientKind] = {}
        for index, submission in enumerate(submissions):
            if submission.idempotency_key in earlier:
                results[index] = earlier[submission.idempotency_key]
                continue
            try:
                kinds[index], phones[index] = recipient(submission.request.to, country)
            except EngineError as exc:
                results[index] = exc
        identities = await identity_contacts(
            self._session,
            self._tenant_id,
            {(kinds[i], phones[i]) for i in phones if kinds[i] is not RecipientKind.PHONE},
        )
        # A contact found by its identity that has a phone is written to (and checked) by phone.
        checked = {index: checked_phone(phone, identities) for index, phone in phones.items()}
        opted_out = await opted_out_phones(self._session, self._tenant_id, {p for p in checked.values() if p})
        for index, phone in list(phones.items()):
            known = identities.get(phone)
            if checked[index] in opted_out or (known is not None and known.opted_out):
                results[index] = Conflict(
                    f"{phone} opted out of messages from this business", code="opted_out"
                )
                del phones[index]
            elif known is not None and known.phone is not None:
                kinds[index] = RecipientKind.PHONE
        if phones:
            await self._store(submissions, phones, kinds, identities, results)
        return _complete(results)

    async def _store(
        self,
        submissions: list[Submission],
        phones: dict[int, str],
        kinds: dict[int, RecipientKind],
        identities: dict[str, KnownIdentity],
        results: list[SubmissionResult | None],
    ) -> None:
        """Choose each message's number and check its window against what is stored; then create
        the contacts and conversations of those that pass (a refused message leaves nothing)."""
        contacts = await self._stored_contacts({p for p in phones.values() if p.startswith("+")})
        contacts.update({key: known.contact_id for key, known in identities.items()})
        instances = await self._instances()
        conversations = await self._conversations(set(contacts.values()))
        quoted = await self._quoted({s.request.reply_to for s in submissions if s.request.reply_to})
        chosen: dict[int, WhatsAppInstance] = {}
        quotes: dict[int, str | None] = {}
        # The tenant's templates, read once for the whole batch when any message is a template.
        book = None
        if any(submissions[index].request.template is not None for index in phones):
            book = await TemplateBook.load(self._session, self._tenant_id)
        for index, phone in phones.items():
            talking = conversations.get(contacts.get(phone, ""), {})
            request = submissions[index].request
            try:
                instance_id = reply_instance(request, quoted, contacts.get(phone))
                able = reaching(instances, kinds[index], instance_id)
                instance = choose_instance(able, instance_id, talking, self._now, request)
                check_content(instance, request)
                if book is not None and request.template is not None:
                    template = request.template
                    book.check(instance, template.name, template.language, len(template.parameters))
                check_service_window(instance, talking.get(instance.id, (None, None))[1], request, self._now)
            except EngineError as exc:
                results[index] = exc
                continue
            chosen[index] = instance
            if request.reply_to is not None:
                quotes[index] = quoted[request.reply_to].provider_message_id
        # The writes' foreign-key checks are primary-key lookups: their plans may be reused.
        async with generic_plans(self._session):
            await self._write(submissions, phones, kinds, chosen, quotes, contacts, conversations, results)

    async def _write(
        self,
        submissions: list[Submission],
        phones: dict[int, str],
        kinds: dict[int, RecipientKind],
        chosen: dict[int, WhatsAppInstance],
        quotes: dict[int, str | None],
        contacts: dict[str, str],
        conversations: ConversationsByContact,
        results: list[SubmissionResult | None],
    ) -> None:
        new_people: dict[str, Origin] = {}
        identified: set[tuple[RecipientKind, str]] = set()
        for index in sorted(chosen):
            key = phones[index]
            if key in contacts:
                continue
            if kinds[index] is RecipientKind.PHONE:
                new_people.setdefault(key, origin_of(submissions[index].sender_type))
            else:
                identified.add((kinds[index], key))
        contacts.update(await self._new_contacts(new_people))
        contacts.update(await new_identity_contacts(self._session, self._tenant_id, identified, self._now))
        pairs = {index: (contacts[phones[index]], instance.id) for index, instance in chosen.items()}
        conversation_ids = await self._conversation_ids(set(pairs.values()), conversations)
        starters: dict[str, SenderType] = {}
        for index in sorted(pairs):
            starters.setdefault(conversation_ids[pairs[index]], submissions[index].sender_type)
        tickets = await session_tickets(self._session, self._tenant_id, starters, self._now, self._opened)
        names = await sender_names(
            self._session,
            self._tenant_id,
            {s.sender_user_id for s in submissions if s.sender_user_id},
            {s.sender_api_key_id for s in submissions if s.sender_api_key_id},
        )
        rows: dict[int, dict[str, Any]] = {}
        followers: dict[int, list[dict[str, Any]]] = {}
        for index, (contact_id, instance_id) in pairs.items():
            conversation_id = conversation_ids[(contact_id, instance_id)]
            submission = submissions[index]
            rows[index] = message_row(
                submission, instance_id, conversation_id, contact_id, quotes.get(index), self._now
            )
            sender = submission.sender_user_id or submission.sender_api_key_id
            rows[index].update(
                ticket_id=tickets[conversation_id],
                sender_user_id=submission.sender_user_id,
                sender_name=names.get(sender) if sender else None,
            )
            followers[index] = split_row(rows[index], text_limit(chosen[index].provider))
        for index, queued in (await self._insert(rows, phones)).items():
            results[index] = queued
            if queued.created and followers[index]:
                # Inserted after their first part, in order: each names the one before it.
                statement, params = insert_rows(self._session, messages_table, followers[index])
                await self._session.execute(statement, params)

    async def _by_idempotency_keys(self, keys: set[str | None]) -> dict[str | None, QueuedMessage]:
        """The messages stored earlier under these keys, with the phone (or identity) they went to."""
        if not keys:
            return {}
        found = await self._session.execute(
            select(Message, func.coalesce(Contact.phone, Contact.bsuid, Contact.lid))
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.tenant_id == self._tenant_id, one_of(self._session, Message.idempotency_key, keys))
        )
        return {
            message.idempotency_key: QueuedMessage(message, created=False, to=phone)
            for message, phone in found
        }

    async def _quoted(self, message_ids: set[str | None]) -> dict[str, QuotedMessage]:
        """The tenant's messages that submissions reply to, by id."""
        if not message_ids:
            return {}
        m = Message
        rows = await self._session.execute(
            select(m.id, m.contact_id, m.instance_id, m.provider_message_id).where(
                m.tenant_id == self._tenant_id, one_of(self._session, m.id, message_ids)
            )
        )
        return {
            row.id: QuotedMessage(row.contact_id, row.instance_id, row.provider_message_id) for row in rows
        }

    async def _stored_contacts(self, phones: set[str]) -> dict[str, str]:
        """phone -> contact id of the people already known, under either Brazilian form."""
        by_variant = {variant: phone for phone in phones for variant in phone_variants(phone)}
        found = await self._session.execute(
            select(Contact.phone, Contact.id).where(
                Contact.tenant_id == self._tenant_id, one_of(self._session, Contact.phone, list(by_variant))
            )
        )
        contacts: dict[str, str] = {}
        for variant, contact_id in sorted(found, key=lambda row: row.phone != by_variant[row.phone]):
            if variant is not None:
                contacts.setdefault(by_variant[variant], contact_id)  # the canonical form wins
        return contacts

    async def _new_contacts(self, phones: dict[str, Origin]) -> dict[str, str]:
        """phone -> contact id of people written to for the first time (canonical phone), whose
        first touch is this message."""
        rows = [
            {
                "tenant_id": self._tenant_id,
                "phone": phone,
                **phones[phone].contact_columns(),
                "created_at": self._now,
                "updated_at": self._now,
            }
            for phone in sorted(phones)
        ]
        created = await insert_new_rows(self._session, contacts_table, ("tenant_id", "phone"), rows)
        return {phone: contact_id for (_, phone), contact_id in created.items()}

    async def _instances(self) -> list[WhatsAppInstance]:
        query = select(WhatsAppInstance).where(WhatsAppInstance.tenant_id == self._tenant_id)
        return list((await self._session.scalars(query)).all())

    async def _conversations(self, contact_ids: set[str]) -> ConversationsByContact:
        """contact id -> instance id -> (conversation id, the person's last message there)."""
        if not contact_ids:
            return {}
        c = Conversation
        rows = await self._session.execute(
            select(c.contact_id, c.instance_id, c.id, c.last_inbound_at).where(
                c.tenant_id == self._tenant_id, one_of(self._session, c.contact_id, contact_ids)
            )
        )
        found: ConversationsByContact = {}
        for row in rows:
            found.setdefault(row.contact_id, {})[row.instance_id] = (row.id, row.last_inbound_at)
        return found

    async def _conversation_ids(
        self, pairs: set[tuple[str, str]], known: ConversationsByContact
    ) -> dict[tuple[str, str], str]:
        """The conversation of each (contact, instance); `known` holds every stored one of these
        contacts, so the others are created (already with this message's time)."""
        ids = {
            (contact_id, instance_id): known[contact_id][instance_id][0]
            for contact_id, instance_id in pairs
            if instance_id in known.get(contact_id, {})
        }
        rows = [new_conversation(self._tenant_id, *pair, self._now) for pair in sorted(pairs - ids.keys())]
        created = await insert_new_rows(self._session, conversations_table, CONVERSATION_KEY, rows)
        ids.update(conversations_by_pair(created))
        return ids

    async def _insert(
        self, rows: dict[int, dict[str, Any]], phones: dict[int, str]
    ) -> dict[int, QueuedMessage]:
        """Store the rows; a row whose Idempotency-Key another submission (here or in a concurrent
        request) already stored answers with that one's message instead. Their conversations get
        them as their last message."""
        first_by_key: dict[str, int] = {}
        fresh: dict[int, dict[str, Any]] = {}
        for index, row in rows.items():
            key = row["idempotency_key"]
            if key is not None and key in first_by_key:
                continue
            if key is not None:
                first_by_key[key] = index
            fresh[index] = row
        if not fresh:
            return {}
        rows_insert, params = insert_rows(self._session, messages_table, list(fresh.values()))
        statement = rows_insert.on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        stored = set((await self._session.scalars(statement.returning(messages_table.c.id), params)).all())
        written = [row for row in fresh.values() if row["id"] in stored]
        await record_last_messages(self._session, last_message_rows(written, self._now), self._now)
        raced = await self._by_idempotency_keys(
            {row["idempotency_key"] for row in fresh.values() if row["id"] not in stored}
        )
        queued: dict[int, QueuedMessage] = {}
        for index, row in rows.items():
            key = row["idempotency_key"]
            first_index = first_by_key.get(key, index)  # a row without a key is its own first
            first = fresh.get(first_index)
            if first is not None and first["id"] in stored:
                opened = first["conversation_id"] in self._opened
                queued[index] = QueuedMessage(
                    Message(**first), created=first is row, to=phones[first_index], opened_ticket=opened
                )
            elif key in raced:
                queued[index] = raced[key]
        return queued


async def get_message(session: AsyncSession, tenant_id: str, message_id: str) -> Message:
    """One of the tenant's messages; another tenant's id is not found."""
    message = await session.scalar(
        select(Message).where(Message.id == message_id, Message.tenant_id == tenant_id)
    )
    if message is None:
        raise NotFound(f"message {message_id} not found")
    return message
