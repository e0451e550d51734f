"""The operator's page (/ops): the streams, the outbox backlog, the DLQ with replay, the workers.

Platform admins only: anyone else gets the shell's 403 page (the API answers them 403 too). The
live event stream is per tenant and carries nothing of this view, so each part of the page asks
for its fragment again every 5 seconds (htmx `every 5s`): the one page that refreshes itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context
from messaging_whatsapp.ops import service
from messaging_whatsapp.tenancy.models import User
from messaging_whatsapp.web.i18n import Texts
from messaging_whatsapp.web.shell import Shell, open_shell

router = APIRouter(include_in_schema=False)

# Strings the page's script shows (the page hands them over in its language).
SCRIPT_TEXTS = (
    "Replay every entry of the DLQ? Each goes back to the stream it came from.",
    "One entry replayed.",
    "{count} entries replayed.",
    "Nothing was replayed: the entry already left the DLQ.",
)
# DLQ entries the page lists (oldest first, as a replay goes); the API pages through the rest.
DLQ_SHOWN = 100
# What each stream holds, by its name without the prefix.
STREAM_ROLES = {
    "bc:whatsapp:inbound": "Webhooks waiting for the workers",
    "bc:whatsapp:outbound": "Messages waiting for the senders",
    "bc:whatsapp:events": "Events for other systems",
    "events:materials": "Events from other systems",
    "bc:whatsapp:dlq": "Entries that ran out of attempts",
}
FRAGMENTS = {"streams": "ops/streams.html", "dlq": "ops/dlq.html", "workers": "ops/workers.html"}


def _is_platform_admin(user: User) -> bool:
    return user.is_platform_admin


def age_label(t: Texts) -> Callable[[float | None], str]:
    """How long, as people read it: 42 s, 5 min, 3 h, 2 d ("—" for nothing waiting)."""

    def label(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
            if seconds >= size:
                return t("{n} " + unit, n=int(seconds // size))
        return t("{n} s", n=int(seconds))

    return label


async def _view(context: EngineContext, part: str) -> dict[str, Any]:
    """The values one part of the page shows."""
    if part == "streams":
        return {"report": await service.stream_report(context), "prefix": context.names.prefix}
    if part == "dlq":
        return {"dlq": await service.dead_letters(context, None, DLQ_SHOWN)}
    async with context.sessions() as session:
        return {
            "workers": await service.worker_report(session, utcnow(), context.settings.worker_alive_seconds)
        }


def _values(shell: Shell) -> dict[str, Any]:
    return {"age": age_label(shell.t), "stream_roles": STREAM_ROLES}


@router.get("/ops")
async def ops_page(request: Request, context: Context) -> Response:
    """The operator's view: every part, rendered at once."""
    shell = await open_shell(request, context, allow=_is_platform_admin)
    if not isinstance(shell, Shell):
        return shell
    values = _values(shell)
    for part in FRAGMENTS:
        values |= await _view(context, part)
    return shell.render("ops/page.html", script_texts=SCRIPT_TEXTS, **values)


@router.get("/ops/fragments/{part}")
async def ops_fragment(part: str, request: Request, context: Context) -> Response:
    """One part of the page again (its refresh every few seconds, or after a replay)."""
    if part not in FRAGMENTS:
        return Response(status_code=404)
    shell = await open_shell(request, context, allow=_is_platform_admin)
    if not isinstance(shell, Shell):
        # A session that ended answers 401 (live.js then goes to the login page) rather than the
        # redirect, which htmx would follow and swap the login page into the part.
        return Response(status_code=401) if shell.status_code == 303 else shell
    return shell.render(FRAGMENTS[part], **_values(shell), **await _view(context, part))
