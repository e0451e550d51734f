"""Bearer tokens: issuing them at login, and checking them on every request.

A token is a signed JWT (HS256) with an expiry, the user, their tenant, role and token_version.
Its signature is checked once and remembered until it expires; whether its user may still use it
(active, the same role, the same token_version) is read on every request from a cache that holds
a user's state for USER_STATE_SECONDS, so a user deactivated, demoted, deleted or given a new
password in another process is shut out within a second, and in this process at once.
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.config import Settings
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import Unauthorized
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.models import User

JWT_ALGORITHM = "HS256"
USER_STATE_SECONDS = 1.0


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
        "ver": user.token_version,
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
        # A token without an expiry would be valid forever: refused.
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid or expired token") from exc
    tenant_id, role, user_id = claims.get("tenant_id"), claims.get("role"), claims.get("sub")
    version, expires = claims.get("ver", 0), claims["exp"]
    if not (isinstance(tenant_id, str) and isinstance(role, str) and isinstance(user_id, str)):
        raise Unauthorized("invalid token")
    if not isinstance(version, int) or not isinstance(expires, int | float):
        raise Unauthorized("invalid token")
    principal = Principal(tenant_id=tenant_id, role=role, user_id=user_id, token_version=version)
    _verified_tokens[(secret, token)] = (principal, float(expires))
    if len(_verified_tokens) > VERIFIED_TOKENS_KEPT:
        _verified_tokens.popitem(last=False)
    return principal


# Verifying a token's signature costs more than the rest of a small request; clients send the
# same token again and again. (secret, token) -> (principal, expiry), least recently used first.
VERIFIED_TOKENS_KEPT = 4096
_verified_tokens: OrderedDict[tuple[str, str], tuple[Principal, float]] = OrderedDict()


@dataclass(frozen=True, slots=True)
class _UserState:
    tenant_id: str
    role: str
    is_active: bool
    token_version: int


# user id -> (read at, state or None when the user is gone).
_user_states: dict[str, tuple[float, _UserState | None]] = {}


def forget_user(user_id: str) -> None:
    """Drop a user's cached state (this process changed it: the next request reads it again)."""
    _user_states.pop(user_id, None)


async def check_session(sessions: async_sessionmaker[AsyncSession], principal: Principal) -> None:
    """Unauthorized unless the token's user is still active, with the token's role and version."""
    if principal.user_id is None:
        return
    state = await _user_state(sessions, principal.user_id)
    if (
        state is None
        or not state.is_active
        or state.tenant_id != principal.tenant_id
        or state.role != principal.role
        or state.token_version != principal.token_version
    ):
        raise Unauthorized("this session has ended; log in again")


async def _user_state(sessions: async_sessionmaker[AsyncSession], user_id: str) -> _UserState | None:
    now = time.monotonic()
    cached = _user_states.get(user_id)
    if cached is not None and now - cached[0] < USER_STATE_SECONDS:
        return cached[1]
    async with sessions() as session:
        row = (
            await session.execute(
                select(User.tenant_id, User.role, User.is_active, User.token_version).where(
                    User.id == user_id
                )
            )
        ).first()
    state = _UserState(row.tenant_id, row.role, row.is_active, row.token_version) if row else None
    _user_states[user_id] = (now, state)
    if len(_user_states) > VERIFIED_TOKENS_KEPT:
        oldest = min(_user_states, key=lambda key: _user_states[key][0])
        del _user_states[oldest]
    return state
