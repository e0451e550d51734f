"""Tenants and who may use them: `create-tenant`, `update-tenant` (its settings, data retention
included), users (`create-user`, `list-users`, `deactivate-user`) and API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.cli.support import (
    JsonOption,
    fail,
    in_session,
    print_json,
    print_table,
    run_engine,
    stdout,
    tenant_or_only_one,
)
from messaging_whatsapp.cli.support import table as support_table
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.phones import DEFAULT_COUNTRY
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy import users
from messaging_whatsapp.tenancy.models import (
    DEFAULT_TICKET_INACTIVITY_MINUTES,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    ApiKey,
    User,
)
from messaging_whatsapp.tenancy.schemas import ApiKeyItem, CreatedApiKey, TenantItem, TenantUpdate, UserItem

CountryHelp = "ISO 3166 country (BR, US...): phones typed without + and a country code are its numbers."
TenantOption = Annotated[str | None, typer.Option(help="Needed when there are several tenants.")]
# What turns a retention setting off (keep forever) on the command line.
KEEP_FOREVER = "off"
RetentionOption = Annotated[
    str | None,
    typer.Option(
        metavar="DAYS|off",
        help=f"Delete after this many days ({MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS}); off: keep forever.",
    ),
]


def create_tenant(
    name: Annotated[str, typer.Option(help="The business's name.")],
    timezone: Annotated[str, typer.Option(help="IANA time zone for windows and daily counters.")] = (
        "America/Sao_Paulo"
    ),
    ticket_inactivity_minutes: Annotated[
        int, typer.Option(help="Close a ticket after this long without a message (0: never).")
    ] = DEFAULT_TICKET_INACTIVITY_MINUTES,
    default_country: Annotated[str, typer.Option(help=CountryHelp)] = DEFAULT_COUNTRY,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant (a business)."""

    async def work(context: EngineContext) -> TenantItem:
        tenant = await in_session(
            context,
            lambda s: tenancy_service.create_tenant(
                s, name, timezone, ticket_inactivity_minutes, default_country
            ),
        )
        return TenantItem.model_validate(tenant)

    tenant = run_engine(work)
    if as_json:
        print_json(tenant.model_dump(mode="json"))
    else:
        stdout.print(f"tenant {tenant.id} ({tenant.name}) created")


