"""The admin page: the tenant's users, API keys and settings (admins only).

Every change goes through the API (tenancy/api.py) from the page's script, with the session's CSRF
token; the page, and the tables it reloads after a change, are rendered here from the same
services the API reads, so what it shows is what the API says. Anyone below admin gets the 403
page, as the API answers them 403.
"""

from __future__ import annotations

from zoneinfo import available_timezones

import phonenumbers
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.tenancy import service, users
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import AdminPrincipal
from messaging_whatsapp.tenancy.models import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, UserRole
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import Shell, open_shell

router = APIRouter(include_in_schema=False)

ADMIN_PATH = "/admin"
ROLES = tuple(role.value for role in UserRole)
# Scopes as the page describes them (tenancy/access.py has the API's wording).
SCOPE_LABELS = {
    "messages:send": "Send messages",
    "conversations:read": "Read contacts, conversations and tickets",
    "conversations:write": "Mark read, close and assign tickets",
    "campaigns:read": "Read campaigns and their results",
    "campaigns:write": "Create and run campaigns",
    "instances:read": "Read the numbers and their health",
    "instances:write": "Pause and resume numbers",
    "analytics:read": "Read the delivery and volume figures",
    "templates:read": "Read the message templates",
    "templates:write": "Create and sync message templates",
    "automation:read": "Read intents, auto-replies and business hours",
    "automation:write": "Change intents, auto-replies and business hours",
    "events:write": "Publish events from other systems",
    "integrations:read": "Read event mappings and webhooks",
    "integrations:write": "Change event mappings and webhooks",
    "knowledge:read": "Search the knowledge base",
    "knowledge:write": "Change the knowledge base",
    "admin": "Manage users, API keys and settings",
}

# Strings admin.js shows: its own, and the API's refusals it puts in the page's language.
SCRIPT_TEXTS = (
    "User created.",
    "Role changed.",
    "User deactivated.",
    "User reactivated.",
    "API key revoked.",
    "Settings saved.",
    "Copied.",
    "Copy failed: select the key and copy it.",
    "Change the role of {email} to {role}? They will have to log in again.",
    "Deactivate {email}? They are logged out at once and can no longer log in.",
    "Reactivate {email}? They can log in again.",
    "Change your own role to {role}? You will have to log in again.",
    "Deactivate your own account? You are logged out at once and can no longer log in.",
    "Revoke the API key {name}? Every system using it is refused at once.",
    "Change role",
    "Deactivate",
    "Reactivate",
    "Revoke",
    "admin",
    "supervisor",
    "agent",
    "A user with this email already exists.",
    "This is the tenant's last active admin: make another user admin first.",
    "This password is too easy to guess: use a longer phrase of unrelated words.",
    "password must have at least 8 characters",
    "password must have at most 256 characters",
    "password must not be only spaces",
    "password must not contain your email",
    "password must not be built from your name, email or business's name and numbers",
    "email is not valid",
    "Unknown time zone: pick one from the list, such as America/Sao_Paulo.",
    "Unknown country: pick one from the list.",
    "Keep data 1 to 3650 days, or leave it empty to keep it forever.",
    "Use 0 (never close) to 527040 minutes.",
    "Give the business a name.",
    "Give the key a name.",
)


@router.get(ADMIN_PATH)
async def admin_page(request: Request, context: Context) -> Response:
    """The admin page: users, API keys and settings tabs (403 page below admin)."""
    shell = await open_shell(request, context, role=UserRole.ADMIN)
    if not isinstance(shell, Shell):
        return shell
    tenant_id = shell.principal.tenant_id
    async with context.sessions() as session:
        tenant = await service.get_tenant(session, tenant_id)
        listed_users = await users.list_users(session, tenant_id)
        keys = await service.list_api_keys(session, tenant_id)
    return shell.render(
        "admin/page.html",
        script_texts=SCRIPT_TEXTS,
        tenant=tenant,
        users=listed_users,
        keys=keys,
        me_id=shell.principal.user_id,
        roles=ROLES,
        scopes=SCOPE_LABELS,
        timezones=sorted(available_timezones()),
        countries=_countries(),
        min_retention=MIN_RETENTION_DAYS,
        max_retention=MAX_RETENTION_DAYS,
    )


@router.get(ADMIN_PATH + "/fragments/users")
async def users_fragment(request: Request, session: DbSession, principal: AdminPrincipal) -> Response:
    """The users table's rows as they are now (the page reloads them after a change)."""
    t = await _texts(request, session, principal)
    listed = await users.list_users(session, principal.tenant_id)
    return page(request, "admin/user_rows.html", t, users=listed, roles=ROLES, me_id=principal.user_id)


@router.get(ADMIN_PATH + "/fragments/api-keys")
async def api_keys_fragment(request: Request, session: DbSession, principal: AdminPrincipal) -> Response:
    """The API keys table's rows as they are now."""
    t = await _texts(request, session, principal)
    keys = await service.list_api_keys(session, principal.tenant_id)
    return page(request, "admin/key_rows.html", t, keys=keys, scopes=SCOPE_LABELS)


async def _texts(request: Request, session: AsyncSession, principal: Principal) -> Texts:
    return Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))


def _countries() -> list[tuple[str, int]]:
    """Every country phones can be read in, with its calling code, by code."""
    return [
        (code, phonenumbers.country_code_for_region(code)) for code in sorted(phonenumbers.SUPPORTED_REGIONS)
    ]
