"""Binding numbers to tenants, their encrypted credentials, and what a provider needs to act as one."""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import Cipher
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import Conflict, InvalidInput, NotFound
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.recovery import lift_to_resume_floor
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.phones import InvalidPhone, canonical_phone, typed_phone
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.events import ConnectionState
from messaging_whatsapp.providers.outbound import SenderAccount
from messaging_whatsapp.tenancy.service import get_tenant

# Options each provider cannot work without (CLI flag names are these with dashes).
REQUIRED_OPTIONS: dict[ProviderName, tuple[str, ...]] = {
    ProviderName.META: ("phone_number_id", "access_token"),
    ProviderName.TWILIO: ("account_sid", "auth_token"),
    ProviderName.EVOLUTION: ("instance_name", "api_url", "api_key"),
    ProviderName.WUZAPI: ("instance_name", "api_url", "api_key"),
    ProviderName.SIMULATOR: ("instance_name",),
}
SECRET_OPTIONS = ("access_token", "verify_token", "app_secret", "auth_token", "api_key", "hmac_key")
# An unbound instance whose number another binding took keeps this key (and its history).
UNBOUND_KEY_PREFIX = "unbound:"
# Gateways that cannot sign get the per-instance secret in the URL path as well.
SECRET_IN_PATH = {ProviderName.EVOLUTION, ProviderName.WUZAPI, ProviderName.SIMULATOR}
# The QR-code gateways: their number may be bound before a phone is linked, and learnt then.
LINKED_LATER = {ProviderName.EVOLUTION, ProviderName.WUZAPI}


def routing_key_for(provider: ProviderName, raw: str) -> str:
    """Normalise the key a payload names its instance by (Twilio: our number as E.164 digits)."""
    if provider is ProviderName.TWILIO:
        try:
            return canonical_phone(raw).removeprefix("+")
        except InvalidPhone:
            return raw
    return raw


def _routing_key(bind: InstanceBind, display_number: str) -> str:
    if bind.provider is ProviderName.META:
        return bind.phone_number_id or ""
    if bind.provider is ProviderName.TWILIO:
        return display_number.removeprefix("+")
    return bind.instance_name or ""


def _check_required(bind: InstanceBind, settings: Settings) -> None:
    missing = [name for name in REQUIRED_OPTIONS[bind.provider] if not getattr(bind, name)]
    if bind.provider is ProviderName.META and not bind.app_secret and settings.whatsapp_app_secret is None:
        missing.append("app_secret")
    if missing:
        flags = ", ".join("--" + name.replace("_", "-") for name in missing)
        raise InvalidInput(f"provider {bind.provider.value} needs {flags}")


def decrypt_credentials(instance: WhatsAppInstance, cipher: Cipher) -> dict[str, str]:
    """The instance's secrets as a dict (in memory only; never log it)."""
    data = json.loads(cipher.decrypt(instance.credentials_encrypted))
    return {key: str(value) for key, value in data.items() if value is not None}


def webhook_url(instance: WhatsAppInstance, credentials: dict[str, str], public_url: str) -> str:
    """The URL to configure on the provider; for gateways that cannot sign it carries the secret."""
    base = f"{public_url.rstrip('/')}/webhooks/{instance.provider}/{instance.id}"
    if ProviderName(instance.provider) in SECRET_IN_PATH:
        return f"{base}/{credentials['webhook_secret']}"
    return base


async def bind_instance(
    session: AsyncSession, cipher: Cipher, settings: Settings, tenant_id: str, bind: InstanceBind
) -> tuple[WhatsAppInstance, str]:
    """Bind a number of the tenant through a provider; returns the instance and its webhook URL."""
    tenant = await get_tenant(session, tenant_id)
    _check_required(bind, settings)
    display_number = ""
    if bind.display_number.strip():
        try:
            display_number = typed_phone(bind.display_number, tenant.default_country)
        except InvalidPhone as exc:
            raise InvalidPhone(f"display number: {exc.message}", details=exc.details) from None
    elif bind.provider not in LINKED_LATER:
        raise InvalidInput(f"provider {bind.provider.value} needs --display-number")
    credentials = {name: getattr(bind, name) for name in SECRET_OPTIONS if getattr(bind, name)}
    credentials["webhook_secret"] = secrets.token_urlsafe(24)
    routing_key = _routing_key(bind, display_number)
    values: dict[str, object] = {
        "tenant_id": tenant_id,
        "provider": bind.provider.value,
        "name": bind.name or bind.instance_name or display_number,
        "display_number": display_number,
        "routing_key": routing_key,
        "phone_number_id": bind.phone_number_id,
        "waba_id": bind.waba_id,
        "account_sid": bind.account_sid,
        "instance_name": bind.instance_name,
        "api_url": bind.api_url,
        "credentials_encrypted": cipher.encrypt(json.dumps(credentials)),
        # Its daily counters start again at its tenant's midnight unless it says otherwise.
        "timezone": bind.timezone or tenant.timezone,
        "daily_limit": bind.daily_limit,
        "messaging_tier": bind.messaging_tier,
        "connection_state": ConnectionState.OPEN.value,
    }
    instance = await _unbound_holder(session, bind.provider, routing_key, tenant_id)
    if instance is not None:
        # The tenant binds a number it unbound: the same instance again, with its conversations.
        for name, value in values.items():
            setattr(instance, name, value)
        instance.status = InstanceStatus.ACTIVE.value
        instance.connection_reason = None
        instance.consecutive_errors = 0
        instance.updated_at = utcnow()
    else:
        instance = WhatsAppInstance(**values, warmup_started_at=utcnow())
        session.add(instance)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"a {bind.provider.value} instance with key {instance.routing_key!r} is already bound"
        ) from exc
    return instance, webhook_url(instance, credentials, settings.public_url)


