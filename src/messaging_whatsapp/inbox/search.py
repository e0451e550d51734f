"""The inbox search: conversations whose contact's name or phone, or one of whose messages' text,
holds what the agent typed.

Any fragment matches (case-insensitive), served by indexes at scale: on PostgreSQL pg_trgm GIN
indexes on contacts.name, contacts.phone and messages.content; on SQLite an FTS5 trigram index of
the messages' text (MESSAGES_SEARCH_TABLE) and a scan of the tenant's contacts. Message text is
searched from three characters on (a trigram index cannot serve less).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    column,
    literal_column,
    or_,
    select,
    table,
    text,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import is_postgresql
from messaging_whatsapp.inbox.models import MESSAGES_SEARCH_TABLE, Contact, Conversation, Message
from messaging_whatsapp.phones import InvalidPhone, phone_variants
from messaging_whatsapp.tenancy.service import tenant_phone

MIN_TEXT_SEARCH = 3
# A phone fragment needs this many digits to mean a phone (fewer match nearly everyone).
MIN_PHONE_DIGITS = 3


def _like_fragment(typed: str) -> str:
    """`%typed%` for LIKE, with LIKE's own wildcards taken literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", typed) + "%"


async def matching_conversations(session: AsyncSession, tenant_id: str, typed: str) -> Subquery:
    """The ids of the tenant's conversations whose contact's name or phone, or one of whose
    messages' text, holds `typed`. The list joins these few first and sorts them, rather than
    walking every conversation in activity order to test each."""
    fragment = _like_fragment(typed)
    people: list[ColumnElement[bool]] = [Contact.name.ilike(fragment, escape="\\")]
    digits = re.sub(r"\D", "", typed)
    if len(digits) >= MIN_PHONE_DIGITS:
        people.append(Contact.phone.like(f"%{digits}%"))
        people.append(Contact.phone.in_(await _typed_phone_forms(session, tenant_id, typed)))
    contacts = select(Contact.id).where(Contact.tenant_id == tenant_id, or_(*people))
    by_contact = select(Conversation.id.label("id")).where(
        Conversation.tenant_id == tenant_id, Conversation.contact_id.in_(contacts)
    )
    if len(typed) < MIN_TEXT_SEARCH:
        return by_contact.subquery("matched")
    return union(by_contact, _messages_with(session, tenant_id, typed, fragment)).subquery("matched")


async def _typed_phone_forms(session: AsyncSession, tenant_id: str, typed: str) -> list[str]:
    """A whole phone typed in any form (national, with or without the Brazilian ninth digit): every
    form it is stored under; a fragment has none."""
    try:
        return phone_variants(await tenant_phone(session, tenant_id, typed))
    except InvalidPhone:
        return []


def _messages_with(session: AsyncSession, tenant_id: str, typed: str, fragment: str) -> Select[Any]:
    """The conversations of the tenant's messages whose text holds `typed`."""
    if is_postgresql(session):
        return select(Message.conversation_id.label("id")).where(
            Message.tenant_id == tenant_id, Message.content.ilike(fragment, escape="\\")
        )
    # FTS5's trigram tokenizer matches a quoted phrase anywhere in the text, case-insensitively.
    phrase = '"' + typed.replace('"', '""') + '"'
    index = table(MESSAGES_SEARCH_TABLE, column("rowid"))
    return (
        select(Message.conversation_id.label("id"))
        .select_from(index)
        .join(Message, literal_column("messages.rowid") == index.c.rowid)
        .where(text(f"{MESSAGES_SEARCH_TABLE} MATCH :phrase").bindparams(phrase=phrase))
        .where(Message.tenant_id == tenant_id)
    )
