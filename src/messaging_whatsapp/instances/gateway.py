"""Instances on the unofficial gateways (Evolution API, WuzAPI): create, connect, status, list.

Creating is one write: the binding is added in a transaction (which gives our instance id and its
webhook secret, so the gateway can be told the per-instance webhook URL), the gateway creates the
instance, the token it returns becomes the binding's ``api_key``, and only then does the
transaction commit. A gateway that refuses leaves no binding behind. The transaction is open for
the one gateway call (bounded by the providers' timeouts), which on SQLite holds the write lock that
long: acceptable for an operator command run once per number.

Connecting an existing binding first points the gateway's webhook at us again (an instance made
elsewhere, or by an older engine, then reports here too) and then asks for a QR code, or for a
pairing code when a phone number is given.

Nothing here prints or knows about the command line; errors are EngineError (our side) or the
adapters' SendError (the gateway's side).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.batch import ConnectionChange
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import EngineError, InvalidInput, NotFound
from messaging_whatsapp.instances.announcements import connection_event
from messaging_whatsapp.instances.connections import apply_connection_changes
from messaging_whatsapp.instances.models import InstanceStatus as BindingStatus
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.schemas import GatewayCreate, InstanceBind, checked_api_url
from messaging_whatsapp.instances.service import (
    bind_instance,
    decrypt_credentials,
    get_instance,
    refuse_unbound,
    sender_account,
    webhook_url,
)
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.phones import InvalidPhone, canonical_phone
from messaging_whatsapp.providers.base import ConnectChallenge, GatewayInstance, GatewayProvider, ProviderName
from messaging_whatsapp.providers.events import ConnectionState
from messaging_whatsapp.providers.evolution_api import evolution_api
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.providers.outbound import SenderAccount, SendError
from messaging_whatsapp.providers.wuzapi_api import wuzapi_api

GATEWAYS: dict[ProviderName, GatewayProvider] = {
    ProviderName.EVOLUTION: evolution_api,
    ProviderName.WUZAPI: wuzapi_api,
}
# Stands in for the instance's own token between binding and the gateway's answer; never committed.
_PENDING_TOKEN = "pending-gateway-token"
_MIN_PHONE_DIGITS = 8
_MAX_PHONE_DIGITS = 15


@dataclass(frozen=True, slots=True)
class GatewayLogin:
    """How to reach a gateway before a binding exists (creating, listing).

    ``api_key`` is Evolution's global key (``AUTHENTICATION_API_KEY``); ``admin_token`` is WuzAPI's
    ``WUZAPI_ADMIN_TOKEN``. Each provider uses its own and ignores the other.
    """

    api_url: str | None
    api_key: str | None = None
    admin_token: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """Which bound instance: by our id or by its name on the gateway (exactly one is set)."""

    instance_id: str | None = None
    instance_name: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedInstance:
    """A new gateway instance, bound; ``webhook_url`` carries the instance's secret."""

    instance: WhatsAppInstance
    webhook_url: str
    gateway: GatewayInstance
    # Whether the gateway gave the instance its own token (stored as the binding's api_key).
    own_token: bool


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """The instance and how to link a phone to it."""

    instance: WhatsAppInstance
    challenge: ConnectChallenge


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """The state the gateway reports, next to the binding (whose state the webhooks keep)."""

    instance: WhatsAppInstance
    gateway: GatewayInstance


@dataclass(frozen=True, slots=True)
class ListedInstance:
    """An instance the gateway knows, and the binding that uses it here, if any."""

    gateway: GatewayInstance
    bound_instance_id: str | None


class GatewaySaveError(EngineError):
    """The gateway created the instance but the binding could not be committed."""

    code = "gateway_orphan"


def gateway_for(provider: ProviderName) -> GatewayProvider:
    """The adapter of a gateway provider; InvalidInput for the official APIs and the simulator."""
    gateway = GATEWAYS.get(provider)
    if gateway is None:
        raise InvalidInput(f"{provider.value} is not a QR-code gateway (use evolution or wuzapi)")
    return gateway