async def _unbound_holder(
    session: AsyncSession, provider: ProviderName, routing_key: str, tenant_id: str
) -> WhatsAppInstance | None:
    """The tenant's own unbound instance with this key (to bind again), if any; another tenant's
    unbound instance gives the key up, so the number can be bound anew."""
    holder = await session.scalar(
        select(WhatsAppInstance).where(
            WhatsAppInstance.provider == provider.value, WhatsAppInstance.routing_key == routing_key
        )
    )
    if holder is None or holder.status != InstanceStatus.UNBOUND.value:
        return None
    if holder.tenant_id == tenant_id:
        return holder
    await release_routing_key(session, holder)
    return None


async def release_routing_key(session: AsyncSession, instance: WhatsAppInstance) -> None:
    """Let another binding use an unbound instance's routing key (unique per provider)."""
    instance.routing_key = f"{UNBOUND_KEY_PREFIX}{instance.id}"
    instance.updated_at = utcnow()
    await session.flush()


def refuse_unbound(instance: WhatsAppInstance) -> None:
    """Conflict for an unbound instance: only binding the number again brings it back."""
    if instance.status == InstanceStatus.UNBOUND.value:
        raise Conflict(
            f"instance {instance.id} is unbound; bind the number again to use it", code="instance_unbound"
        )


async def list_instances(session: AsyncSession, tenant_id: str | None = None) -> list[WhatsAppInstance]:
    """The tenant's instances (all tenants' when tenant_id is None: operator CLI only)."""
    query = select(WhatsAppInstance).order_by(WhatsAppInstance.created_at, WhatsAppInstance.id)
    if tenant_id is not None:
        query = query.where(WhatsAppInstance.tenant_id == tenant_id)
    return list((await session.scalars(query)).all())


async def get_instance(session: AsyncSession, tenant_id: str, instance_id: str) -> WhatsAppInstance:
    """The tenant's instance, or NotFound (also for another tenant's id)."""
    instance = await session.scalar(
        select(WhatsAppInstance).where(
            WhatsAppInstance.id == instance_id, WhatsAppInstance.tenant_id == tenant_id
        )
    )
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    return instance


async def set_instance_status(
    session: AsyncSession, tenant_id: str, instance_id: str, status: InstanceStatus
) -> WhatsAppInstance:
    """Pause, resume or deactivate the tenant's instance (an operator's decision)."""
    instance = await get_instance(session, tenant_id, instance_id)
    refuse_unbound(instance)
    instance.status = status.value
    now = utcnow()
    if status is InstanceStatus.ACTIVE:
        # Resuming is the operator saying the trouble is fixed: errors forgotten, score floored.
        lift_to_resume_floor(instance, now)
    instance.updated_at = now
    await session.flush()
    return instance


async def pause_instances(session: AsyncSession, reasons: dict[str, str], now: datetime) -> list[str]:
    """Pause active instances the provider refused to serve (blocked, logged out, bad token).

    Returns the ids that were active until now, so each pause is announced once.
    """
    paused = []
    for instance_id, reason in sorted(reasons.items()):
        changed = await session.scalar(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == instance_id, WhatsAppInstance.status == InstanceStatus.ACTIVE.value)
            .values(status=InstanceStatus.PAUSED.value, last_error=reason, last_error_at=now, updated_at=now)
            .returning(WhatsAppInstance.id)
        )
        if changed is not None:
            paused.append(instance_id)
    return paused


def sender_account(
    instance: WhatsAppInstance, credentials: dict[str, str], settings: Settings
) -> SenderAccount:
    """What a provider needs to send as this instance."""
    provider = ProviderName(instance.provider)
    api_url = {
        ProviderName.META: settings.meta_graph_url,
        ProviderName.TWILIO: settings.twilio_api_url,
        ProviderName.SIMULATOR: settings.simulator_url or settings.public_url,
    }.get(provider, instance.api_url or "")
    callback = (
        webhook_url(instance, credentials, settings.public_url) if provider is ProviderName.TWILIO else None
    )
    return SenderAccount(
        display_number=instance.display_number,
        api_url=api_url,
        phone_number_id=instance.phone_number_id,
        waba_id=instance.waba_id,
        account_sid=instance.account_sid,
        instance_name=instance.instance_name or instance.routing_key,
        access_token=credentials.get("access_token"),
        auth_token=credentials.get("auth_token"),
        api_key=credentials.get("api_key") or credentials.get("webhook_secret"),
        status_callback_url=callback,
    )
