"""The inbox search: conversations whose contact's name or phone, or one of whose messages' text,
holds what the agent typed.

Any fragment matches (case-insensitive), served by indexes at scale: on PostgreSQL pg_trgm GIN
indexes on contacts.name, contacts.phone and messages.content; on SQLite FTS5 trigram tables of
the contacts' names and phones (CONTACTS_SEARCH_TABLE) and of the messages' text
(MESSAGES_SEARCH_TABLE). Message text is searched from three characters on (a trigram index
cannot serve less); a shorter name scans the tenant's contacts.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import is_postgresql
from messaging_whatsapp.inbox.models import (
    CONTACTS_SEARCH_TABLE,
    MESSAGES_SEARCH_TABLE,
    PHONE_DIGITS,
    Contact,
    Conversation,
    Message,
)
from messaging_whatsapp.phones import InvalidPhone, phone_variants
from messaging_whatsapp.tenancy.service import tenant_phone

MIN_TEXT_SEARCH = 3
# A phone fragment needs this many digits to mean a phone (fewer match nearly everyone).
MIN_PHONE_DIGITS = 3


def _like_fragment(typed: str) -> str:
    """`%typed%` for LIKE, with LIKE's own wildcards taken literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", typed) + "%"


# A text in at least this many of the tenant's messages is common (see narrow_to_matches).
COMMON_MATCHES = 1_000


async def narrow_to_matches(
    session: AsyncSession, query: Select[Any], tenant_id: str, typed: str
) -> Select[Any]:
    """`query` (the tenant's conversations, in activity order) narrowed to those whose contact's
    name or phone, or one of whose messages' text, holds `typed`.

    A few matches are joined first and sorted. A text common in the messages (PostgreSQL) is
    served the other way round: the activity index is walked and each conversation tested against
    the matches' hashed set, until the page is full; joining thousands of matched conversations
    to every conversation of the tenant took several times as long (docs/benchmarks.md)."""
    people = await _people_with(session, tenant_id, typed)
    searches_text = len(typed) >= MIN_TEXT_SEARCH
    if searches_text and await _common_in_messages(session, tenant_id, typed):
        # Under OR, PostgreSQL keeps both IN lists as hashed subplans rather than joins.
        return query.where(
            or_(
                Conversation.contact_id.in_(people),
                Conversation.id.in_(_messages_with(session, tenant_id, typed)),
            )
        )
    matched: Select[Any] | CompoundSelect[Any] = select(Conversation.id.label("id")).where(
        Conversation.tenant_id == tenant_id, Conversation.contact_id.in_(people)
    )
    if searches_text:
        matched = union(matched, _messages_with(session, tenant_id, typed))
    found = matched.subquery("matched")
    return query.join(found, found.c.id == Conversation.id)


async def _people_with(
    session: AsyncSession, tenant_id: str, typed: str
) -> Select[Any] | CompoundSelect[Any]:
    """The tenant's contacts whose name or phone holds `typed`, or whose phone is the whole
    number typed in another form."""
    digits = re.sub(r"\D", "", typed)
    phone_forms = (
        await _typed_phone_forms(session, tenant_id, typed) if len(digits) >= MIN_PHONE_DIGITS else []
    )
    contacts: Select[Any] | CompoundSelect[Any] = _contacts_with(session, tenant_id, typed, digits)
    if phone_forms:
        # A whole number typed in the other Brazilian form is no fragment of the stored one.
        known = select(Contact.id).where(Contact.tenant_id == tenant_id, Contact.phone.in_(phone_forms))
        contacts = union(contacts, known)
    return contacts


async def _common_in_messages(session: AsyncSession, tenant_id: str, typed: str) -> bool:
    """Whether at least COMMON_MATCHES of the tenant's messages hold `typed` (PostgreSQL; SQLite's
    FTS5 join is fast either way). Stops counting there: a few milliseconds."""
    if not is_postgresql(session):
        return False
    first = _messages_with(session, tenant_id, typed).limit(COMMON_MATCHES).subquery()
    counted = await session.scalar(select(func.count()).select_from(first))
    return (counted or 0) >= COMMON_MATCHES


async def _typed_phone_forms(session: AsyncSession, tenant_id: str, typed: str) -> list[str]:
    """A whole phone typed in any form (national, with or without the Brazilian ninth digit): every
    form it is stored under; a fragment has none."""
    try:
        return phone_variants(await tenant_phone(session, tenant_id, typed))
    except InvalidPhone:
        return []


def _phrase(typed: str) -> str:
    """An FTS5 phrase: the trigram tokenizer matches it anywhere in a text, case-insensitively."""
    return '"' + typed.replace('"', '""') + '"'


def _contacts_with(session: AsyncSession, tenant_id: str, typed: str, digits: str) -> Select[Any]:
    """The tenant's contacts whose name holds `typed` or whose phone holds its digits."""
    if is_postgresql(session) or len(typed) < MIN_TEXT_SEARCH:
        # Under three characters no trigram index serves: SQLite scans the tenant's contacts.
        people: list[ColumnElement[bool]] = [Contact.name.ilike(_like_fragment(typed), escape="\\")]
        if len(digits) >= MIN_PHONE_DIGITS:
            people.append(literal_column(PHONE_DIGITS.replace("phone", "contacts.phone")).like(f"%{digits}%"))
        return select(Contact.id).where(Contact.tenant_id == tenant_id, or_(*people))
    query = "name : " + _phrase(typed)
    if len(digits) >= MIN_PHONE_DIGITS:
        query += " OR phone : " + _phrase(digits)
    index = table(CONTACTS_SEARCH_TABLE, column("rowid"))
    return (
        select(Contact.id)
        .select_from(index)
        .join(Contact, literal_column("contacts.rowid") == index.c.rowid)
        .where(text(f"{CONTACTS_SEARCH_TABLE} MATCH :people").bindparams(people=query))
        .where(Contact.tenant_id == tenant_id)
    )


def _messages_with(session: AsyncSession, tenant_id: str, typed: str) -> Select[Any]:
    """The conversations of the tenant's messages whose text holds `typed`."""
    if is_postgresql(session):
        return select(Message.conversation_id.label("id")).where(
            Message.tenant_id == tenant_id, Message.content.ilike(_like_fragment(typed), escape="\\")
        )
    index = table(MESSAGES_SEARCH_TABLE, column("rowid"))
    return (
        select(Message.conversation_id.label("id"))
        .select_from(index)
        .join(Message, literal_column("messages.rowid") == index.c.rowid)
        .where(text(f"{MESSAGES_SEARCH_TABLE} MATCH :phrase").bindparams(phrase=_phrase(typed)))
        .where(Message.tenant_id == tenant_id)
    )


async def compact_search_indexes(session: AsyncSession) -> None:
    """On SQLite, merge each full-text index into one segment, so no older segment keeps the text
    of rows just deleted (an erasure). PostgreSQL's trigram indexes drop dead rows at vacuum, as
    its tables do."""
    if is_postgresql(session):
        return
    for index in (MESSAGES_SEARCH_TABLE, CONTACTS_SEARCH_TABLE):
        await session.execute(text(f"INSERT INTO {index}({index}) VALUES ('optimize')"))
