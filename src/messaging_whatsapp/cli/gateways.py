"""Commands for the QR-code gateways (Evolution API, WuzAPI): create an instance, connect a phone (QR
code or pairing code), list the gateway's instances, read one's state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import pydantic
import typer

from messaging_whatsapp.cli.gateway_views import (
    GATEWAY_NAMES,
    created_json,
    gateway_message,
    say,
    show_connect,
    show_created,
    show_listing,
    show_status,
)
from messaging_whatsapp.cli.support import JsonOption, T, fail, print_json, quiet_httpx, run_engine
from messaging_whatsapp.config import get_settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.instances import gateway
from messaging_whatsapp.instances.gateway import (
    ConnectResult,
    CreatedInstance,
    GatewayLogin,
    InstanceRef,
    InstanceStatus,
    ListedInstance,
)
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.outbound import SendError

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def _run(provider: ProviderName, work: Callable[[EngineContext], Awaitable[T]]) -> T:
    """run_engine, with the gateway's refusals and unreachable gateways as one-line errors too."""
    quiet_httpx()
    try:
        return run_engine(work)
    except SendError as exc:
        raise fail(gateway_message(provider, exc)) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise fail(f"{GATEWAY_NAMES[provider]}: {exc}") from None


def _warn_if_unreachable_public_url() -> None:
    public_url = get_settings().public_url
    if (urlsplit(public_url).hostname or "") in _LOOPBACK_HOSTS:
        say(
            f"note: PUBLIC_URL is {public_url}; a gateway on another host or in a container cannot "
            "post webhooks there (set PUBLIC_URL to an address it can reach)",
            to_stderr=True,
        )


def _ref(instance_id: str | None, instance_name: str | None) -> InstanceRef:
    if bool(instance_id) == bool(instance_name):
        raise fail("give exactly one of --instance-id and --instance-name")
    return InstanceRef(instance_id=instance_id, instance_name=instance_name)


