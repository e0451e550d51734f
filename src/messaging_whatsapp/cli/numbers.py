"""A tenant's numbers: `bind-tenant`, `list-bindings`, `pause-instance`, `resume-instance`,
`update-binding`, `unbind` (the QR-code gateways' own commands are in cli/gateways.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.cli.support import (
    JsonOption,
    default_provider,
    fail,
    find_instance,
    in_session,
    print_json,
    print_table,
    run_engine,
    stdout,
    validation_message,
)
from messaging_whatsapp.cli.support import table as support_table
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances import bindings
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.models import InstanceStatus
from messaging_whatsapp.instances.schemas import BoundInstance, InstanceBind, InstanceItem, InstanceUpdate
from messaging_whatsapp.providers.base import provider_named


def bind_tenant(
    tenant_id: Annotated[str, typer.Option()],
    display_number: Annotated[
        str, typer.Option(help="The WhatsApp number: +CC..., or national, of the tenant's country.")
    ],
    provider: Annotated[
        str | None,
        typer.Option(
            help="meta, twilio, evolution, wuzapi or simulator (stub: the simulator) "
            "[default: WHATSAPP_PROVIDER, else simulator]."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A label for the number.")] = None,
    phone_number_id: Annotated[str | None, typer.Option(help="Meta: phone number id.")] = None,
    waba_id: Annotated[str | None, typer.Option(help="Meta: WhatsApp Business Account id.")] = None,
    access_token: Annotated[str | None, typer.Option(help="Meta: access token.")] = None,
    verify_token: Annotated[str | None, typer.Option(help="Meta: webhook verify token.")] = None,
    app_secret: Annotated[str | None, typer.Option(help="Meta: app secret (signatures).")] = None,
    account_sid: Annotated[str | None, typer.Option(help="Twilio: account SID.")] = None,
    auth_token: Annotated[str | None, typer.Option(help="Twilio: auth token.")] = None,
    instance_name: Annotated[str | None, typer.Option(help="Evolution / WuzAPI / simulator name.")] = None,
    api_url: Annotated[str | None, typer.Option(help="Evolution / WuzAPI: base URL.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Evolution API key / WuzAPI user token.")] = None,
    hmac_key: Annotated[str | None, typer.Option(help="WuzAPI: HMAC key for signed webhooks.")] = None,
    daily_limit: Annotated[int, typer.Option(help="Messages per day at most.")] = 1000,
    messaging_tier: Annotated[
        int | None,
        typer.Option(help="Meta/Twilio: the portfolio's 24 h unique-user limit (250, 2000, 10000, 100000)."),
    ] = 250,
    as_json: JsonOption = False,
) -> None:
    """Bind a WhatsApp number to a tenant through a provider; prints the webhook URL to configure."""
    chosen = default_provider() if provider is None else provider
    try:
        bind = InstanceBind(
            provider=provider_named(chosen),
            display_number=display_number,
            name=name,
            phone_number_id=phone_number_id,
            waba_id=waba_id,
            access_token=access_token,
            verify_token=verify_token,
            app_secret=app_secret,
            account_sid=account_sid,
            auth_token=auth_token,
            instance_name=instance_name,
            api_url=api_url,
            api_key=api_key,
            hmac_key=hmac_key,
            daily_limit=daily_limit,
            messaging_tier=messaging_tier,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None

    async def work(context: EngineContext) -> BoundInstance:
        async def bind_in(session: AsyncSession) -> BoundInstance:
            instance, url = await instances_service.bind_instance(
                session, context.cipher, context.settings, tenant_id, bind
            )
            item = InstanceItem.of(instance, utcnow())
            return BoundInstance(**item.model_dump(), webhook_url=url)

        return await in_session(context, bind_in)

    bound = run_engine(work)
    if as_json:
        print_json(bound.model_dump(mode="json"))
        return
    stdout.print(f"{bound.provider} number {bound.display_number} bound as instance {bound.id}")
    stdout.print(f"webhook URL: {bound.webhook_url}")


def list_bindings(
    tenant_id: Annotated[str | None, typer.Option(help="Only this tenant's numbers.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List bound numbers with their connection state and health."""

    async def work(context: EngineContext) -> list[InstanceItem]:
        async def load(session: AsyncSession) -> list[InstanceItem]:
            instances = await instances_service.list_instances(session, tenant_id)
            return [InstanceItem.of(instance, utcnow()) for instance in instances]

        return await in_session(context, load)

    items = run_engine(work)
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    table = support_table("id", "provider", "name", "number", "connection", "status", "health", "sent today")
    for item in items:
        table.add_row(
            item.id,
            item.provider,
            item.name,
            item.display_number,
            item.connection_state,
            item.status,
            f"{item.health_score:.0f}",
            str(item.msgs_sent_today),
        )
    print_table(table)


def _set_status(instance_id: str, status: InstanceStatus) -> InstanceItem:
    async def work(context: EngineContext) -> InstanceItem:
        async def change(session: AsyncSession) -> InstanceItem:
            found = await find_instance(session, instance_id)
            instance = await instances_service.set_instance_status(session, found.tenant_id, found.id, status)
            return InstanceItem.of(instance, utcnow())

        return await in_session(context, change)

    return run_engine(work)


