"""A conversation's messages as the chat shows them: reactions folded onto the message they react
to (a reaction is stored as a message of type `reaction` naming its target's provider id in
`extra.message_id`, its emoji as text, none when taken back), and a reply's quoted message found
in the same conversation. Two lookups per page, whatever its size.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.inbox.activity import message_preview
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.inbox.schemas import MessageItem, QuotedMessage, Reaction

REACTION = "reaction"


async def with_quotes_and_reactions(
    session: AsyncSession, conversation_id: str, items: list[MessageItem]
) -> list[MessageItem]:
    """The page's items with their quoted message and their reactions filled in."""
    quoted_ids = {item.quoted_provider_message_id for item in items if item.quoted_provider_message_id}
    quoted = await _quoted(session, conversation_id, quoted_ids) if quoted_ids else {}
    targets = {item.provider_message_id for item in items if item.provider_message_id}
    reactions = await _reactions(session, conversation_id, targets) if targets else {}
    for item in items:
        if item.quoted_provider_message_id:
            item.quoted = quoted.get(
                item.quoted_provider_message_id,
                QuotedMessage(provider_message_id=item.quoted_provider_message_id),
            )
        if item.provider_message_id:
            item.reactions = reactions.get(item.provider_message_id, [])
    return items


async def _quoted(
    session: AsyncSession, conversation_id: str, provider_ids: set[str]
) -> dict[str, QuotedMessage]:
    rows = await session.execute(
        select(
            Message.id,
            Message.provider_message_id,
            Message.type,
            Message.direction,
            Message.content,
            Message.media,
        ).where(Message.conversation_id == conversation_id, Message.provider_message_id.in_(provider_ids))
    )
    return {
        row.provider_message_id: QuotedMessage(
            provider_message_id=row.provider_message_id,
            id=row.id,
            type=row.type,
            direction=row.direction,
            preview=message_preview(row.content, row.media),
        )
        for row in rows
    }


async def _reactions(
    session: AsyncSession, conversation_id: str, targets: set[str]
) -> dict[str, list[Reaction]]:
    """target provider id -> its reactions, each sender's latest (an empty emoji takes one back)."""
    target = Message.extra["message_id"].as_string()
    rows = await session.execute(
        select(
            target.label("target"),
            Message.content,
            Message.direction,
            Message.sender_name,
            Message.created_at,
        )
        .where(Message.conversation_id == conversation_id, Message.type == REACTION, target.in_(targets))
        .order_by(Message.created_at, Message.id)
    )
    latest: dict[tuple[str, str, str | None], Reaction | None] = {}
    for row in rows:
        # A customer reacts once per message; each of the business's senders too.
        sender = (row.target, row.direction, row.sender_name)
        latest.pop(sender, None)  # a later reaction replaces the earlier, listed last
        latest[sender] = (
            Reaction(
                emoji=row.content, direction=row.direction, sender_name=row.sender_name, at=row.created_at
            )
            if row.content
            else None
        )
    found: dict[str, list[Reaction]] = {}
    for (target_id, _, _), reaction in latest.items():
        if reaction is not None:
            found.setdefault(target_id, []).append(reaction)
    return found
