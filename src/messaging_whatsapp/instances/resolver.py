"""The webhook's view of the instances: each found by id or routing key from an in-memory cache."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.service import decrypt_credentials, routing_key_for
from messaging_whatsapp.providers.base import InstanceSecrets, ProviderName


@dataclass(frozen=True, slots=True)
class ResolvedInstance:
    """What the webhook needs to know about an instance, decrypted and cached in memory."""

    id: str
    tenant_id: str
    provider: ProviderName
    routing_key: str
    secrets: InstanceSecrets


class InstanceResolver:
    """Finds instances for the webhook from an in-memory cache.

    Any change to any instance, made by any process (the CLI binding a number, the worker
    recording a disconnection), moves the table's fingerprint (row count, latest update); the
    resolver looks at it at most once a second and drops its cache when it moved. Entries also
    expire after `ttl`. Misses are cached too, so a flood of requests for an unknown instance does
    not become a flood of queries.
    """

    MISS_TTL = 2.0
    FINGERPRINT_INTERVAL = 1.0

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], cipher: Cipher, settings: Settings, ttl: float
    ) -> None:
        self._factory = factory
        self._cipher = cipher
        self._settings = settings
        self._ttl = ttl
        self._by_key: dict[tuple[str, str], tuple[float, ResolvedInstance | None]] = {}
        self._by_id: dict[str, tuple[float, ResolvedInstance | None]] = {}
        self._fingerprint: tuple[int, datetime | None] | None = None
        self._fingerprint_checked = 0.0

    @classmethod
    def for_context(cls, context: EngineContext) -> InstanceResolver:
        """A resolver over the context's database, with the configured cache lifetime."""
        return cls(
            context.sessions, context.cipher, context.settings, context.settings.instance_cache_ttl_seconds
        )

    def invalidate(self) -> None:
        """Forget everything (called when an instance changes)."""
        self._by_key.clear()
        self._by_id.clear()

    def _resolved(self, instance: WhatsAppInstance) -> ResolvedInstance:
        credentials = decrypt_credentials(instance, self._cipher)
        app_secret = credentials.get("app_secret")
        if app_secret is None and self._settings.whatsapp_app_secret is not None:
            app_secret = self._settings.whatsapp_app_secret.get_secret_value()
        return ResolvedInstance(
            id=instance.id,
            tenant_id=instance.tenant_id,
            provider=ProviderName(instance.provider),
            routing_key=instance.routing_key,
            secrets=InstanceSecrets(
                webhook_secret=credentials["webhook_secret"],
                app_secret=app_secret,
                auth_token=credentials.get("auth_token"),
                api_key=credentials.get("api_key"),
                hmac_key=credentials.get("hmac_key"),
                verify_token=credentials.get("verify_token"),
            ),
        )

    async def _drop_cache_if_changed(self) -> None:
        now = time.monotonic()
        if now - self._fingerprint_checked < self.FINGERPRINT_INTERVAL:
            return
        self._fingerprint_checked = now
        async with self._factory() as session:
            count, latest = (
                await session.execute(select(func.count(), func.max(WhatsAppInstance.updated_at)))
            ).one()
        if (count, latest) != self._fingerprint:
            self._fingerprint = (count, latest)
            self.invalidate()

    async def by_routing_key(self, provider: ProviderName, key: str) -> ResolvedInstance | None:
        """The instance a payload names, or None."""
        await self._drop_cache_if_changed()
        cache_key = (provider.value, routing_key_for(provider, key))
        cached = self._by_key.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._factory() as session:
            instance = await session.scalar(
                select(WhatsAppInstance).where(
                    WhatsAppInstance.provider == cache_key[0], WhatsAppInstance.routing_key == cache_key[1]
                )
            )
            resolved = self._resolved(instance) if instance else None
        self._by_key[cache_key] = (self._expiry(resolved), resolved)
        return resolved

    async def by_id(self, instance_id: str) -> ResolvedInstance | None:
        """The instance with this id (from a per-instance webhook URL), or None."""
        await self._drop_cache_if_changed()
        cached = self._by_id.get(instance_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._factory() as session:
            instance = await session.get(WhatsAppInstance, instance_id)
            resolved = self._resolved(instance) if instance else None
        self._by_id[instance_id] = (self._expiry(resolved), resolved)
        return resolved

    async def verify_tokens(self) -> list[str]:
        """Every configured Meta verify token (for the GET verification handshake)."""
        async with self._factory() as session:
            instances = await session.scalars(
                select(WhatsAppInstance).where(WhatsAppInstance.provider == ProviderName.META.value)
            )
            tokens = [decrypt_credentials(i, self._cipher).get("verify_token") for i in instances]
        return [token for token in tokens if token]

    def _expiry(self, resolved: ResolvedInstance | None) -> float:
        return time.monotonic() + (self._ttl if resolved is not None else self.MISS_TTL)