@asynccontextmanager
async def _http(context: EngineContext, client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The given client, or a new guarded one (a gateway's address is the tenant's to give),
    closed afterwards."""
    if client is not None:
        yield client
        return
    async with provider_client(guarded=not context.settings.outbound_allow_private) as own:
        yield own


def _clean_url(value: str | None) -> str | None:
    value = (value or "").strip()
    return value.rstrip("/") or None


def login_account(
    provider: ProviderName,
    login: GatewayLogin,
    *,
    instance_name: str | None = None,
    display_number: str = "",
) -> SenderAccount:
    """The account for admin calls: Evolution's global key as api_key, WuzAPI's as auth_token."""
    gateway_for(provider)
    api_url = _clean_url(login.api_url)
    missing: list[str] = []
    if api_url is None:
        missing.append(
            "--api-url" + (" (or EVOLUTION_API_URL)" if provider is ProviderName.EVOLUTION else "")
        )
    if provider is ProviderName.EVOLUTION and not login.api_key:
        missing.append("--api-key (or EVOLUTION_API_KEY)")
    if provider is ProviderName.WUZAPI and not login.admin_token:
        missing.append("--admin-token")
    if missing or api_url is None:
        raise InvalidInput(f"{provider.value} needs {', '.join(missing)}")
    try:
        api_url = checked_api_url(api_url)
    except ValueError as exc:
        raise InvalidInput(f"--{exc}".replace("--api_url", "--api-url")) from None
    if provider is ProviderName.EVOLUTION:
        return SenderAccount(
            display_number=display_number, api_url=api_url, instance_name=instance_name, api_key=login.api_key
        )
    return SenderAccount(
        display_number=display_number,
        api_url=api_url,
        instance_name=instance_name,
        auth_token=login.admin_token,
    )


def _store_token(context: EngineContext, instance: WhatsAppInstance, token: str) -> None:
    credentials = decrypt_credentials(instance, context.cipher)
    credentials["api_key"] = token
    instance.credentials_encrypted = context.cipher.encrypt(json.dumps(credentials))


async def create_instance(
    context: EngineContext,
    tenant_id: str,
    provider: ProviderName,
    login: GatewayLogin,
    *,
    instance_name: str | None,
    display_number: str = "",
    name: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> CreatedInstance:
    """Create the instance on the gateway and bind it to the tenant, all or nothing.

    The instance's own token (Evolution's hash, WuzAPI's user token) becomes its api_key; an
    Evolution that returns none keeps the global key, which works for instance calls too.
    """
    gateway = gateway_for(provider)
    instance_name = (instance_name or "").strip()
    if not instance_name:
        flag = "--instance-name" + (
            " (or EVOLUTION_INSTANCE_NAME)" if provider is ProviderName.EVOLUTION else ""
        )
        raise InvalidInput(f"{provider.value} needs {flag}")
    account = login_account(provider, login, instance_name=instance_name, display_number=display_number)
    bind = InstanceBind(
        provider=provider,
        display_number=display_number,
        name=name,
        instance_name=instance_name,
        api_url=account.api_url,
        api_key=_PENDING_TOKEN,
    )
    async with context.sessions() as session:
        try:
            instance, url = await bind_instance(session, context.cipher, context.settings, tenant_id, bind)
            secret = decrypt_credentials(instance, context.cipher)["webhook_secret"]
            async with _http(context, client) as http:
                created = await gateway.create_instance(http, account, url, secret)
            token = created.token or (login.api_key if provider is ProviderName.EVOLUTION else None)
            if not token:
                raise InvalidInput(f"{provider.value} created {instance_name!r} but returned no token for it")
            _store_token(context, instance, token)
            instance.connection_state = created.state.value
        except BaseException:
            await session.rollback()
            raise
        try:
            await session.commit()
        except SQLAlchemyError as exc:
            raise GatewaySaveError(
                f"{provider.value} created instance {instance_name!r} but the binding could not be saved "
                f"({type(exc).__name__}); bind it with bind-tenant and connect it again"
            ) from exc
    return CreatedInstance(instance=instance, webhook_url=url, gateway=created, own_token=bool(created.token))


async def find_instance(session: AsyncSession, provider: ProviderName, ref: InstanceRef) -> WhatsAppInstance:
    """The bound instance of this gateway by id or by name; NotFound otherwise."""
    if bool(ref.instance_id) == bool(ref.instance_name):
        raise InvalidInput("give exactly one of --instance-id and --instance-name")
    if ref.instance_id:
        instance = await session.get(WhatsAppInstance, ref.instance_id)
        if instance is None:
            raise NotFound(f"instance {ref.instance_id} not found")
        refuse_unbound(instance)
        if instance.provider != provider.value:
            raise InvalidInput(
                f"instance {ref.instance_id} is a {instance.provider} instance, not {provider.value}"
            )
        return instance
    instance = await session.scalar(
        select(WhatsAppInstance).where(
            WhatsAppInstance.provider == provider.value,
            WhatsAppInstance.routing_key == ref.instance_name,
            WhatsAppInstance.status != BindingStatus.UNBOUND.value,
        )
    )
    if instance is None:
        raise NotFound(f"no {provider.value} instance named {ref.instance_name!r} is bound")
    return instance


async def _bound(
    context: EngineContext, provider: ProviderName, ref: InstanceRef
) -> tuple[WhatsAppInstance, dict[str, str], SenderAccount]:
    async with context.sessions() as session:
        instance = await find_instance(session, provider, ref)
    credentials = decrypt_credentials(instance, context.cipher)
    if not instance.api_url:
        raise InvalidInput(f"instance {instance.id} has no gateway URL (api_url); bind it again")
    return instance, credentials, sender_account(instance, credentials, context.settings)


def pairing_phone(raw: str) -> str:
    """The phone to pair as digits, exactly as typed (no ninth-digit rewriting: it must match the
    number the WhatsApp account is registered with)."""
    digits = "".join(char for char in raw if char.isdigit())
    if not _MIN_PHONE_DIGITS <= len(digits) <= _MAX_PHONE_DIGITS:
        raise InvalidInput(f"not a phone number for pairing: {raw!r} (country code and number, digits only)")
    return digits


async def connect_instance(
    context: EngineContext,
    provider: ProviderName,
    ref: InstanceRef,
    *,
    phone: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> ConnectResult:
    """Point the instance's webhook at us, then start linking: a QR code, or a pairing code."""
    gateway = gateway_for(provider)
    digits = pairing_phone(phone) if phone is not None else None
    instance, credentials, account = await _bound(context, provider, ref)
    url = webhook_url(instance, credentials, context.settings.public_url)
    async with _http(context, client) as http:
        await gateway.register_webhook(http, account, url, credentials["webhook_secret"])
        challenge = await gateway.connect(http, account, digits)
    return ConnectResult(instance=instance, challenge=challenge)


async def instance_status(
    context: EngineContext,
    provider: ProviderName,
    ref: InstanceRef,
    *,
    client: httpx.AsyncClient | None = None,
) -> InstanceStatus:
    """The bound instance's connection state as its gateway sees it; a number bound before its
    phone was linked takes the linked phone's number."""
    gateway = gateway_for(provider)
    instance, _credentials, account = await _bound(context, provider, ref)
    async with _http(context, client) as http:
        state = await gateway.status(http, account)
        owner = state.owner
        if not instance.display_number and state.state is ConnectionState.OPEN and not owner:
            # Evolution's state call names no phone; its instance listing does.
            listed = await gateway.list_instances(http, account)
            owner = next((row.owner for row in listed if row.name == instance.instance_name), None)
    if owner and not instance.display_number:
        await _learn_number(context, instance, owner)
    return InstanceStatus(instance=instance, gateway=state)


async def _learn_number(context: EngineContext, instance: WhatsAppInstance, owner: str) -> None:
    try:
        number = canonical_phone(f"+{owner.removeprefix('+')}")
    except InvalidPhone:
        return
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(WhatsAppInstance)
            .where(WhatsAppInstance.id == instance.id, WhatsAppInstance.display_number == "")
            .values(display_number=number)
        )
    instance.display_number = number


