"""FastAPI dependencies every router shares: the engine context and a database session.

Who is calling is the tenancy's to say (tenancy/deps.py); these two only need the context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.context import EngineContext


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
