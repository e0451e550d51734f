"""Tenants (businesses), their users and their API keys."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin
from messaging_whatsapp.phones import DEFAULT_COUNTRY

# A day: a customer who comes back after it starts a new session of attendance.
DEFAULT_TICKET_INACTIVITY_MINUTES = 24 * 60
# A year: longer reads as a typo, and 0 says "never" already.
MAX_TICKET_INACTIVITY_MINUTES = 366 * 24 * 60
# Retention periods (LGPD), in days: at least a day, so nothing of today's inbox is ever deleted;
# at most ten years, past which a number reads as a typo (leave it unset to keep forever).
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650


class UserRole(enum.StrEnum):
    """Admins manage the tenant (numbers, users, keys); supervisors run campaigns and see every
    conversation; agents work the inbox: their conversations and the unassigned queue."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


# Higher includes lower: what an agent may do, a supervisor may too, and an admin.
ROLE_RANK = {UserRole.AGENT: 1, UserRole.SUPERVISOR: 2, UserRole.ADMIN: 3}


class Tenant(IdMixin, TimestampMixin, Base):
    """A business using the engine; every other row belongs to exactly one."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="America/Sao_Paulo")
    # ISO 3166 alpha-2: the country a phone typed without "+" and a country code is read in
    # (phones.typed_phone), in the API, the command line and contact lists alike.
    default_country: Mapped[str] = mapped_column(
        String(2), default=DEFAULT_COUNTRY, server_default=DEFAULT_COUNTRY
    )
    # A ticket closes after this long without a message either way (seed 003); 0: never.
    ticket_inactivity_minutes: Mapped[int] = mapped_column(
        default=DEFAULT_TICKET_INACTIVITY_MINUTES, server_default=str(DEFAULT_TICKET_INACTIVITY_MINUTES)
    )
    # The key of the tenant's suppression list (consent/suppression.py), encrypted like a
    # credential; made at the first erasure. Kept out of the database's reach in plain text, so a
    # copy of the database alone cannot test phones against the list.
    suppression_key: Mapped[str | None] = mapped_column(Text, default=None)
    # Data retention (LGPD), applied by the scheduler (retention/): how many days each kind of
    # personal data is kept; None keeps it forever.
    retention_messages_days: Mapped[int | None] = mapped_column(default=None)
    retention_closed_tickets_days: Mapped[int | None] = mapped_column(default=None)
    retention_raw_requests_days: Mapped[int | None] = mapped_column(default=None)
    # When the team answers (tenancy/hours.py: JSON of weekday -> intervals, in `timezone`); None:
    # no hours set, never "outside business hours". The away message automation sends outside them.
    business_hours: Mapped[str | None] = mapped_column(Text, default=None)
    away_message: Mapped[str | None] = mapped_column(Text, default=None)


class User(IdMixin, TimestampMixin, Base):
    """A person who logs in to a tenant."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("email"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=UserRole.AGENT.value)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Every token of the user carries it; raising it (deactivation, a new role or password) ends
    # their sessions at once.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Runs the engine for every tenant: sees the operator's view (/ops), across tenants. Set only by
    # the command line (`create-user --platform-admin`); read from here on every request.
    is_platform_admin: Mapped[bool] = mapped_column(default=False, server_default=false())


class ApiKey(IdMixin, TimestampMixin, Base):
    """A machine credential of a tenant; only its SHA-256 is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_hash"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default=UserRole.ADMIN.value)
    # Space-separated scopes the key is limited to (tenancy/access.py); None: all its role allows.
    scopes: Mapped[str | None] = mapped_column(String(500), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
