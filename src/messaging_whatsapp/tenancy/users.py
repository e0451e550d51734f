"""A tenant's users: creating them, logging them in, and changing who they are.

Any change that should end a user's sessions (deactivation, a new role, a new password, deletion)
raises their token_version in the same transaction; every request checks it (tenancy/tokens.py),
so their tokens stop working at once, in every process.
"""

from __future__ import annotations

import math

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import take_sqlite_writer, utcnow
from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized
from messaging_whatsapp.tenancy.models import User, UserRole
from messaging_whatsapp.tenancy.passwords import (
    UNKNOWN_USER_HASH,
    check_password,
    hash_password,
    verify_password,
)
from messaging_whatsapp.tenancy.service import get_tenant
from messaging_whatsapp.tenancy.throttle import Counted, LoginThrottle
from messaging_whatsapp.tenancy.tokens import forget_user

# Failed logins from one address before they slow down: an office behind one NAT mistypes too.
IP_FREE_FAILURES = 20
# ... and for one account.
ACCOUNT_FREE_FAILURES = 5


async def create_user(
    session: AsyncSession,
    tenant_id: str,
    email: str,
    password: str,
    role: str,
    *,
    platform_admin: bool = False,
) -> User:
    """Create a user with an argon2-hashed password that is not common, guessable or their email;
    `platform_admin` (the command line only) also opens the operator's view, across tenants."""
    tenant = await get_tenant(session, tenant_id)
    role = _checked_role(role)
    email = _checked_email(email)
    check_password(password, email=email, business=tenant.name)
    user = User(
        tenant_id=tenant_id,
        email=email,
        password_hash=await hash_password(password),
        role=role,
        is_platform_admin=platform_admin,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user with email {email} already exists") from exc
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """The active user with these credentials, or Unauthorized (same answer for either mistake)."""
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    matches = await verify_password(user.password_hash if user else UNKNOWN_USER_HASH, password)
    if not matches or user is None or not user.is_active:
        raise Unauthorized("wrong email or password")
    return user


async def log_in(
    session: AsyncSession, throttle: LoginThrottle, email: str, password: str, client: str
) -> User:
    """`authenticate`, refused with 429 for a while after too many failures from the client's
    address or for the account (tenancy/throttle.py)."""
    account = Counted(f"account:{email.strip().lower()}", ACCOUNT_FREE_FAILURES)
    counted = [Counted(f"ip:{client}", IP_FREE_FAILURES), account]
    wait = await throttle.wait(counted)
    if wait > 0:
        raise RateLimited(f"too many failed logins; try again in {math.ceil(wait)} s", retry_after=wait)
    try:
        user = await authenticate(session, email, password)
    except Unauthorized:
        await throttle.failed(counted)
        raise
    await throttle.succeeded(account)
    return user


async def list_users(session: AsyncSession, tenant_id: str) -> list[User]:
    """The tenant's users, oldest first, inactive ones included."""
    query = select(User).where(User.tenant_id == tenant_id).order_by(User.created_at, User.id)
    return list((await session.scalars(query)).all())


async def get_user(session: AsyncSession, tenant_id: str, user_id: str) -> User:
    """One of the tenant's users; another tenant's is not found."""
    user = await session.scalar(select(User).where(User.id == user_id, User.tenant_id == tenant_id))
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def update_user(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    role: str | None = None,
    password: str | None = None,
    is_active: bool | None = None,
) -> User:
    """Change a user's role, password or whether they may log in; any of these ends their sessions.
    The tenant's last active admin can be neither demoted nor deactivated (409 last_admin)."""
    user = await get_user(session, tenant_id, user_id)
    role = _checked_role(role) if role is not None else None
    if (role is not None and role != UserRole.ADMIN.value) or is_active is False:
        await _keep_an_admin(session, user)
    if role is not None:
        user.role = role
    if password is not None:
        tenant = await get_tenant(session, tenant_id)
        check_password(password, email=user.email, business=tenant.name)
        user.password_hash = await hash_password(password)
    if is_active is not None:
        user.is_active = is_active
    if role is not None or password is not None or is_active is not None:
        _end_sessions(user)
    await session.flush()
    return user


async def deactivate_user(session: AsyncSession, tenant_id: str, user_id: str) -> User:
    """The user can no longer log in, and their tokens stop working at once."""
    return await update_user(session, tenant_id, user_id, is_active=False)


async def delete_user(session: AsyncSession, tenant_id: str, user_id: str) -> None:
    """Delete the user (their tickets become unassigned; their tokens stop working at once); the
    tenant's last active admin cannot be deleted (409 last_admin)."""
    user = await get_user(session, tenant_id, user_id)
    await _keep_an_admin(session, user)
    _end_sessions(user)
    await session.execute(delete(User).where(User.id == user.id))


async def _keep_an_admin(session: AsyncSession, user: User) -> None:
    """Conflict unless the tenant keeps another active admin when this user stops being one: a
    tenant nobody could manage from the web or the API."""
    if user.role != UserRole.ADMIN.value or not user.is_active:
        return
    # Two admins demoting each other at once cannot both pass: the tenant's active admins are
    # locked in one order (PostgreSQL; SQLite: this transaction becomes the one writer first), so
    # the second waits for the first and then counts what it left.
    await take_sqlite_writer(session)
    admins = (
        select(User.id)
        .where(User.tenant_id == user.tenant_id, User.role == UserRole.ADMIN.value, User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    )
    if not set(await session.scalars(admins)) - {user.id}:
        raise Conflict(
            f"{user.email} is the last active admin: make another user admin first",
            code="last_admin",
        )


def _end_sessions(user: User) -> None:
    user.token_version += 1
    user.updated_at = utcnow()
    forget_user(user.id)


def _checked_role(role: str) -> str:
    if role not in {r.value for r in UserRole}:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in UserRole)}")
    return role


def _checked_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or any(char.isspace() for char in email):
        raise InvalidInput("email is not valid")
    return email
