"""What goes in and out of the instances API and CLI."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from messaging_whatsapp.providers.base import ProviderName


class InstanceBind(BaseModel):
    """Options to bind a number; which are required depends on the provider."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName
    display_number: str = Field(min_length=1, max_length=32)
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
    timezone: str = "America/Sao_Paulo"
    daily_limit: int = Field(default=1000, ge=0)


class InstanceItem(BaseModel):
    """An instance as the API shows it. Credentials never appear here."""

    model_config = ConfigDict(from_attributes=True)

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
    msgs_sent_today: int
    msgs_delivered_today: int
    msgs_read_today: int
    msgs_failed_today: int
    consecutive_errors: int
    daily_limit: int
    created_at: datetime


class BoundInstance(InstanceItem):
    """The answer to a bind: the instance plus the URL to give the provider (it carries the secret)."""

    webhook_url: str
