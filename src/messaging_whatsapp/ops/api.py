"""The operator's API: streams, the DLQ and its replay, the engine's processes. Platform admins
only, checked in the database on every request; everyone else, API keys included, gets 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import Forbidden
from messaging_whatsapp.ops import service
from messaging_whatsapp.ops.schemas import (
    DeadLetterPage,
    ReplayRequest,
    ReplayResult,
    StreamsReport,
    WorkersReport,
)
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import CurrentPrincipal

router = APIRouter(prefix="/api/v1/ops", tags=["operations"])


async def platform_admin(principal: CurrentPrincipal, context: Context) -> Principal:
    """The caller, who must be a user flagged platform admin now (an API key never is one)."""
    if principal.user_id is None:
        raise Forbidden("this needs a platform admin; an API key is never one")
    async with context.sessions() as session:
        if not await service.is_platform_admin(session, principal.user_id):
            raise Forbidden("this needs a platform admin")
    return principal


PlatformAdmin = Annotated[Principal, Depends(platform_admin)]


@router.get("/streams")
async def streams(_caller: PlatformAdmin, context: Context) -> StreamsReport:
    """Every stream's length, pending entries and oldest unacknowledged age, and the outbox backlog."""
    return await service.stream_report(context)


@router.get("/dlq")
async def dead_letters(
    _caller: PlatformAdmin,
    context: Context,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> DeadLetterPage:
    """The DLQ, oldest first: each entry's reason, provider, tenant, stream, time and attempts."""
    return await service.dead_letters(context, cursor, limit)


@router.post("/dlq/replay")
async def replay(
    _caller: PlatformAdmin, context: Context, body: Annotated[ReplayRequest | None, Body()] = None
) -> ReplayResult:
    """Put DLQ entries back on their streams, as `replay-dlq` does: all of them (no body, or `{}`),
    or `{"ids": [...]}`; answers how many went and which ids the DLQ does not hold."""
    return await service.replay(context, body.ids if body is not None else None)


@router.get("/workers")
async def workers(_caller: PlatformAdmin, context: Context, session: DbSession) -> WorkersReport:
    """The engine's processes heard from in the last hour: role, host, pid, last heartbeat, alive."""
    return await service.worker_report(session, utcnow(), context.settings.worker_alive_seconds)
