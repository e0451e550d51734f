"""What goes in and out of the instances API and CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from messaging_whatsapp.instances.health import HealthView, can_send_message
from messaging_whatsapp.instances.models import AiMode, WhatsAppInstance
from messaging_whatsapp.providers.base import ConnectChallenge, ProviderName


def checked_api_url(value: str) -> str:
    """A gateway's base URL: http or https with a host we can read (no trailing slash), or ValueError
    saying why (file://, gopher://, an octal address such as 0177.0.0.1...)."""
    value = value.strip().rstrip("/")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"api_url is not a valid URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"api_url must be http:// or https:// with a host (got {value!r})")
    return value


class InstanceBind(BaseModel):
    """Options to bind a number; which are required depends on the provider."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName
    # Empty only for a QR-code gateway's number, whose phone is not linked yet (seed 001 creates
    # an Evolution instance without it): its status fills it in from the linked phone.
    display_number: str = Field(default="", max_length=32)
    name: str | None = Field(default=None, max_length=200)
    phone_number_id: str | None = Field(default=None, max_length=64)
    waba_id: str | None = Field(default=None, max_length=64)
    access_token: str | None = None
    verify_token: str | None = None
    app_secret: str | None = None
    account_sid: str | None = Field(default=None, max_length=64)
    auth_token: str | None = None
    instance_name: str | None = Field(default=None, max_length=200)
    api_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = None
    hmac_key: str | None = None
    # The zone of its daily counters; None: its tenant's.
    timezone: str | None = None
    daily_limit: int = Field(default=1000, ge=0)
    messaging_tier: int | None = Field(default=250, ge=1, le=10_000_000)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return None if value is None else checked_api_url(value)


class GatewayCreate(BaseModel):
    """A number made on a QR-code gateway and bound in one step: Evolution API creates the instance
    with its global key (``api_key``), WuzAPI the user with its admin token (``admin_token``).
    Neither key is stored: the instance's own token, from the gateway's answer, is."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName
    instance_name: str = Field(min_length=1, max_length=200)
    api_url: str = Field(max_length=500)
    api_key: str | None = Field(default=None, max_length=4096)
    admin_token: str | None = Field(default=None, max_length=4096)
    display_number: str = Field(default="", max_length=32)
    name: str | None = Field(default=None, max_length=200)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return checked_api_url(value)


class InstanceUpdate(BaseModel):
    """A change to a bound number: what is left out stays. Which fields apply depends on the
    provider (instances/bindings.py); an optional secret (verify_token, app_secret, hmac_key) or
    waba_id, messaging_tier given as null is removed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    display_number: str | None = Field(default=None, min_length=1, max_length=32)
    phone_number_id: str | None = Field(default=None, min_length=1, max_length=64)
    waba_id: str | None = Field(default=None, min_length=1, max_length=64)
    access_token: str | None = Field(default=None, min_length=1, max_length=4096)
    verify_token: str | None = Field(default=None, min_length=1, max_length=512)
    app_secret: str | None = Field(default=None, min_length=1, max_length=512)
    account_sid: str | None = Field(default=None, min_length=1, max_length=64)
    auth_token: str | None = Field(default=None, min_length=1, max_length=512)
    instance_name: str | None = Field(default=None, min_length=1, max_length=200)
    api_url: str | None = Field(default=None, min_length=1, max_length=500)
    api_key: str | None = Field(default=None, min_length=1, max_length=4096)
    hmac_key: str | None = Field(default=None, min_length=1, max_length=512)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    daily_limit: int | None = Field(default=None, ge=0, le=10_000_000)
    messaging_tier: int | None = Field(default=None, ge=1, le=10_000_000)
    # AI replies on this number (assistant/): off, drafts (suggested to the agent) or auto.
    ai_mode: AiMode | None = None

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return None if value is None else checked_api_url(value)

    def changes(self) -> dict[str, object]:
        """The fields the request names, with their values (null ones included)."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class InstanceItem(BaseModel):
    """An instance as the API shows it, with its health. Credentials never appear here."""

    id: str
    provider: str
    name: str
    display_number: str
    connection_state: str
    status: str
    phone_number_id: str | None
    waba_id: str | None
    instance_name: str | None
    health_score: float
    health_status: str
    is_healthy: bool
    can_send: bool
    delivery_rate: float
    read_rate: float
    msgs_sent_today: int
    msgs_delivered_today: int
    msgs_read_today: int
    msgs_failed_today: int
    consecutive_errors: int
    daily_limit: int
    messaging_tier: int | None
    timezone: str
    ai_mode: str
    last_error: str | None
    created_at: datetime

    @classmethod
    def of(cls, instance: WhatsAppInstance, now: datetime) -> Self:
        """The item for an instance row, with health as of `now` (counters reset at local midnight)."""
        health = HealthView.of(instance, now)
        return cls(
            id=instance.id,
            provider=instance.provider,
            name=instance.name,
            display_number=instance.display_number,
            connection_state=instance.connection_state,
            status=instance.status,
            phone_number_id=instance.phone_number_id,
            waba_id=instance.waba_id,
            instance_name=instance.instance_name,
            health_score=health.score,
            health_status=health.status.value,
            is_healthy=health.is_healthy,
            can_send=can_send_message(instance, now),
            delivery_rate=health.delivery_rate,
            read_rate=health.read_rate,
            msgs_sent_today=health.sent_today,
            msgs_delivered_today=health.delivered_today,
            msgs_read_today=health.read_today,
            msgs_failed_today=health.failed_today,
            consecutive_errors=health.consecutive_errors,
            daily_limit=instance.daily_limit,
            messaging_tier=instance.messaging_tier,
            timezone=instance.timezone,
            ai_mode=instance.ai_mode,
            last_error=instance.last_error,
            created_at=instance.created_at,
        )


class BoundInstance(InstanceItem):
    """The answer to a bind: the instance plus the URL to give the provider (it carries the secret)."""

    webhook_url: str


class ConnectItem(BaseModel):
    """How to link a phone to a gateway's number: its state, and the QR code while connecting
    (the code's text, or the gateway's PNG in base64; a pairing code when one was asked for)."""

    instance_id: str
    state: str
    qr_code: str | None
    qr_image_base64: str | None
    pairing_code: str | None

    @classmethod
    def of(cls, instance_id: str, challenge: ConnectChallenge) -> Self:
        """The item for a gateway's answer to connect."""
        return cls(
            instance_id=instance_id,
            state=challenge.state.value,
            qr_code=challenge.qr_code,
            qr_image_base64=challenge.qr_image_base64,
            pairing_code=challenge.pairing_code,
        )
