"""Tenants, users, API keys and bearer tokens."""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.config import Settings
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound, Unauthorized
from messaging_whatsapp.tenancy.models import (
    DEFAULT_TICKET_INACTIVITY_MINUTES,
    MAX_TICKET_INACTIVITY_MINUTES,
    ApiKey,
    Tenant,
    User,
    UserRole,
)
from messaging_whatsapp.tenancy.schemas import TenantUpdate

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
API_KEY_PREFIX = "mwk_"
JWT_ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant every query is scoped to, and the role."""

    tenant_id: str
    role: str
    user_id: str | None = None
    api_key_id: str | None = None


async def create_tenant(
    session: AsyncSession,
    name: str,
    timezone: str = "America/Sao_Paulo",
    ticket_inactivity_minutes: int = DEFAULT_TICKET_INACTIVITY_MINUTES,
) -> Tenant:
    """Create a tenant; its tickets close after `ticket_inactivity_minutes` without a message
    (0: never)."""
    tenant = Tenant(
        name=_checked_name(name),
        timezone=_checked_timezone(timezone),
        ticket_inactivity_minutes=_checked_inactivity(ticket_inactivity_minutes),
    )
    session.add(tenant)
    await session.flush()
    return tenant


async def update_tenant(session: AsyncSession, tenant_id: str, changes: TenantUpdate) -> Tenant:
    """Change the tenant's name or settings; what `changes` leaves out stays."""
    tenant = await get_tenant(session, tenant_id)
    if changes.name is not None:
        tenant.name = _checked_name(changes.name)
    if changes.timezone is not None:
        tenant.timezone = _checked_timezone(changes.timezone)
    if changes.ticket_inactivity_minutes is not None:
        tenant.ticket_inactivity_minutes = _checked_inactivity(changes.ticket_inactivity_minutes)
    tenant.updated_at = utcnow()
    await session.flush()
    return tenant


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("tenant name must not be empty")
    return name


def _checked_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {timezone!r}: use an IANA name such as America/Sao_Paulo",
            code="invalid_timezone",
        ) from None
    return timezone


def _checked_inactivity(minutes: int) -> int:
    if not 0 <= minutes <= MAX_TICKET_INACTIVITY_MINUTES:
        raise InvalidInput(
            f"ticket inactivity must be 0 (never close) to {MAX_TICKET_INACTIVITY_MINUTES} minutes"
        )
    return minutes


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    """The tenant, or NotFound."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


async def create_user(session: AsyncSession, tenant_id: str, email: str, password: str, role: str) -> User:
    """Create a user with an argon2-hashed password."""
    await get_tenant(session, tenant_id)
    if role not in {r.value for r in UserRole}:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in UserRole)}")
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput("email is not valid")
    if len(password) < 8:
        raise InvalidInput("password must have at least 8 characters")
    user = User(tenant_id=tenant_id, email=email, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user with email {email} already exists") from exc
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """The active user with these credentials, or Unauthorized (same answer for either mistake)."""
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("wrong email or password") from None
    if user is None or not user.is_active:
        raise Unauthorized("wrong email or password")
    return user


def jwt_secret(settings: Settings) -> str:
    """JWT_SECRET, else a secret generated once into the data directory (embedded default)."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    return _secret_file(settings.data_dir)


@functools.cache
def _secret_file(data_dir: Path) -> str:
    """The secret in the data directory, created on first use; read once per process (every
    request needs it)."""
    path = Path(data_dir) / "jwt.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def issue_token(user: User, settings: Settings) -> str:
    """A signed bearer token for the user."""
    now = utcnow()
    claims = {
        "sub": user.id,
        "tenant_id": user.tenant_id,
        "role": user.role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.jwt_ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, jwt_secret(settings), algorithm=JWT_ALGORITHM)


def principal_from_token(token: str, settings: Settings) -> Principal:
    """Decode and check a bearer token (a token seen before is not verified again until it expires)."""
    secret = jwt_secret(settings)
    known = _verified_tokens.get((secret, token))
    if known is not None and known[1] > time.time():
        _verified_tokens.move_to_end((secret, token))
        return known[0]
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM])
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid or expired token") from exc
    tenant_id, role, user_id = claims.get("tenant_id"), claims.get("role"), claims.get("sub")
    if not (isinstance(tenant_id, str) and isinstance(role, str) and isinstance(user_id, str)):
        raise Unauthorized("invalid token")
    principal = Principal(tenant_id=tenant_id, role=role, user_id=user_id)
    expires = claims.get("exp")
    if isinstance(expires, int | float):  # a token that never expires is verified every time
        _verified_tokens[(secret, token)] = (principal, float(expires))
        if len(_verified_tokens) > VERIFIED_TOKENS_KEPT:
            _verified_tokens.popitem(last=False)
    return principal


# Verifying a token's signature costs more than the rest of a small request; clients send the
# same token again and again. (secret, token) -> (principal, expiry), least recently used first.
VERIFIED_TOKENS_KEPT = 4096
_verified_tokens: OrderedDict[tuple[str, str], tuple[Principal, float]] = OrderedDict()


def _hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def create_api_key(session: AsyncSession, tenant_id: str, name: str) -> tuple[ApiKey, str]:
    """Create an API key; the raw key is returned once and only its hash is stored."""
    await get_tenant(session, tenant_id)
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(tenant_id=tenant_id, name=name, prefix=raw[:12], key_hash=_hash_key(raw))
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


async def principal_from_api_key(session: AsyncSession, raw: str) -> Principal:
    """The principal of a live API key, or Unauthorized."""
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash_key(raw)))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("invalid API key")
    return Principal(tenant_id=key.tenant_id, role=key.role, api_key_id=key.id)
