"""Applies connection changes (seed 000): a number that closes goes inactive; reconnected, active again.

The last change of a number in a batch wins, and a change older than the one stored is ignored,
so webhooks that arrive out of order never bring a number back to an earlier state. What the
campaigns using the number do about it is theirs to apply (campaigns/progress.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.batch import ConnectionChange
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances.models import InstanceStatus, instances_table
from messaging_whatsapp.providers.events import ConnectionState


async def apply_connection_changes(
    session: AsyncSession, changes: list[ConnectionChange]
) -> list[ConnectionChange]:
    """Record each number's change unless a later one is stored; returns the changes that took."""
    applied: list[ConnectionChange] = []
    for change in sorted(changes, key=lambda c: c.instance_id):
        outcome = await session.execute(
            update(instances_table)
            .where(
                instances_table.c.id == change.instance_id,
                or_(
                    instances_table.c.connection_changed_at.is_(None),
                    instances_table.c.connection_changed_at <= change.at,
                ),
            )
            .values(**_values(change))
        )
        if outcome.rowcount:  # type: ignore[attr-defined]
            applied.append(change)
    return applied


def _values(change: ConnectionChange) -> dict[str, Any]:
    values: dict[str, Any] = {
        "connection_state": change.state.value,
        "connection_reason": change.reason,
        "connection_changed_at": change.at,
        "updated_at": utcnow(),
    }
    status = instances_table.c.status
    if change.state is ConnectionState.CLOSE:
        # An unbound number stays unbound (a change queued before the unbind may come after it).
        values["status"] = case(
            (status == InstanceStatus.UNBOUND.value, status), else_=InstanceStatus.INACTIVE.value
        )
    elif change.state is ConnectionState.OPEN:
        # Reconnection restores only what disconnection took; an operator's pause stays.
        values["status"] = case(
            (status == InstanceStatus.INACTIVE.value, InstanceStatus.ACTIVE.value), else_=status
        )
    return values