def pause_instance(
    instance_id: Annotated[str, typer.Argument(help="The instance to pause (id or name).")],
    as_json: JsonOption = False,
) -> None:
    """Stop sending through an instance until it is resumed."""
    item = _set_status(instance_id, InstanceStatus.PAUSED)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"instance {item.id} ({item.display_number}) is {item.status}")


def resume_instance(
    instance_id: Annotated[str, typer.Argument(help="The instance to resume (id or name).")],
    as_json: JsonOption = False,
) -> None:
    """Send through an instance again, e.g. once the provider's refusal that paused it is fixed: its
    errors in a row are forgotten and its health score lifted to 60 at least."""
    item = _set_status(instance_id, InstanceStatus.ACTIVE)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(f"instance {item.id} ({item.display_number}) is {item.status}, health {item.health_score:g}")


ClearOption = Annotated[
    list[str] | None,
    typer.Option(
        "--clear",
        metavar="FIELD",
        help="Remove an optional setting: verify-token, app-secret, hmac-key, waba-id, messaging-tier "
        "(repeatable).",
    ),
]


def update_binding(
    instance_id: Annotated[str, typer.Argument(help="Its id or name (see list-bindings).")],
    name: Annotated[str | None, typer.Option(help="A label for the number.")] = None,
    display_number: Annotated[
        str | None, typer.Option(help="The WhatsApp number: +CC..., or national, of the tenant's country.")
    ] = None,
    phone_number_id: Annotated[str | None, typer.Option(help="Meta: phone number id.")] = None,
    waba_id: Annotated[str | None, typer.Option(help="Meta: WhatsApp Business Account id.")] = None,
    access_token: Annotated[str | None, typer.Option(help="Meta: access token.")] = None,
    verify_token: Annotated[str | None, typer.Option(help="Meta: webhook verify token.")] = None,
    app_secret: Annotated[str | None, typer.Option(help="Meta: app secret (signatures).")] = None,
    account_sid: Annotated[str | None, typer.Option(help="Twilio: account SID.")] = None,
    auth_token: Annotated[str | None, typer.Option(help="Twilio: auth token.")] = None,
    instance_name: Annotated[str | None, typer.Option(help="Evolution / WuzAPI / simulator name.")] = None,
    api_url: Annotated[str | None, typer.Option(help="Evolution / WuzAPI: base URL.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Evolution API key / WuzAPI user token.")] = None,
    hmac_key: Annotated[str | None, typer.Option(help="WuzAPI: HMAC key for signed webhooks.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone of the daily counters.")] = None,
    daily_limit: Annotated[int | None, typer.Option(help="Messages per day at most.")] = None,
    messaging_tier: Annotated[
        int | None, typer.Option(help="Meta/Twilio: the portfolio's 24 h unique-user limit.")
    ] = None,
    clear: ClearOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a bound number's credentials or settings (an expired token, a rotated auth token, a
    gateway that moved); what is not given stays. Secrets are never printed."""
    given: dict[str, str | int | None] = {
        key: value
        for key, value in {
            "name": name,
            "display_number": display_number,
            "phone_number_id": phone_number_id,
            "waba_id": waba_id,
            "access_token": access_token,
            "verify_token": verify_token,
            "app_secret": app_secret,
            "account_sid": account_sid,
            "auth_token": auth_token,
            "instance_name": instance_name,
            "api_url": api_url,
            "api_key": api_key,
            "hmac_key": hmac_key,
            "timezone": timezone,
            "daily_limit": daily_limit,
            "messaging_tier": messaging_tier,
        }.items()
        if value is not None
    }
    for flag in clear or []:
        field = flag.removeprefix("--").replace("-", "_")
        if field in given:
            raise fail(f"--clear {flag} and --{flag} contradict each other")
        given[field] = None
    if not given:
        raise fail("nothing to change: give at least one option (see --help)")
    try:
        update = InstanceUpdate(**given)
    except ValueError as exc:
        raise fail(validation_message(exc)) from None

    async def work(context: EngineContext) -> InstanceItem:
        async def change(session: AsyncSession) -> InstanceItem:
            found = await find_instance(session, instance_id)
            instance = await bindings.update_instance(
                session, context.cipher, context.settings, found.tenant_id, found.id, update
            )
            return InstanceItem.of(instance, utcnow())

        return await in_session(context, change)

    item = run_engine(work)
    changed = sorted(given)
    if as_json:
        print_json({**item.model_dump(mode="json"), "changed": changed})
        return
    stdout.print(f"instance {item.id} ({item.display_number}) updated: {', '.join(changed)}")


def unbind(
    instance_id: Annotated[str, typer.Argument(help="Its id or name (see list-bindings).")],
    as_json: JsonOption = False,
) -> None:
    """Take a number off its tenant: nothing more is sent or received through it and its webhook
    URL stops working; its conversations and messages stay. bind-tenant brings it back."""

    async def work(context: EngineContext) -> InstanceItem:
        async def change(session: AsyncSession) -> InstanceItem:
            found = await find_instance(session, instance_id)
            instance = await bindings.unbind_instance(session, context.cipher, found.tenant_id, found.id)
            return InstanceItem.of(instance, utcnow())

        return await in_session(context, change)

    item = run_engine(work)
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    stdout.print(
        f"instance {item.id} ({item.display_number}) is unbound: its webhook URL no longer works; "
        "bind-tenant with the same number brings it back"
    )
