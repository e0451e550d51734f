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
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.phones import InvalidPhone, canonical_phone
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
    await get_tenant(session, tenant_id)
    _check_required(bind, settings)
    display_number = ""
    if bind.display_number.strip():
        try:
            display_number = canonical_phone(bind.display_number)
        except InvalidPhone as exc:
            raise InvalidInput(f"display number: {exc}", code="invalid_phone") from exc
    elif bind.provider not in LINKED_LATER:
        raise InvalidInput(f"provider {bind.provider.value} needs --display-number")
    credentials = {name: getattr(bind, name) for name in SECRET_OPTIONS if getattr(bind, name)}
    credentials["webhook_secret"] = secrets.token_urlsafe(24)
    instance = WhatsAppInstance(
        tenant_id=tenant_id,
        provider=bind.provider.value,
        name=bind.name or bind.instance_name or display_number,
        display_number=display_number,
        routing_key=_routing_key(bind, display_number),
        phone_number_id=bind.phone_number_id,
        waba_id=bind.waba_id,
        account_sid=bind.account_sid,
        instance_name=bind.instance_name,
        api_url=bind.api_url,
        credentials_encrypted=cipher.encrypt(json.dumps(credentials)),
        timezone=bind.timezone,
        daily_limit=bind.daily_limit,
        messaging_tier=bind.messaging_tier,
        warmup_started_at=utcnow(),
        connection_state=ConnectionState.OPEN.value,
    )
    session.add(instance)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"a {bind.provider.value} instance with key {instance.routing_key!r} is already bound"
        ) from exc
    return instance, webhook_url(instance, credentials, settings.public_url)


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
    instance.status = status.value
    if status is InstanceStatus.ACTIVE:
        # Resuming is the operator saying the trouble is fixed: start counting errors afresh.
        instance.consecutive_errors = 0
    instance.updated_at = utcnow()
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
