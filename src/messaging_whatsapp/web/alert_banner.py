"""The alert banner every page of the app shows supervisors and admins: how many alerts are open and
the most severe of them (agents see none: the alerts are about the numbers, which they do not read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.alerts.models import Alert
from messaging_whatsapp.alerts.service import number_names, open_alerts
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.tenancy.models import ROLE_RANK, UserRole


@dataclass(frozen=True, slots=True)
class Banner:
    """The open alerts' count and the most severe one (None when none is open), with the name of
    the number it is about."""

    count: int
    top: Alert | None
    number: str | None
    # When it was loaded: how long the top alert's disconnection or silence has lasted.
    now: datetime


def sees_alerts(role: str) -> bool:
    """Whether a user of this role is shown the alerts (supervisors and admins)."""
    return ROLE_RANK[UserRole(role)] >= ROLE_RANK[UserRole.SUPERVISOR]


async def load_banner(session: AsyncSession, tenant_id: str) -> Banner:
    """The tenant's banner as it is now."""
    found = await open_alerts(session, tenant_id)
    if not found:
        return Banner(0, None, None, utcnow())
    top = found[0]
    names = await number_names(session, tenant_id, [top])
    return Banner(len(found), top, names.get(top.instance_id or ""), utcnow())
