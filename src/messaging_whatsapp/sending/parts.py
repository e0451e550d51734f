"""Long texts as ordered parts: split at sentence or word boundaries to fit a provider's limit
(providers/capabilities.py), and sent one after the other.

The first part is queued as any message; each later part is stored held (waiting, with no next
attempt) and names the part before it in `follows_message_id`. The senders' sweep releases a held
part once the part before it went out, and fails it when that part failed for good, so the
person never reads part 2 without part 1, nor before it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import exists, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import new_id
from messaging_whatsapp.inbox.models import SendState, messages_table
from messaging_whatsapp.outbox.service import PublishedEvent
from messaging_whatsapp.providers.events import STATUS_RANK, DeliveryStatus

FAILED_RANK = STATUS_RANK[DeliveryStatus.FAILED]
PREVIOUS_PART_FAILED = (
    "previous_part_failed",
    "the part of this text before it was not sent, so this part was not sent either",
)
# The end of a sentence: ., ! or ? (or an ellipsis), with any closing quotes, then white space.
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s+")
_PARAGRAPH_END = re.compile(r"\n\s*\n")
_SPACE = re.compile(r"\s+")
# A boundary this far into the part at least, or the parts get needlessly short.
_MIN_FILL = 0.5


def split_text(text: str, limit: int) -> list[str]:
    """The text in parts of at most `limit` characters: cut at the last paragraph or sentence end
    that keeps a part at least half full, else at the last space, else (one endless word) hard."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut(rest, limit)
        part = rest[:cut].rstrip()
        if part:
            parts.append(part)
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _cut(text: str, limit: int) -> int:
    """Where to end the next part: just after a boundary within the first `limit` characters."""
    window = text[: limit + 1]  # a boundary right after the limit still ends a full part
    floor = int(limit * _MIN_FILL)
    for boundary in (_PARAGRAPH_END, _SENTENCE_END):
        ends = [match.start() + 1 for match in boundary.finditer(window) if floor <= match.start() < limit]
        if ends:
            return max(ends)
    spaces = [match.start() for match in _SPACE.finditer(window) if 0 < match.start() <= limit]
    return max(spaces) if spaces else limit


def split_row(first: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """A text over the provider's limit: `first` keeps the first part and the rest come back as
    held rows, each following the one before (only the first quotes, carries the key, is offered)."""
    if first["type"] != "text" or first["content"] is None or len(first["content"]) <= limit:
        return []
    texts = split_text(first["content"], limit)
    first["content"] = texts[0]
    kept = first["extra"] or {}
    first["extra"] = {**kept, "part": 1, "parts": len(texts)}
    followers: list[dict[str, Any]] = []
    previous = first["id"]
    for number, text in enumerate(texts[1:], start=2):
        row = {
            **first,
            "id": new_id(),
            "content": text,
            "extra": {**kept, "part": number, "parts": len(texts)},
            "quoted_provider_message_id": None,
            "idempotency_key": None,
            "send_state": SendState.WAITING.value,
            "next_attempt_at": None,
            "follows_message_id": previous,
        }
        followers.append(row)
        previous = row["id"]
    return followers


async def release_followers(session: AsyncSession, now: datetime) -> list[PublishedEvent]:
    """Held parts whose part before went out become due now (the sweep offers them); those whose
    part before failed for good fail too, with the reason (a `whatsapp_delivery_failed` each).
    Longer chains move a part per sweep."""
    m = messages_table.c
    before = messages_table.alias("before")
    b = before.c
    held = (
        m.send_state == SendState.WAITING.value,
        m.next_attempt_at.is_(None),
        m.follows_message_id.is_not(None),
    )
    done = (b.id == m.follows_message_id, b.send_state == SendState.DONE.value)
    await session.execute(
        update(messages_table)
        .where(*held, exists().where(*done, b.status_rank != FAILED_RANK))
        .values(next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    failed = await session.execute(
        update(messages_table)
        .where(*held, exists().where(*done, b.status_rank == FAILED_RANK))
        .values(
            send_state=SendState.DONE.value,
            status=DeliveryStatus.FAILED.value,
            status_rank=FAILED_RANK,
            failed_at=now,
            error_code=PREVIOUS_PART_FAILED[0],
            error_title=PREVIOUS_PART_FAILED[1],
            updated_at=now,
        )
        .returning(m.id, m.tenant_id, m.instance_id, m.conversation_id)
        .execution_options(synchronize_session=False)
    )
    return [
        PublishedEvent(
            "whatsapp_delivery_failed",
            row.tenant_id,
            {
                "message_id": row.id,
                "instance_id": row.instance_id,
                "conversation_id": row.conversation_id,
                "status": DeliveryStatus.FAILED.value,
                "error": {"code": PREVIOUS_PART_FAILED[0], "title": PREVIOUS_PART_FAILED[1]},
            },
        )
        for row in failed
    ]
