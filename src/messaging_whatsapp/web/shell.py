"""The app shell every page but the inbox shares: who is looking, in which language, the navigation.

A page handler asks `open_shell` for the logged-in user with the least role the page needs (the
same role its API routes need, so a page never shows what the API would refuse): no session goes to
/login, too small a role gets the 403 page. `shell.render` then renders the page's template, which
extends `app_page.html`, with what the shell needs (the user, the live stream's replay point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.models import ROLE_RANK, User, UserRole
from messaging_whatsapp.tenancy.users import get_user
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.alert_banner import Banner, load_banner, sees_alerts
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.session import LOGIN_PATH, page_principal

# Strings live.js shows on every page (the page hands them over in its language).
SCRIPT_TEXTS = ("Live", "Offline: reconnecting...", "Something went wrong. Try again.")


@dataclass(frozen=True)
class Shell:
    """A page's viewer: principal, user row, texts in their language, the stream's replay point."""

    request: Request
    principal: Principal
    me: User
    t: Texts
    last_event_id: str | None
    # The open alerts for the banner (supervisors and admins; None for agents).
    banner: Banner | None = None

    def render(
        self, template: str, *, status_code: int = 200, script_texts: tuple[str, ...] = (), **values: Any
    ) -> Response:
        """The page `template` (extending app_page.html) with the shell's values and `values`."""
        texts = {text: self.t(text) for text in (*SCRIPT_TEXTS, *script_texts)}
        return page(
            self.request,
            template,
            self.t,
            status_code=status_code,
            me=self.me,
            script_texts=texts,
            last_event_id=self.last_event_id,
            banner=self.banner,
            **values,
        )


def reaches(user: User, role: UserRole) -> bool:
    """Whether the user's role is `role` or above it."""
    return ROLE_RANK[UserRole(user.role)] >= ROLE_RANK[role]


async def open_shell(
    request: Request,
    context: EngineContext,
    role: UserRole = UserRole.AGENT,
    allow: Callable[[User], bool] | None = None,
) -> Shell | Response:
    """The page's Shell, or the response to send instead: /login without a session, the 403 page
    when the user's role is below `role` or `allow(user)` says no."""
    principal = await page_principal(request, context)
    if principal is None or principal.user_id is None:
        return RedirectResponse(LOGIN_PATH, status_code=303)
    async with context.sessions() as session:
        me = await get_user(session, principal.tenant_id, principal.user_id)
        timezone = await queries.tenant_timezone(session, principal.tenant_id)
    t = Texts(choose_language(request), timezone)
    # Read before the page's data: events after it are replayed on connect, so none falls between.
    last_event_id = await context.realtime.latest(principal.tenant_id)
    banner = None
    if sees_alerts(me.role):
        async with context.sessions() as session:
            banner = await load_banner(session, principal.tenant_id)
    shell = Shell(request, principal, me, t, last_event_id, banner)
    if not reaches(me, role) or (allow is not None and not allow(me)):
        return shell.render("forbidden.html", status_code=403)
    return shell