async def list_gateway_instances(
    context: EngineContext,
    provider: ProviderName,
    login: GatewayLogin,
    *,
    client: httpx.AsyncClient | None = None,
) -> list[ListedInstance]:
    """Every instance the gateway knows, each with the binding here that uses it (same URL, name)."""
    gateway = gateway_for(provider)
    account = login_account(provider, login)
    async with _http(context, client) as http:
        instances = await gateway.list_instances(http, account)
    async with context.sessions() as session:
        rows = await session.execute(
            select(WhatsAppInstance.routing_key, WhatsAppInstance.id, WhatsAppInstance.api_url).where(
                WhatsAppInstance.provider == provider.value,
                WhatsAppInstance.status != BindingStatus.UNBOUND.value,
            )
        )
        bound = {key: id_ for key, id_, url in rows if _clean_url(url) == account.api_url}
    return [ListedInstance(gateway=item, bound_instance_id=bound.get(item.name)) for item in instances]


async def connect_number(
    context: EngineContext,
    tenant_id: str,
    instance_id: str,
    *,
    client: httpx.AsyncClient | None = None,
) -> ConnectResult:
    """Start (or go on) linking the tenant's gateway number by QR code, as the web page does: the
    state the gateway answers is stored and announced, so every screen shows it, and once linked
    a number bound without its phone number learns it; a gateway that refuses or cannot be reached
    is InvalidInput naming why (its address, its key)."""
    async with context.sessions() as session:
        instance = await get_instance(session, tenant_id, instance_id)
        refuse_unbound(instance)
    provider = ProviderName(instance.provider)
    ref = InstanceRef(instance_id=instance.id)
    try:
        result = await connect_instance(context, provider, ref, client=client)
        if result.challenge.state is ConnectionState.OPEN and not instance.display_number:
            # Bound before its phone was linked: the linked phone's number is learnt now.
            await instance_status(context, provider, ref, client=client)
    except SendError as exc:
        raise InvalidInput(f"{provider.value} refused to connect: {exc}", code="gateway_error") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise InvalidInput(
            f"{provider.value} could not be reached at {instance.api_url} ({type(exc).__name__})",
            code="gateway_error",
        ) from exc
    if result.challenge.state.value != instance.connection_state:
        await _record_connection(context, instance, result.challenge.state)
    return result


