"""The suppression list: people erased at their request who had opted out, and so must stay
unreachable although nothing about them is kept but an HMAC of their phone.

Each tenant has its own random key, stored encrypted with the credentials' cipher: a copy of the
database alone cannot test phone numbers against the list, and one tenant's hashes say nothing
about another's. The cipher comes with the session (`session.info`, set by the engine context's
session factory), because every check that a person may be messaged needs it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.consent.models import Suppression
from messaging_whatsapp.crypto import CIPHER_KEY, Cipher
from messaging_whatsapp.db import insert_for, new_id, one_of, utcnow
from messaging_whatsapp.phones import phone_variants
from messaging_whatsapp.tenancy.models import Tenant


def session_cipher(session: AsyncSession) -> Cipher:
    """The cipher the session was opened with (see EngineContext); a clear error without one."""
    cipher = session.info.get(CIPHER_KEY)
    if not isinstance(cipher, Cipher):
        raise RuntimeError("this session has no cipher: open it from the engine context's sessions")
    return cipher


def phone_hash(key: bytes, phone: str) -> str:
    """The HMAC-SHA256 of a canonical phone under a tenant's key, in hex."""
    return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()


async def tenant_key(session: AsyncSession, tenant_id: str, *, create: bool = False) -> bytes | None:
    """The tenant's suppression key; None when it has none yet (nobody suppressed), unless
    `create`, which makes one."""
    stored = await session.scalar(select(Tenant.suppression_key).where(Tenant.id == tenant_id))
    cipher = session_cipher(session)
    if stored is not None:
        return bytes.fromhex(cipher.decrypt(stored))
    if not create:
        return None
    key = secrets.token_bytes(32)
    made = await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id, Tenant.suppression_key.is_(None))
        .values(suppression_key=cipher.encrypt(key.hex()))
        .returning(Tenant.id)
    )
    if made.first() is None:  # another transaction made it first: use theirs
        return await tenant_key(session, tenant_id)
    return key


async def suppress(session: AsyncSession, tenant_id: str, phone: str, reason: str) -> None:
    """Put a canonical phone on the tenant's suppression list (once)."""
    key = await tenant_key(session, tenant_id, create=True)
    assert key is not None
    statement = insert_for(session, Suppression.__table__).values(
        id=new_id(),
        tenant_id=tenant_id,
        phone_hash=phone_hash(key, phone),
        reason=reason,
        created_at=utcnow(),
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["tenant_id", "phone_hash"]))


async def suppressed_phones(session: AsyncSession, tenant_id: str, phones: Collection[str]) -> set[str]:
    """Which of these canonical phones (in either Brazilian form) are on the tenant's list."""
    if not phones:
        return set()
    key = await tenant_key(session, tenant_id)
    if key is None:
        return set()
    by_hash = {phone_hash(key, variant): phone for phone in phones for variant in phone_variants(phone)}
    found = await session.scalars(
        select(Suppression.phone_hash).where(
            Suppression.tenant_id == tenant_id, one_of(session, Suppression.phone_hash, list(by_hash))
        )
    )
    return {by_hash[value] for value in found}


async def unsuppress(session: AsyncSession, tenant_id: str, phone: str) -> bool:
    """Take a canonical phone (either Brazilian form) off the tenant's list; True if it was on it."""
    key = await tenant_key(session, tenant_id)
    if key is None:
        return False
    hashes = [phone_hash(key, variant) for variant in phone_variants(phone)]
    removed = await session.execute(
        delete(Suppression)
        .where(Suppression.tenant_id == tenant_id, Suppression.phone_hash.in_(hashes))
        .returning(Suppression.id)
    )
    return bool(removed.all())
