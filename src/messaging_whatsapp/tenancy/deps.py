"""FastAPI dependencies for who is calling (a user's token or an API key) and what they may do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from messaging_whatsapp.deps import Context
from messaging_whatsapp.errors import Unauthorized
from messaging_whatsapp.tenancy.access import Principal, check_access
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.tenancy.service import API_KEY_PREFIX, principal_from_api_key
from messaging_whatsapp.tenancy.tokens import check_session, principal_from_token


async def get_principal(request: Request, context: Context) -> Principal:
    """The caller, from `Authorization: Bearer <JWT or API key>`; a user's token only while the user
    is still active with the token's role (tenancy/tokens.py)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token (POST /api/v1/auth/login gives one)")
    token = token.strip()
    if token.startswith(API_KEY_PREFIX):
        async with context.sessions() as session:
            return await principal_from_api_key(session, token)
    principal = principal_from_token(token, context.settings)
    await check_session(context.sessions, principal)
    return principal


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
NumberWriter = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "instances:write"))]
AdminPrincipal = Annotated[Principal, Depends(allowed(UserRole.ADMIN, "admin"))]