def _secret(value: pydantic.SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


InstanceIdOption = Annotated[
    str | None, typer.Option("--instance-id", help="Our instance id (see list-bindings).")
]
InstanceNameOption = Annotated[
    str | None, typer.Option("--instance-name", help="The instance's name on the gateway.")
]
ShowQrOption = Annotated[bool, typer.Option("--show-qr", help="Draw the QR code in the terminal.")]
InvertQrOption = Annotated[
    bool, typer.Option("--invert-qr", help="Draw the QR code for a light terminal background.")
]
PairingOption = Annotated[
    str | None,
    typer.Option(
        "--pairing-code",
        metavar="PHONE",
        help="Ask for a pairing code for this phone (country code and number) instead of a QR code.",
    ),
]
NameOption = Annotated[str | None, typer.Option("--name", help="A label for the number.")]
DisplayNumberOption = Annotated[
    str | None, typer.Option("--display-number", help="The WhatsApp number to link (+CC..., or national).")
]


def evolution_create_instance(
    tenant_id: Annotated[str, typer.Option("--tenant-id", help="The tenant the number belongs to.")],
    display_number: Annotated[
        str | None,
        typer.Option(
            "--display-number",
            help="The WhatsApp number (+CC..., or national) [default: learnt once a phone is linked].",
        ),
    ] = None,
    instance_name: Annotated[
        str | None,
        typer.Option("--instance-name", help="Name on Evolution [default: EVOLUTION_INSTANCE_NAME]."),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Evolution's base URL [default: EVOLUTION_API_URL].")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Evolution's global API key [default: EVOLUTION_API_KEY]."),
    ] = None,
    name: NameOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an instance on Evolution API with our webhook and bind it to the tenant."""
    settings = get_settings()
    login = GatewayLogin(
        api_url=api_url or settings.evolution_api_url, api_key=api_key or _secret(settings.evolution_api_key)
    )

    async def work(context: EngineContext) -> CreatedInstance:
        return await gateway.create_instance(
            context,
            tenant_id,
            ProviderName.EVOLUTION,
            login,
            instance_name=instance_name or settings.evolution_instance_name,
            display_number=display_number or "",
            name=name,
        )

    created = _run(ProviderName.EVOLUTION, work)
    if as_json:
        print_json(created_json(created))
        return
    show_created(ProviderName.EVOLUTION, created)
    _warn_if_unreachable_public_url()
    say(f"next: messaging-whatsapp evolution-connect --instance-id {created.instance.id} --show-qr")


def evolution_connect(
    instance_id: InstanceIdOption = None,
    instance_name: InstanceNameOption = None,
    show_qr: ShowQrOption = False,
    pairing_code: PairingOption = None,
    invert_qr: InvertQrOption = False,
    as_json: JsonOption = False,
) -> None:
    """Point a bound Evolution instance's webhook at us and link a phone (QR or pairing code)."""
    ref = _ref(instance_id, instance_name)

    async def work(context: EngineContext) -> ConnectResult:
        return await gateway.connect_instance(context, ProviderName.EVOLUTION, ref, phone=pairing_code)

    result = _run(ProviderName.EVOLUTION, work)
    show_connect(
        ProviderName.EVOLUTION,
        result,
        show_qr=show_qr,
        pairing=pairing_code is not None,
        invert=invert_qr,
        as_json=as_json,
    )


def evolution_list_instances(
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Evolution's base URL [default: EVOLUTION_API_URL].")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Evolution's global API key [default: EVOLUTION_API_KEY]."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List every instance on Evolution API, and which are bound here."""
    settings = get_settings()
    login = GatewayLogin(
        api_url=api_url or settings.evolution_api_url, api_key=api_key or _secret(settings.evolution_api_key)
    )

    async def work(context: EngineContext) -> list[ListedInstance]:
        return await gateway.list_gateway_instances(context, ProviderName.EVOLUTION, login)

    show_listing(_run(ProviderName.EVOLUTION, work), as_json)


def evolution_instance_status(
    instance_id: InstanceIdOption = None,
    instance_name: InstanceNameOption = None,
    as_json: JsonOption = False,
) -> None:
    """A bound Evolution instance's connection state as the gateway reports it."""
    ref = _ref(instance_id, instance_name)

    async def work(context: EngineContext) -> InstanceStatus:
        return await gateway.instance_status(context, ProviderName.EVOLUTION, ref)

    show_status(_run(ProviderName.EVOLUTION, work), as_json)


def wuzapi_connect(
    instance_id: InstanceIdOption = None,
    instance_name: InstanceNameOption = None,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="Create the WuzAPI user first and bind it (needs --tenant-id, --instance-name, "
            "--display-number, --api-url, --admin-token).",
        ),
    ] = False,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id", help="With --create: the tenant.")] = None,
    display_number: DisplayNumberOption = None,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", envvar="WUZAPI_API_URL", help="With --create: WuzAPI's base URL."),
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            "--admin-token", envvar="WUZAPI_ADMIN_TOKEN", help="With --create: WuzAPI's admin token."
        ),
    ] = None,
    name: NameOption = None,
    show_qr: ShowQrOption = False,
    pairing_code: PairingOption = None,
    invert_qr: InvertQrOption = False,
    as_json: JsonOption = False,
) -> None:
    """Link a phone to a WuzAPI user (QR or pairing code); with --create, create and bind it first."""
    provider = ProviderName.WUZAPI
    if create:
        if instance_id:
            raise fail("--create makes a new instance: give --instance-name, not --instance-id")
        if not tenant_id or not instance_name or not display_number:
            raise fail("--create needs --tenant-id, --instance-name and --display-number")
    elif tenant_id or display_number:
        raise fail("--tenant-id and --display-number go with --create")
    ref = None if create else _ref(instance_id, instance_name)
    login = GatewayLogin(api_url=api_url, admin_token=admin_token)

    async def work(context: EngineContext) -> tuple[CreatedInstance | None, ConnectResult]:
        created = None
        target = ref
        if target is None:
            created = await gateway.create_instance(
                context,
                tenant_id or "",
                provider,
                login,
                instance_name=instance_name,
                display_number=display_number or "",
                name=name,
            )
            target = InstanceRef(instance_id=created.instance.id)
        try:
            result = await gateway.connect_instance(context, provider, target, phone=pairing_code)
        except SendError as exc:
            if created is None:
                raise
            raise EngineError(
                f"instance {instance_name} was created and bound as {created.instance.id}, but connecting "
                f"failed: {gateway_message(provider, exc)}; run wuzapi-connect --instance-id "
                f"{created.instance.id} again"
            ) from exc
        return created, result

    created, result = _run(provider, work)
    extra = None
    if created is not None:
        if as_json:
            extra = {"created": created_json(created)}
        else:
            show_created(provider, created)
            _warn_if_unreachable_public_url()
    show_connect(
        provider,
        result,
        show_qr=show_qr,
        pairing=pairing_code is not None,
        invert=invert_qr,
        as_json=as_json,
        extra=extra,
    )


def wuzapi_list_instances(
    api_url: Annotated[
        str | None, typer.Option("--api-url", envvar="WUZAPI_API_URL", help="WuzAPI's base URL.")
    ] = None,
    admin_token: Annotated[
        str | None, typer.Option("--admin-token", envvar="WUZAPI_ADMIN_TOKEN", help="WuzAPI's admin token.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List every WuzAPI user (instance), and which are bound here."""
    login = GatewayLogin(api_url=api_url, admin_token=admin_token)

    async def work(context: EngineContext) -> list[ListedInstance]:
        return await gateway.list_gateway_instances(context, ProviderName.WUZAPI, login)

    show_listing(_run(ProviderName.WUZAPI, work), as_json)


def wuzapi_instance_status(
    instance_id: InstanceIdOption = None,
    instance_name: InstanceNameOption = None,
    as_json: JsonOption = False,
) -> None:
    """A bound WuzAPI instance's session state as the gateway reports it."""
    ref = _ref(instance_id, instance_name)

    async def work(context: EngineContext) -> InstanceStatus:
        return await gateway.instance_status(context, ProviderName.WUZAPI, ref)

    show_status(_run(ProviderName.WUZAPI, work), as_json)
