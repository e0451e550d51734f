"""Changing a bound number: new credentials or settings (an expired Meta token, a rotated Twilio
token, a gateway that moved), and unbinding it.

A change is written with a new `updated_at`, which is what every cache of instances watches: the
webhook's resolver in each process drops its cache when the table's fingerprint moves (within
about two seconds, instances/resolver.py), and the sender decrypts an instance's credentials again
when its `updated_at` changed. Unbinding keeps the instance's row and history (conversations,
messages, campaign logs) and gives it a new webhook secret, so a URL given out before stops working
even if the instance were bound again.
"""

from __future__ import annotations

import json
import secrets

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import Conflict, InvalidInput
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.schemas import InstanceUpdate
from messaging_whatsapp.instances.service import (
    REQUIRED_OPTIONS,
    SECRET_OPTIONS,
    decrypt_credentials,
    get_instance,
    refuse_unbound,
    release_routing_key,
    routing_key_for,
)
from messaging_whatsapp.phones import InvalidPhone, canonical_phone
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.transport import is_public_address
from messaging_whatsapp.tenancy.service import checked_timezone

COMMON_FIELDS = frozenset({"name", "display_number", "timezone", "daily_limit", "messaging_tier", "ai_mode"})
# What each provider's binding has besides the common fields (bind-tenant's options).
PROVIDER_FIELDS: dict[ProviderName, frozenset[str]] = {
    ProviderName.META: frozenset(
        {"phone_number_id", "waba_id", "access_token", "verify_token", "app_secret"}
    ),
    ProviderName.TWILIO: frozenset({"account_sid", "auth_token"}),
    ProviderName.EVOLUTION: frozenset({"instance_name", "api_url", "api_key"}),
    ProviderName.WUZAPI: frozenset({"instance_name", "api_url", "api_key", "hmac_key"}),
    ProviderName.SIMULATOR: frozenset({"instance_name"}),
}
# Fields a change may remove by giving null (the others are needed, or have no "none").
REMOVABLE = frozenset({"waba_id", "verify_token", "app_secret", "hmac_key", "messaging_tier"})
PLAIN_FIELDS = ("name", "phone_number_id", "waba_id", "account_sid", "instance_name", "api_url", "ai_mode")


def _checked_fields(provider: ProviderName, changes: dict[str, object]) -> None:
    foreign = sorted(set(changes) - COMMON_FIELDS - PROVIDER_FIELDS[provider])
    if foreign:
        raise InvalidInput(f"{', '.join(foreign)}: not a setting of a {provider.value} number")
    not_removable = sorted(name for name, value in changes.items() if value is None and name not in REMOVABLE)
    if not_removable:
        raise InvalidInput(f"{', '.join(not_removable)}: cannot be null (leave it out to keep it)")


def _checked_api_host(api_url: str, settings: Settings) -> None:
    """A gateway address given as a literal private IP is refused at once (hosts by name are
    checked on every call, after DNS, by the guarded client)."""
    host = httpx.URL(api_url).host
    try:
        public = is_public_address(host)
    except ValueError:
        return
    if not public and not settings.outbound_allow_private:
        raise InvalidInput(
            f"api_url {api_url!r} is not on the public internet (OUTBOUND_ALLOW_PRIVATE allows it)",
            code="destination_refused",
        )


def _routing_key(instance: WhatsAppInstance) -> str:
    provider = ProviderName(instance.provider)
    if provider is ProviderName.META:
        return instance.phone_number_id or ""
    if provider is ProviderName.TWILIO:
        return routing_key_for(provider, instance.display_number)
    return instance.instance_name or ""


async def _claim_routing_key(session: AsyncSession, instance: WhatsAppInstance, key: str) -> None:
    """Give the instance a new routing key, unless another bound instance has it."""
    holder = await session.scalar(
        select(WhatsAppInstance).where(
            WhatsAppInstance.provider == instance.provider,
            WhatsAppInstance.routing_key == key,
            WhatsAppInstance.id != instance.id,
        )
    )
    if holder is not None:
        if holder.status != InstanceStatus.UNBOUND.value:
            raise Conflict(f"a {instance.provider} instance with key {key!r} is already bound")
        await release_routing_key(session, holder)
    instance.routing_key = key


def _apply_plain(instance: WhatsAppInstance, changes: dict[str, object], settings: Settings) -> None:
    for name in PLAIN_FIELDS:
        if name in changes:
            setattr(instance, name, changes[name])
    if "api_url" in changes and isinstance(changes["api_url"], str):
        _checked_api_host(changes["api_url"], settings)
    if "display_number" in changes:
        try:
            instance.display_number = canonical_phone(str(changes["display_number"]))
        except InvalidPhone as exc:
            raise InvalidInput(f"display number: {exc}", code="invalid_phone") from exc
    if "timezone" in changes:
        instance.timezone = checked_timezone(str(changes["timezone"]))
    if "daily_limit" in changes and isinstance(changes["daily_limit"], int):
        instance.daily_limit = changes["daily_limit"]
    if "messaging_tier" in changes:
        tier = changes["messaging_tier"]
        instance.messaging_tier = tier if isinstance(tier, int) else None


def _check_complete(instance: WhatsAppInstance, credentials: dict[str, str], settings: Settings) -> None:
    provider = ProviderName(instance.provider)
    missing = [
        name
        for name in REQUIRED_OPTIONS[provider]
        if not (credentials.get(name) if name in SECRET_OPTIONS else getattr(instance, name))
    ]
    if (
        provider is ProviderName.META
        and not credentials.get("app_secret")
        and settings.whatsapp_app_secret is None
    ):
        missing.append("app_secret")
    if missing:
        raise InvalidInput(f"a {provider.value} number needs {', '.join(missing)}")


async def update_instance(
    session: AsyncSession,
    cipher: Cipher,
    settings: Settings,
    tenant_id: str,
    instance_id: str,
    update: InstanceUpdate,
) -> WhatsAppInstance:
    """Change the tenant's bound number; what `update` leaves out stays. Secrets are re-encrypted
    (with the newest key) and never returned."""
    instance = await get_instance(session, tenant_id, instance_id)
    refuse_unbound(instance)
    provider = ProviderName(instance.provider)
    changes = update.changes()
    _checked_fields(provider, changes)
    _apply_plain(instance, changes, settings)
    credentials = decrypt_credentials(instance, cipher)
    secret_changes = {name: changes[name] for name in SECRET_OPTIONS if name in changes}
    for name, value in secret_changes.items():
        if value is None:
            credentials.pop(name, None)
        else:
            credentials[name] = str(value)
    _check_complete(instance, credentials, settings)
    key = _routing_key(instance)
    if key != instance.routing_key:
        await _claim_routing_key(session, instance, key)
    if secret_changes:
        instance.credentials_encrypted = cipher.encrypt(json.dumps(credentials))
    instance.updated_at = utcnow()
    await session.flush()
    return instance


async def unbind_instance(
    session: AsyncSession, cipher: Cipher, tenant_id: str, instance_id: str
) -> WhatsAppInstance:
    """Stop sending and receiving through the number; keep its history. Its provider credentials
    are dropped and its webhook secret replaced (a URL given out before is refused from now on);
    binding the number again, by the same tenant, brings the instance back with new credentials."""
    instance = await get_instance(session, tenant_id, instance_id)
    refuse_unbound(instance)
    credentials = {"webhook_secret": secrets.token_urlsafe(24)}
    instance.credentials_encrypted = cipher.encrypt(json.dumps(credentials))
    instance.status = InstanceStatus.UNBOUND.value
    instance.updated_at = utcnow()
    await session.flush()
    return instance
