"""Tenants and their API keys, and who is calling (users and their tokens: tenancy/users.py and
tenancy/tokens.py)."""

from __future__ import annotations

import hashlib
import secrets
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import InvalidInput, NotFound, Unauthorized
from messaging_whatsapp.phones import DEFAULT_COUNTRY, known_country, needs_country, typed_phone
from messaging_whatsapp.tenancy.access import Principal, checked_key_access
from messaging_whatsapp.tenancy.models import (
    DEFAULT_TICKET_INACTIVITY_MINUTES,
    MAX_RETENTION_DAYS,
    MAX_TICKET_INACTIVITY_MINUTES,
    MIN_RETENTION_DAYS,
    ApiKey,
    Tenant,
    UserRole,
)
from messaging_whatsapp.tenancy.schemas import TenantUpdate

API_KEY_PREFIX = "mwk_"


async def create_tenant(
    session: AsyncSession,
    name: str,
    timezone: str = "America/Sao_Paulo",
    ticket_inactivity_minutes: int = DEFAULT_TICKET_INACTIVITY_MINUTES,
    default_country: str = DEFAULT_COUNTRY,
) -> Tenant:
    """Create a tenant; its tickets close after `ticket_inactivity_minutes` without a message
    (0: never), and phones typed without a country code are numbers of `default_country`."""
    tenant = Tenant(
        name=_checked_name(name),
        timezone=checked_timezone(timezone),
        default_country=_checked_country(default_country),
        ticket_inactivity_minutes=_checked_inactivity(ticket_inactivity_minutes),
    )
    session.add(tenant)
    await session.flush()
    return tenant


async def update_tenant(session: AsyncSession, tenant_id: str, changes: TenantUpdate) -> Tenant:
    """Change the tenant's name or settings; what `changes` leaves out stays (a retention setting
    it names as None keeps that data forever)."""
    tenant = await get_tenant(session, tenant_id)
    if changes.name is not None:
        tenant.name = _checked_name(changes.name)
    if changes.timezone is not None:
        tenant.timezone = checked_timezone(changes.timezone)
    if changes.default_country is not None:
        tenant.default_country = _checked_country(changes.default_country)
    if changes.ticket_inactivity_minutes is not None:
        tenant.ticket_inactivity_minutes = _checked_inactivity(changes.ticket_inactivity_minutes)
    for setting, days in changes.retention_changes().items():
        setattr(tenant, setting, _checked_retention(setting, days))
    tenant.updated_at = utcnow()
    await session.flush()
    return tenant


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("tenant name must not be empty")
    return name


def checked_timezone(timezone: str) -> str:
    """The time zone, if it is an IANA name; 422 invalid_timezone otherwise."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {timezone!r}: use an IANA name such as America/Sao_Paulo",
            code="invalid_timezone",
        ) from None
    return timezone


def _checked_country(country: str) -> str:
    code = known_country(country)
    if code is None:
        raise InvalidInput(
            f"unknown country {country!r}: use an ISO 3166 alpha-2 code such as BR or US",
            code="invalid_country",
            details={"country": country[:64]},
        )
    return code


async def tenant_country(session: AsyncSession, tenant_id: str) -> str:
    """The country the tenant's typed phones are read in (phones.typed_phone), or NotFound."""
    country = await session.scalar(select(Tenant.default_country).where(Tenant.id == tenant_id))
    if country is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return country


async def tenant_phone(session: AsyncSession, tenant_id: str, text: str) -> str:
    """A phone a person of the tenant typed, as E.164 (phones.typed_phone with the tenant's
    country, read only when the text is national); InvalidPhone (422 invalid_phone) otherwise."""
    country = await tenant_country(session, tenant_id) if needs_country(text) else DEFAULT_COUNTRY
    return typed_phone(text, country)


def _checked_inactivity(minutes: int) -> int:
    if not 0 <= minutes <= MAX_TICKET_INACTIVITY_MINUTES:
        raise InvalidInput(
            f"ticket inactivity must be 0 (never close) to {MAX_TICKET_INACTIVITY_MINUTES} minutes"
        )
    return minutes


def _checked_retention(setting: str, days: int | None) -> int | None:
    if days is not None and not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise InvalidInput(
            f"{setting} must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days, or null to keep forever",
            code="invalid_retention",
        )
    return days


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    """The tenant, or NotFound."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


def _hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def create_api_key(
    session: AsyncSession,
    tenant_id: str,
    name: str,
    *,
    role: str = UserRole.ADMIN.value,
    scopes: list[str] | None = None,
    creator_role: str = UserRole.ADMIN.value,
) -> tuple[ApiKey, str]:
    """Create an API key with a role no higher than its creator's, limited to `scopes` if given; the
    raw key is returned once and only its hash is stored."""
    await get_tenant(session, tenant_id)
    key_role, key_scopes = checked_key_access(role, scopes, creator_role)
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=raw[:12],
        key_hash=_hash_key(raw),
        role=key_role.value,
        scopes=key_scopes,
    )
    session.add(key)
    await session.flush()
    return key, raw


async def list_api_keys(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    """The tenant's API keys, newest first, revoked ones included."""
    await get_tenant(session, tenant_id)
    query = (
        select(ApiKey)
        .where(ApiKey.tenant_id == tenant_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return list((await session.scalars(query)).all())


async def revoke_api_key(session: AsyncSession, tenant_id: str, key_id: str) -> ApiKey:
    """Revoke one of the tenant's API keys; its next request is refused (keys are checked on every
    request, never cached). Another tenant's key is not found; revoking again keeps the first time."""
    key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def api_key_live(session: AsyncSession, key_id: str) -> bool:
    """Whether the API key still exists unrevoked (an open event stream asks now and then)."""
    revoked = await session.execute(select(ApiKey.revoked_at).where(ApiKey.id == key_id))
    row = revoked.first()
    return row is not None and row.revoked_at is None


async def principal_from_api_key(session: AsyncSession, raw: str) -> Principal:
    """The principal of a live API key, or Unauthorized."""
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash_key(raw)))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("invalid API key")
    scopes = frozenset(key.scopes.split()) if key.scopes is not None else None
    return Principal(tenant_id=key.tenant_id, role=key.role, api_key_id=key.id, scopes=scopes)
