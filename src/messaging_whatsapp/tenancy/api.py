"""Authentication endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from messaging_whatsapp.api.deps import Context, DbSession
from messaging_whatsapp.tenancy import service
from messaging_whatsapp.tenancy.schemas import LoginRequest, TokenResponse

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login")
async def login(body: LoginRequest, session: DbSession, context: Context) -> TokenResponse:
    """Exchange email and password for a bearer token."""
    user = await service.authenticate(session, body.email, body.password)
    return TokenResponse(
        access_token=service.issue_token(user, context.settings),
        expires_in=context.settings.jwt_ttl_seconds,
        tenant_id=user.tenant_id,
        role=user.role,
    )