async def _record_connection(
    context: EngineContext, instance: WhatsAppInstance, state: ConnectionState
) -> None:
    """Store the state the gateway answered (unless a later webhook's is stored) and announce it:
    the page's card shows "connecting" at once, as the webhook may come only with the next QR."""
    change = ConnectionChange(instance.id, state, None, utcnow(), instance.tenant_id)
    async with context.sessions() as session:
        applied = await apply_connection_changes(session, [change])
        events = [connection_event(instance.tenant_id, item) for item in applied]
        records = await write_outbox(session, events, context.names.events)
        await session.commit()
    await relay_outbox(context, records)


async def create_number(
    context: EngineContext, tenant_id: str, body: GatewayCreate, *, client: httpx.AsyncClient | None = None
) -> CreatedInstance:
    """Create the number's instance on its gateway and bind it to the tenant, as the web page does
    (create_instance, with the gateway's refusals and silences as InvalidInput naming why)."""
    provider = body.provider
    gateway_for(provider)
    login = GatewayLogin(api_url=body.api_url, api_key=body.api_key, admin_token=body.admin_token)
    try:
        return await create_instance(
            context,
            tenant_id,
            provider,
            login,
            instance_name=body.instance_name,
            display_number=body.display_number,
            name=body.name,
            client=client,
        )
    except SendError as exc:
        raise InvalidInput(f"{provider.value} refused to create it: {exc}", code="gateway_error") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise InvalidInput(
            f"{provider.value} could not be reached at {body.api_url} ({type(exc).__name__})",
            code="gateway_error",
        ) from exc
