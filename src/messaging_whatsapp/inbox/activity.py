"""What a conversation's row says of its last message and its open ticket, for the inbox list.

The list reads conversations alone (one index, in activity order), so every writer of messages or
tickets keeps these columns right in its own transaction: the worker's inbound applier, the send
paths, and the ticket changes (open, close, assign, merge). Receipts change neither.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from messaging_whatsapp.db import UTCDateTime, one_of, rows_table
from messaging_whatsapp.inbox.models import (
    OPEN_TICKET_STATUSES,
    PREVIEW_CHARS,
    conversations_table,
    tickets_table,
)


def message_preview(text: str | None, media: dict[str, Any] | None = None) -> str | None:
    """The first characters of a message's text (or its media's caption), as the list shows them."""
    shown = text or (media or {}).get("caption")
    return shown[:PREVIEW_CHARS] if isinstance(shown, str) and shown else None


def is_newer(current: Any, new: Any) -> Any:
    """A message of this time is the conversation's latest (ties go to the one written later)."""
    return and_(new.is_not(None), or_(current.is_(None), current <= new))


def latest(current: Any, new: Any, current_at: Any, new_at: Any) -> Any:
    """`new` when its message is the conversation's latest, else the stored value."""
    return case((is_newer(current_at, new_at), new), else_=current)


LAST_MESSAGE_COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", String()),
    ("at", UTCDateTime()),
    ("type", String()),
    ("direction", String()),
    ("preview", String()),
]


async def record_last_messages(session: AsyncSession, rows: Sequence[Sequence[Any]], now: datetime) -> None:
    """Move each conversation's last message forward: rows of (conversation id, time, type,
    direction, preview), at most one per conversation; one statement for all."""
    if not rows:
        return
    c = conversations_table.c
    last = rows_table(session, "last_messages", LAST_MESSAGE_COLUMNS, rows).c
    await session.execute(
        update(conversations_table)
        .where(c.id == last.id)
        .values(
            # SET expressions see the old row: every CASE compares with the stored time.
            last_message_type=latest(c.last_message_type, last.type, c.last_message_at, last.at),
            last_message_direction=latest(
                c.last_message_direction, last.direction, c.last_message_at, last.at
            ),
            last_message_preview=latest(c.last_message_preview, last.preview, c.last_message_at, last.at),
            last_message_at=latest(c.last_message_at, last.at, c.last_message_at, last.at),
            updated_at=now,
        )
    )


def last_message_rows(messages: Sequence[dict[str, Any]], at: datetime) -> list[list[Any]]:
    """The last of these message rows (in the order given) of each conversation, for
    record_last_messages, all at the time `at`."""
    last: dict[str, list[Any]] = {}
    for row in messages:
        last[row["conversation_id"]] = [
            row["conversation_id"],
            at,
            row["type"],
            row["direction"],
            message_preview(row.get("content"), row.get("media")),
        ]
    return [last[key] for key in sorted(last)]


async def sync_open_tickets(session: AsyncSession, conversation_ids: Collection[str]) -> None:
    """Copy each conversation's open ticket (None: resolved) and its assignee onto its row, from the
    tickets themselves: right whatever changed them, and safe to run again."""
    if not conversation_ids:
        return
    c, t = conversations_table.c, tickets_table.c
    open_ticket = select(t.id, t.assignee_id).where(
        t.conversation_id == c.id, t.status.in_(OPEN_TICKET_STATUSES)
    )
    await session.execute(
        update(conversations_table)
        .where(one_of(session, c.id, sorted(set(conversation_ids))))
        .values(
            open_ticket_id=open_ticket.with_only_columns(t.id).scalar_subquery(),
            assignee_id=open_ticket.with_only_columns(t.assignee_id).scalar_subquery(),
        )
    )