def update_tenant(
    tenant_id: Annotated[str, typer.Option(help="The tenant to change.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    timezone: Annotated[str | None, typer.Option(help="A new IANA time zone.")] = None,
    default_country: Annotated[str | None, typer.Option(help=CountryHelp)] = None,
    ticket_inactivity_minutes: Annotated[
        int | None, typer.Option(help="Close a ticket after this long without a message (0: never).")
    ] = None,
    retention_messages_days: RetentionOption = None,
    retention_closed_tickets_days: RetentionOption = None,
    retention_raw_requests_days: RetentionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a tenant's name or settings (what is not given stays as it is), data retention
    (LGPD) included: messages, closed tickets and raw requests in the DLQ, in days or off."""
    retention = {
        setting: _retention_days(setting, value)
        for setting, value in (
            ("retention_messages_days", retention_messages_days),
            ("retention_closed_tickets_days", retention_closed_tickets_days),
            ("retention_raw_requests_days", retention_raw_requests_days),
        )
        if value is not None
    }
    try:
        changes = TenantUpdate(
            name=name,
            timezone=timezone,
            default_country=default_country,
            ticket_inactivity_minutes=ticket_inactivity_minutes,
            **retention,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"{_option(str(error['loc'][0]))}: {error['msg']}") from None

    async def work(context: EngineContext) -> TenantItem:
        tenant = await in_session(context, lambda s: tenancy_service.update_tenant(s, tenant_id, changes))
        return TenantItem.model_validate(tenant)

    tenant = run_engine(work)
    if as_json:
        print_json(tenant.model_dump(mode="json"))
    else:
        minutes = tenant.ticket_inactivity_minutes
        closing = (
            f"close after {minutes} minutes without a message" if minutes else "never close by themselves"
        )
        stdout.print(
            f"tenant {tenant.id} ({tenant.name}): time zone {tenant.timezone}, "
            f"phones of {tenant.default_country}, tickets {closing}"
        )
        stdout.print(f"retention: {_retention_summary(tenant)}")


def _option(setting: str) -> str:
    return f"--{setting.replace('_', '-')}"


def _retention_days(setting: str, value: str) -> int | None:
    """A retention option's days, or None for `off`; anything else is a one-line error."""
    if value.strip().lower() == KEEP_FOREVER:
        return None
    try:
        days = int(value)
    except ValueError:
        days = 0
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise fail(
            f"{_option(setting)} must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days, "
            f"or {KEEP_FOREVER} to keep forever"
        )
    return days


def _retention_summary(tenant: TenantItem) -> str:
    kept = {
        "messages": tenant.retention_messages_days,
        "closed tickets": tenant.retention_closed_tickets_days,
        "raw requests": tenant.retention_raw_requests_days,
    }
    return ", ".join(f"{kind} {f'{days} days' if days else 'forever'}" for kind, days in kept.items())


def create_user(
    tenant_id: Annotated[str, typer.Option(help="The tenant the user belongs to.")],
    email: Annotated[str, typer.Option()],
    password: Annotated[
        str, typer.Option(help="At least 8 characters, not common, guessable or built on the email.")
    ],
    role: Annotated[str, typer.Option(help="admin, supervisor or agent.")] = "agent",
    platform_admin: Annotated[
        bool,
        typer.Option(
            "--platform-admin",
            help="Also a platform admin: sees the operator's view (/ops: streams, DLQ, workers) "
            "across every tenant.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a user who can log in to the API and the inbox."""

    async def work(context: EngineContext) -> dict[str, str | bool]:
        user = await in_session(
            context,
            lambda s: users.create_user(s, tenant_id, email, password, role, platform_admin=platform_admin),
        )
        return {
            "id": user.id,
            "tenant_id": user.tenant_id,
            "email": user.email,
            "role": user.role,
            "is_platform_admin": user.is_platform_admin,
        }

    user = run_engine(work)
    if as_json:
        print_json(user)
    else:
        operator = ", platform admin" if user["is_platform_admin"] else ""
        stdout.print(f"user {user['email']} ({user['role']}{operator}) created")


def list_users(tenant_id: TenantOption = None, as_json: JsonOption = False) -> None:
    """List a tenant's users with their role and whether they may log in."""

    async def work(context: EngineContext) -> list[UserItem]:
        async def load(session: AsyncSession) -> list[User]:
            return await users.list_users(session, await tenant_or_only_one(session, tenant_id))

        found = await in_session(context, load)
        return [UserItem.model_validate(user) for user in found]

    items = run_engine(work)
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    table = support_table("id", "email", "role", "active", "created")
    for item in items:
        table.add_row(
            item.id, item.email, item.role, "yes" if item.is_active else "no", f"{item.created_at:%Y-%m-%d}"
        )
    print_table(table)


def deactivate_user(
    user_id: Annotated[str, typer.Argument(help="The user's id (list-users shows it).")],
    tenant_id: Annotated[str, typer.Option()],
    as_json: JsonOption = False,
) -> None:
    """Stop a user from logging in; their tokens stop working at once."""

    async def work(context: EngineContext) -> UserItem:
        user = await in_session(context, lambda s: users.deactivate_user(s, tenant_id, user_id))
        return UserItem.model_validate(user)

    item = run_engine(work)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"user {item.email} deactivated; their sessions have ended")


def create_api_key(
    tenant_id: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    role: Annotated[str, typer.Option(help="admin, supervisor or agent.")] = "admin",
    scope: Annotated[
        list[str] | None, typer.Option(help="Limit the key to this scope (repeat for several).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key for machine access; the key is shown once."""

    async def work(context: EngineContext) -> CreatedApiKey:
        key, raw = await in_session(
            context, lambda s: tenancy_service.create_api_key(s, tenant_id, name, role=role, scopes=scope)
        )
        return CreatedApiKey(**ApiKeyItem.model_validate(key).model_dump(), api_key=raw)

    created = run_engine(work)
    if as_json:
        print_json(created.model_dump(mode="json"))
    else:
        stdout.print(f"API key {created.name}: {created.api_key}  (store it now; it is not shown again)")


def list_api_keys(tenant_id: TenantOption = None, as_json: JsonOption = False) -> None:
    """List a tenant's API keys (their first characters, never the keys), revoked ones too."""

    async def work(context: EngineContext) -> list[ApiKeyItem]:
        async def load(session: AsyncSession) -> list[ApiKey]:
            return await tenancy_service.list_api_keys(session, await tenant_or_only_one(session, tenant_id))

        keys = await in_session(context, load)
        return [ApiKeyItem.model_validate(key) for key in keys]

    items = run_engine(work)
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    table = support_table("id", "name", "starts with", "role", "created", "revoked")
    for item in items:
        revoked = f"{item.revoked_at:%Y-%m-%d %H:%M}" if item.revoked_at else ""
        table.add_row(
            item.id, item.name, item.prefix, item.role, f"{item.created_at:%Y-%m-%d %H:%M}", revoked
        )
    print_table(table)


def revoke_api_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (list-api-keys shows it).")],
    tenant_id: Annotated[str, typer.Option()],
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key: its next request is refused."""

    async def work(context: EngineContext) -> ApiKeyItem:
        key = await in_session(context, lambda s: tenancy_service.revoke_api_key(s, tenant_id, key_id))
        return ApiKeyItem.model_validate(key)

    item = run_engine(work)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"API key {item.name} ({item.prefix}...) revoked")
