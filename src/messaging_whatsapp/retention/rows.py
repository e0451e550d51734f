"""The inbox rows retention deletes: a tenant's old messages and long-closed tickets, in batches.

Each batch is its own short transaction of at most BATCH_ROWS rows, so a first run over years of
messages never holds one huge transaction (nor, on SQLite, the one writer's lock for long).
On SQLite each batch turns on `PRAGMA secure_delete` (db.secure_deletes): the deleted rows' bytes
are overwritten with zeros instead of lingering in free space in the file.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, Table, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.db import secure_deletes
from messaging_whatsapp.inbox.models import SendState, TicketStatus, messages_table, tickets_table
from messaging_whatsapp.instances.models import WhatsAppInstance

# Rows deleted per statement (and transaction).
BATCH_ROWS = 1000


def expired_messages(tenant_id: str, cutoff: datetime) -> Select[str]:
    """The ids of the tenant's messages stored before `cutoff`; not those still on their way to the
    provider, whose sender would find them gone."""
    messages = messages_table.c
    numbers = select(WhatsAppInstance.id).where(WhatsAppInstance.tenant_id == tenant_id)
    return select(messages.id).where(
        messages.tenant_id == tenant_id,
        # Through the tenant's numbers: (instance_id, created_at) is indexed, tenant_id alone is not.
        messages.instance_id.in_(numbers),
        messages.created_at < cutoff,
        or_(messages.send_state.is_(None), messages.send_state == SendState.DONE.value),
    )


def expired_tickets(tenant_id: str, cutoff: datetime) -> Select[str]:
    """The ids of the tenant's tickets closed before `cutoff` (an open ticket is never expired)."""
    tickets = tickets_table.c
    return select(tickets.id).where(
        tickets.tenant_id == tenant_id,
        tickets.status == TicketStatus.CLOSED.value,
        tickets.closed_at < cutoff,
    )


async def count_expired(sessions: async_sessionmaker[AsyncSession], expired: Select[str]) -> int:
    """How many rows `expired` selects (what a dry run reports)."""
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(expired.subquery())) or 0)


async def delete_expired(
    sessions: async_sessionmaker[AsyncSession], table: Table, expired: Select[str]
) -> int:
    """Delete the rows of `table` that `expired` selects, BATCH_ROWS per transaction; how many."""
    # Portable on both databases: DELETE ... WHERE id IN (SELECT id ... LIMIT n).
    batch = delete(table).where(table.c.id.in_(expired.limit(BATCH_ROWS).scalar_subquery()))
    deleted = 0
    while True:
        async with sessions() as session, session.begin(), secure_deletes(await session.connection()):
            result = await session.execute(batch)
        if not result.rowcount:  # type: ignore[attr-defined]
            # Until a batch finds nothing: a batch may find fewer rows than asked when another run
            # deleted some of them meanwhile, and more may remain.
            return deleted
        deleted += result.rowcount  # type: ignore[attr-defined]
