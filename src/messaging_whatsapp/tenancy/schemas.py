"""Login request and answer; API keys as listed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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


class ApiKeyItem(BaseModel):
    """An API key as listed: its first characters to recognise it, never the key or its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreate(BaseModel):
    """A new API key: what it is for."""

    name: str = Field(default="default", min_length=1, max_length=200)


class CreatedApiKey(ApiKeyItem):
    """A key just created: the only time the key itself is shown."""

    api_key: str
