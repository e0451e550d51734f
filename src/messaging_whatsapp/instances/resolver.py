"""The webhook's view of the instances: each found by id or routing key from an in-memory cache."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.service import decrypt_credentials, routing_key_for
from messaging_whatsapp.providers.base import InstanceSecrets, ProviderName

logger = logging.getLogger(__name__)
# Only bound instances receive webhooks.
_BOUND = WhatsAppInstance.status != InstanceStatus.UNBOUND.value


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
    resolver looks at it about once a second and drops its cache when it moved. That look runs in
    the background while the cache is at most two intervals old, so no webhook waits for it.
    Entries also expire after `ttl`. An unbound instance is not found (its webhooks are 401).
    Misses are cached too, and requests missing the same key at
    once share one query, so a flood for an unknown (or not yet cached) instance is one query.
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
        self._verify_tokens: list[str] | None = None
        self._loading: dict[Hashable, asyncio.Future[ResolvedInstance | None]] = {}
        self._fingerprint: tuple[int, datetime | None] | None = None
        self._fingerprint_checked = 0.0
        self._fingerprint_check: asyncio.Task[None] | None = None

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
        self._verify_tokens = None

    async def warm(self) -> int:
        """Load every instance into the cache (at start-up, so the first webhooks wait for nothing);
        returns how many."""
        await self._check_fingerprint()
        async with self._factory() as session:
            instances = list(await session.scalars(select(WhatsAppInstance).where(_BOUND)))
        expiry = time.monotonic() + self._ttl
        for instance in instances:
            resolved = self._resolved(instance)
            self._by_id[resolved.id] = (expiry, resolved)
            self._by_key[(resolved.provider.value, resolved.routing_key)] = (expiry, resolved)
        return len(instances)

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
        age = time.monotonic() - self._fingerprint_checked
        if age < self.FINGERPRINT_INTERVAL:
            return
        if self._fingerprint is not None and age < 2 * self.FINGERPRINT_INTERVAL:
            if self._fingerprint_check is None or self._fingerprint_check.done():
                self._fingerprint_check = asyncio.create_task(self._check_fingerprint_in_background())
            return
        await self._check_fingerprint()

    async def _check_fingerprint_in_background(self) -> None:
        try:
            await self._check_fingerprint()
        except Exception:
            # The next lookup tries again, and waits for it once the cache is two intervals old.
            logger.warning("could not check the instances' fingerprint", exc_info=True)

    async def _check_fingerprint(self) -> None:
        self._fingerprint_checked = time.monotonic()
        async with self._factory() as session:
            count, latest = (
                await session.execute(select(func.count(), func.max(WhatsAppInstance.updated_at)))
            ).one()
        if (count, latest) == self._fingerprint:
            return
        first = self._fingerprint is None
        self._fingerprint = (count, latest)
        # The first check has nothing older to drop: what lookups cached while it ran is as fresh
        # as the fingerprint, and dropping it cost a crowd of webhooks a second query.
        if not first:
            self.invalidate()

    async def by_routing_key(self, provider: ProviderName, key: str) -> ResolvedInstance | None:
        """The instance a payload names, or None."""
        await self._drop_cache_if_changed()
        cache_key = (provider.value, routing_key_for(provider, key))

        async def load(session: AsyncSession) -> WhatsAppInstance | None:
            return await session.scalar(
                select(WhatsAppInstance).where(
                    WhatsAppInstance.provider == cache_key[0],
                    WhatsAppInstance.routing_key == cache_key[1],
                    _BOUND,
                )
            )

        return await self._cached(self._by_key, cache_key, load)

    async def by_id(self, instance_id: str) -> ResolvedInstance | None:
        """The instance with this id (from a per-instance webhook URL), or None."""
        await self._drop_cache_if_changed()

        async def load(session: AsyncSession) -> WhatsAppInstance | None:
            return await session.scalar(
                select(WhatsAppInstance).where(WhatsAppInstance.id == instance_id, _BOUND)
            )

        return await self._cached(self._by_id, instance_id, load)

    async def _cached(
        self,
        cache: dict[Any, tuple[float, ResolvedInstance | None]],
        key: Hashable,
        load: Callable[[AsyncSession], Awaitable[WhatsAppInstance | None]],
    ) -> ResolvedInstance | None:
        """The cached answer, or one query shared by every request that misses the key at once."""
        cached = cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # Per cache: an instance id and a routing key could be the same string.
        loading_key = (id(cache), key)
        loading = self._loading.get(loading_key)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[ResolvedInstance | None] = asyncio.get_running_loop().create_future()
        self._loading[loading_key] = future
        try:
            async with self._factory() as session:
                instance = await load(session)
                resolved = self._resolved(instance) if instance else None
            cache[key] = (self._expiry(resolved), resolved)
            future.set_result(resolved)
        except BaseException as exc:
            future.set_exception(exc)
            # Whoever waits sees the error; retrieved here so an unwatched one is not reported.
            future.exception()
            raise
        finally:
            del self._loading[loading_key]
        return resolved

    async def verify_tokens(self) -> list[str]:
        """Every configured Meta verify token (for the GET verification handshake); decrypted once
        per change of the instances, not per request."""
        await self._drop_cache_if_changed()
        if self._verify_tokens is None:
            async with self._factory() as session:
                instances = await session.scalars(
                    select(WhatsAppInstance).where(
                        WhatsAppInstance.provider == ProviderName.META.value, _BOUND
                    )
                )
                tokens = [decrypt_credentials(i, self._cipher).get("verify_token") for i in instances]
            self._verify_tokens = [token for token in tokens if token]
        return self._verify_tokens

    def _expiry(self, resolved: ResolvedInstance | None) -> float:
        return time.monotonic() + (self._ttl if resolved is not None else self.MISS_TTL)
