"""Authentication, the tenant's own settings, its users and its API keys (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.pagination import Page
from messaging_whatsapp.tenancy import service, users
from messaging_whatsapp.tenancy.deps import AdminPrincipal, CurrentPrincipal
from messaging_whatsapp.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyItem,
    CreatedApiKey,
    LoginRequest,
    TenantItem,
    TenantUpdate,
    TokenResponse,
    UserCreate,
    UserItem,
    UserUpdate,
)
from messaging_whatsapp.tenancy.tokens import issue_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
api_keys_router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])
tenant_router = APIRouter(prefix="/api/v1/tenant", tags=["tenant"])
users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.post("/login")
async def login(body: LoginRequest, request: Request, session: DbSession, context: Context) -> TokenResponse:
    """Exchange email and password for a bearer token (429 for a while after repeated failures)."""
    client = request.client.host if request.client else "unknown"
    user = await users.log_in(session, request.app.state.login_throttle, body.email, body.password, client)
    return TokenResponse(
        access_token=issue_token(user, context.settings),
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
    """Create an API key for machine access, with a role no higher than the caller's and optional
    scopes; the answer is the only time the key is shown."""
    key, raw = await service.create_api_key(
        session,
        principal.tenant_id,
        body.name,
        role=body.role.value,
        scopes=body.scopes,
        creator_role=principal.role,
    )
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
    """Change the tenant's name, time zone, default country (of phones typed without a country code),
    ticket inactivity or data retention (admins); a retention setting sent as null keeps that data
    forever. An unknown country is refused with 422 invalid_country."""
    return TenantItem.model_validate(await service.update_tenant(session, principal.tenant_id, body))


@users_router.get("")
async def list_users(session: DbSession, principal: AdminPrincipal) -> Page[UserItem]:
    """The tenant's users, oldest first, inactive ones included (a tenant has few)."""
    return Page(
        items=[UserItem.model_validate(user) for user in await users.list_users(session, principal.tenant_id)]
    )


@users_router.post("", status_code=201)
async def create_user(body: UserCreate, session: DbSession, principal: AdminPrincipal) -> UserItem:
    """Create a user; a common, guessable or email-based password is refused (422 weak_password)."""
    user = await users.create_user(session, principal.tenant_id, body.email, body.password, body.role.value)
    return UserItem.model_validate(user)


@users_router.get("/{user_id}")
async def get_user(user_id: str, session: DbSession, principal: AdminPrincipal) -> UserItem:
    """One of the tenant's users."""
    return UserItem.model_validate(await users.get_user(session, principal.tenant_id, user_id))


@users_router.patch("/{user_id}")
async def update_user(
    user_id: str, body: UserUpdate, session: DbSession, principal: AdminPrincipal
) -> UserItem:
    """Change a user's role, password or whether they may log in: their sessions end at once. The
    tenant's last active admin can be neither demoted nor deactivated (409 last_admin)."""
    user = await users.update_user(
        session,
        principal.tenant_id,
        user_id,
        role=body.role.value if body.role else None,
        password=body.password,
        is_active=body.is_active,
    )
    return UserItem.model_validate(user)


@users_router.post("/{user_id}/deactivate")
async def deactivate_user(user_id: str, session: DbSession, principal: AdminPrincipal) -> UserItem:
    """The user can no longer log in, and their tokens stop working at once (409 last_admin for the
    tenant's last active admin)."""
    return UserItem.model_validate(await users.deactivate_user(session, principal.tenant_id, user_id))


@users_router.delete("/{user_id}", status_code=204)
async def delete_user(user_id: str, session: DbSession, principal: AdminPrincipal) -> None:
    """Delete the user; their tickets become unassigned and their tokens stop working at once (409
    last_admin for the tenant's last active admin)."""
    await users.delete_user(session, principal.tenant_id, user_id)
