"""FastAPI dependencies: the engine context, a database session, and the calling principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.errors import Forbidden, Unauthorized
from messaging_whatsapp.tenancy.service import (
    API_KEY_PREFIX,
    Principal,
    principal_from_api_key,
    principal_from_token,
)


async def get_context(request: Request) -> EngineContext:
    """The process's engine context (set up by the app's lifespan); async, so FastAPI does not hand
    it to a worker thread."""
    context: EngineContext = request.app.state.context
    return context


Context = Annotated[EngineContext, Depends(get_context)]


async def get_session(context: Context) -> AsyncIterator[AsyncSession]:
    """A session committed when the handler returns normally, rolled back otherwise."""
    async with context.sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# Closed when the handler returns, before the answer is sent ("function" scope; FastAPI's default
# closes it after): a client told 201 must find what it created, and a commit that fails must
# not follow a success answer.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_principal(request: Request, context: Context) -> Principal:
    """The caller, from `Authorization: Bearer <JWT or API key>` (only an API key needs the database)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token (POST /api/v1/auth/login gives one)")
    token = token.strip()
    if token.startswith(API_KEY_PREFIX):
        async with context.sessions() as session:
            return await principal_from_api_key(session, token)
    return principal_from_token(token, context.settings)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: CurrentPrincipal) -> Principal:
    """The caller, who must be an admin of the tenant."""
    if principal.role != "admin":
        raise Forbidden("this needs the admin role")
    return principal


AdminPrincipal = Annotated[Principal, Depends(get_admin)]
