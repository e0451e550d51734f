"""Authentication, the tenant's own settings, and its API keys (admins only)."""

from __future__ import annotations

from fastapi import APIRouter

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.pagination import Page
from messaging_whatsapp.tenancy import service
from messaging_whatsapp.tenancy.deps import AdminPrincipal, CurrentPrincipal
from messaging_whatsapp.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyItem,
    CreatedApiKey,
    LoginRequest,
    TenantItem,
    TenantUpdate,
    TokenResponse,
)

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
api_keys_router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])
tenant_router = APIRouter(prefix="/api/v1/tenant", tags=["tenant"])


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


@api_keys_router.get("")
async def list_api_keys(session: DbSession, principal: AdminPrincipal) -> Page[ApiKeyItem]:
    """The tenant's API keys, newest first, revoked ones included (a tenant has few)."""
    keys = await service.list_api_keys(session, principal.tenant_id)
    return Page(items=[ApiKeyItem.model_validate(key) for key in keys])


@api_keys_router.post("", status_code=201)
async def create_api_key(body: ApiKeyCreate, session: DbSession, principal: AdminPrincipal) -> CreatedApiKey:
    """Create an API key for machine access; the answer is the only time the key is shown."""
    key, raw = await service.create_api_key(session, principal.tenant_id, body.name)
    return CreatedApiKey(**ApiKeyItem.model_validate(key).model_dump(), api_key=raw)


@api_keys_router.post("/{key_id}/revoke")
async def revoke_api_key(key_id: str, session: DbSession, principal: AdminPrincipal) -> ApiKeyItem:
    """Revoke an API key: it is refused from its next request."""
    return ApiKeyItem.model_validate(await service.revoke_api_key(session, principal.tenant_id, key_id))


@tenant_router.get("")
async def get_tenant(session: DbSession, principal: CurrentPrincipal) -> TenantItem:
    """The caller's tenant and its settings."""
    return TenantItem.model_validate(await service.get_tenant(session, principal.tenant_id))


@tenant_router.patch("")
async def update_tenant(body: TenantUpdate, session: DbSession, principal: AdminPrincipal) -> TenantItem:
    """Change the tenant's name, time zone or ticket inactivity (admins)."""
    return TenantItem.model_validate(await service.update_tenant(session, principal.tenant_id, body))
