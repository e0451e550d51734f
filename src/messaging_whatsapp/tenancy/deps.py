"""FastAPI dependencies for who is calling (a user's token or an API key) and what they may do.

A browser sends the same token in the session cookie the web UI's login sets. A request that
changes something and is authenticated by that cookie alone must also carry the CSRF token
(double submit: the readable `csrf` cookie repeated in `X-CSRF-Token` or a `csrf_token` form
field); a bearer token or API key needs none, since a foreign page cannot make a browser send one.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.deps import Context
from messaging_whatsapp.errors import Forbidden, Unauthorized
from messaging_whatsapp.tenancy.access import Principal, check_access
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.tenancy.service import API_KEY_PREFIX, api_key_live, principal_from_api_key
from messaging_whatsapp.tenancy.tokens import check_session, principal_from_token

SESSION_COOKIE = "mw_session"
CSRF_COOKIE = "csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def form_field(body: bytes, name: str) -> str:
    """One field of an urlencoded form body ("" when absent or unreadable)."""
    try:
        values = parse_qs(body.decode(), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return ""
    return values.get(name, [""])[0]


async def check_csrf(request: Request) -> None:
    """Forbidden unless the request repeats the `csrf` cookie in its header or form field."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    supplied = request.headers.get(CSRF_HEADER, "")
    content_type = request.headers.get("content-type", "")
    if not supplied and content_type.startswith("application/x-www-form-urlencoded"):
        supplied = form_field(await request.body(), CSRF_FIELD)
    if not expected or not hmac.compare_digest(expected.encode(), supplied.encode()):
        raise Forbidden("missing or wrong CSRF token (repeat the csrf cookie in X-CSRF-Token)", code="csrf")


async def get_principal(request: Request, context: Context) -> Principal:
    """The caller, from `Authorization: Bearer <JWT or API key>`, else the web UI's session cookie
    (then a state-changing request must pass the CSRF check); a user's token only while the user
    is still active with the token's role (tenancy/tokens.py)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        cookie = request.cookies.get(SESSION_COOKIE, "").strip()
        if not cookie:
            raise Unauthorized("missing bearer token (POST /api/v1/auth/login gives one)")
        principal = principal_from_token(cookie, context.settings)
        await check_session(context.sessions, principal)
        if request.method not in SAFE_METHODS:
            await check_csrf(request)
        return principal
    token = token.strip()
    if token.startswith(API_KEY_PREFIX):
        async with context.sessions() as session:
            return await principal_from_api_key(session, token)
    principal = principal_from_token(token, context.settings)
    await check_session(context.sessions, principal)
    return principal


async def credentials_hold(sessions: async_sessionmaker[AsyncSession], principal: Principal) -> bool:
    """Whether the caller's credentials still hold, as a new request would find: the user still
    active with the token's role and version, or the API key not revoked (a long-lived response,
    such as the event stream, asks again now and then)."""
    if principal.api_key_id is not None:
        async with sessions() as session:
            return await api_key_live(session, principal.api_key_id)
    try:
        await check_session(sessions, principal)
    except Unauthorized:
        return False
    return True


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def allowed(role: UserRole, scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, whose role must reach `role` (and an API key's scopes hold `scope`)."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        check_access(principal, role, scope)
        return principal

    return dependency


# One alias per kind of work; tenancy/access.py says what each role and scope covers.
MessageSender = Annotated[Principal, Depends(allowed(UserRole.AGENT, "messages:send"))]
InboxReader = Annotated[Principal, Depends(allowed(UserRole.AGENT, "conversations:read"))]
InboxWriter = Annotated[Principal, Depends(allowed(UserRole.AGENT, "conversations:write"))]
CampaignReader = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "campaigns:read"))]
CampaignWriter = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "campaigns:write"))]
NumberReader = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "instances:read"))]
AnalyticsReader = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "analytics:read"))]
NumberWriter = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "instances:write"))]
TemplateReader = Annotated[Principal, Depends(allowed(UserRole.AGENT, "templates:read"))]
TemplateWriter = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "templates:write"))]
AutomationReader = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "automation:read"))]
AutomationWriter = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "automation:write"))]
EventPublisher = Annotated[Principal, Depends(allowed(UserRole.SUPERVISOR, "events:write"))]
IntegrationReader = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "integrations:read"))]
IntegrationWriter = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "integrations:write"))]
KnowledgeReader = Annotated[Principal, Depends(allowed(UserRole.AGENT, "knowledge:read"))]
KnowledgeWriter = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "knowledge:write"))]
AdminPrincipal = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "admin"))]
