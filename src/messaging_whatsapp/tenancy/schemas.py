"""Login request and answer; the tenant's settings; its users; API keys as listed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from messaging_whatsapp.tenancy.models import (
    MAX_RETENTION_DAYS,
    MAX_TICKET_INACTIVITY_MINUTES,
    MIN_RETENTION_DAYS,
    UserRole,
)

RETENTION_SETTINGS = (
    "retention_messages_days",
    "retention_closed_tickets_days",
    "retention_raw_requests_days",
)


def _checked_retention_days(days: int | None) -> int | None:
    if days is not None and not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise PydanticCustomError(
            "retention_days",
            f"must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days, or null to keep forever",
        )
    return days


# A retention setting: days, or null to keep forever. The bounds are checked by the validator, for
# a message that says what is allowed, and shown in the OpenAPI document.
RetentionDays = Annotated[
    int | None,
    AfterValidator(_checked_retention_days),
    Field(json_schema_extra={"minimum": MIN_RETENTION_DAYS, "maximum": MAX_RETENTION_DAYS}),
]


class LoginRequest(BaseModel):
    """Email and password of a user."""

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    """A bearer token for the API."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    tenant_id: str
    role: str


class TenantItem(BaseModel):
    """A tenant and its settings."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    timezone: str
    # ISO 3166 alpha-2: phones typed without "+" and a country code are numbers of this country.
    default_country: str
    ticket_inactivity_minutes: int
    # Data retention (LGPD), in days; null: kept forever.
    retention_messages_days: int | None
    retention_closed_tickets_days: int | None
    retention_raw_requests_days: int | None


class TenantUpdate(BaseModel):
    """A change to the tenant's settings; what is left out stays as it is. A retention setting
    given as null keeps that data forever again."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    # ISO 3166 alpha-2 ("BR", "US"); an unknown one is refused with invalid_country.
    default_country: str | None = Field(default=None, min_length=1, max_length=64)
    ticket_inactivity_minutes: int | None = Field(default=None, ge=0, le=MAX_TICKET_INACTIVITY_MINUTES)
    # Messages older than this many days are deleted (by when they were stored).
    retention_messages_days: RetentionDays = None
    # Tickets closed longer ago than this many days are deleted (their messages stay).
    retention_closed_tickets_days: RetentionDays = None
    # Raw webhook requests of the tenant kept in the DLQ are deleted after this many days
    # (DLQ_RETENTION_DAYS still deletes everyone's sooner when it is shorter).
    retention_raw_requests_days: RetentionDays = None

    def retention_changes(self) -> dict[str, int | None]:
        """The retention settings this change names, null ones included (they turn retention off)."""
        return {name: getattr(self, name) for name in RETENTION_SETTINGS if name in self.model_fields_set}


class ApiKeyItem(BaseModel):
    """An API key as listed: its first characters to recognise it, never the key or its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    role: str
    # The scopes the key is limited to; null: everything its role allows.
    scopes: list[str] | None
    created_at: datetime
    revoked_at: datetime | None

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return value.split() if isinstance(value, str) else value


class ApiKeyCreate(BaseModel):
    """A new API key: what it is for, its role (no higher than its creator's) and, to limit it
    further, its scopes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=200)
    role: UserRole = UserRole.ADMIN
    scopes: list[str] | None = Field(default=None, max_length=20)


class CreatedApiKey(ApiKeyItem):
    """A key just created: the only time the key itself is shown."""

    api_key: str


class UserItem(BaseModel):
    """A user of the tenant as listed (never the password or its hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: UserRole
    is_active: bool
    created_at: datetime


class UserCreate(BaseModel):
    """A new user: their login and role."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    role: UserRole = UserRole.AGENT


class UserUpdate(BaseModel):
    """A change to a user; any of these ends their sessions. What is left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    role: UserRole | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    is_active: bool | None = None
