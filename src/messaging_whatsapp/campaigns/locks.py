"""Who may change a campaign's course: one dispatcher pass, or one status change, at a time.

A transaction-level advisory lock per campaign, not a lock on its row: a pass holds it for the
whole pass, and the senders and receipts, which only add to the campaign's counters, must not
wait that long for the row. Counters therefore change by increments in SQL, never by writing a
value read earlier. On SQLite, where one writer runs at a time, the lock is that writer's: taken
before the campaign is read, so a cancel cannot land between a pass reading `running` and the
pass completing it (or handing out its contacts).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import is_postgresql, take_sqlite_writer

# First half of the two-part advisory lock key, apart from the streams' ("ST").
_LOCK_CLASS = 0x4341  # "CA"


async def try_lock_campaign(session: AsyncSession, campaign_id: str) -> bool:
    """Take the campaign for this transaction unless someone holds it (a dispatcher's pass).

    On SQLite this waits for the writer lock instead (up to the busy timeout).
    """
    if not is_postgresql(session):
        await take_sqlite_writer(session)
        return True
    taken = await session.scalar(
        select(func.pg_try_advisory_xact_lock(_LOCK_CLASS, func.hashtext(campaign_id)))
    )
    return bool(taken)


async def lock_campaigns(session: AsyncSession, campaign_ids: Iterable[str]) -> None:
    """Wait for each campaign's lock, in id order (a status change waits for a pass to end)."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return
    if not is_postgresql(session):
        await take_sqlite_writer(session)
        return
    for campaign_id in ids:
        await session.execute(select(func.pg_advisory_xact_lock(_LOCK_CLASS, func.hashtext(campaign_id))))
