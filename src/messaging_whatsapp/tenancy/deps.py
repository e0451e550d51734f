"""FastAPI dependencies for who is calling: a user's token or an API key, and their role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from messaging_whatsapp.deps import Context
from messaging_whatsapp.errors import Forbidden, Unauthorized
from messaging_whatsapp.tenancy.service import API_KEY_PREFIX, Principal, principal_from_api_key
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


async def get_admin(principal: CurrentPrincipal) -> Principal:
    """The caller, who must be an admin of the tenant."""
    if principal.role != "admin":
        raise Forbidden("this needs the admin role")
    return principal


AdminPrincipal = Annotated[Principal, Depends(get_admin)]
