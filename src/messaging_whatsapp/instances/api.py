"""Instances of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.instances import bindings, gateway, service
from messaging_whatsapp.instances.announcements import status_event
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.schemas import (
    BoundInstance,
    ConnectItem,
    GatewayCreate,
    InstanceBind,
    InstanceItem,
    InstanceUpdate,
)
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.pagination import Page
from messaging_whatsapp.tenancy.deps import NumberReader, NumberWriter

router = APIRouter(prefix="/api/v1/instances", tags=["instances"])


@router.get("")
async def list_instances(session: DbSession, principal: NumberReader) -> Page[InstanceItem]:
    """Every instance of the tenant with its connection state and health (a tenant has few)."""
    instances = await service.list_instances(session, principal.tenant_id)
    return Page(items=[InstanceItem.of(instance, utcnow()) for instance in instances])


@router.post("", status_code=201)
async def bind_number(
    body: InstanceBind, session: DbSession, context: Context, principal: NumberWriter
) -> BoundInstance:
    """Bind a number of the tenant through a provider (admins); what it needs depends on the
    provider. The answer's webhook_url is the one to give the provider; secrets are never returned."""
    instance, url = await service.bind_instance(
        session, context.cipher, context.settings, principal.tenant_id, body
    )
    await session.commit()
    return BoundInstance(**InstanceItem.of(instance, utcnow()).model_dump(), webhook_url=url)


@router.post("/gateway", status_code=201)
async def create_gateway_number(
    body: GatewayCreate, context: Context, principal: NumberWriter
) -> BoundInstance:
    """Create a number on its QR-code gateway (Evolution API with its global key, WuzAPI with its
    admin token) and bind it, all or nothing (admins); then connect it to show its QR code."""
    created = await gateway.create_number(context, principal.tenant_id, body)
    item = InstanceItem.of(created.instance, utcnow())
    return BoundInstance(**item.model_dump(), webhook_url=created.webhook_url)


@router.post("/{instance_id}/connect")
async def connect_number(instance_id: str, context: Context, principal: NumberWriter) -> ConnectItem:
    """Link a phone to a QR-code gateway's number (Evolution API, WuzAPI; admins): the QR code to
    scan while the gateway says connecting; ask again for a fresh one, as gateways rotate it."""
    result = await gateway.connect_number(context, principal.tenant_id, instance_id)
    return ConnectItem.of(result.instance.id, result.challenge)


@router.get("/{instance_id}")
async def get_instance(instance_id: str, session: DbSession, principal: NumberReader) -> InstanceItem:
    """One instance of the tenant."""
    return InstanceItem.of(await service.get_instance(session, principal.tenant_id, instance_id), utcnow())


@router.post("/{instance_id}/pause")
async def pause_instance(
    instance_id: str, session: DbSession, principal: NumberWriter, context: Context
) -> InstanceItem:
    """Stop sending through the instance until it is resumed (messages wait, then fail)."""
    instance = await service.set_instance_status(
        session, principal.tenant_id, instance_id, InstanceStatus.PAUSED
    )
    return await _announced(session, context, instance)


@router.post("/{instance_id}/resume")
async def resume_instance(
    instance_id: str, session: DbSession, principal: NumberWriter, context: Context
) -> InstanceItem:
    """Send through the instance again (after the provider's refusal was fixed): its errors in a row
    are forgotten and its health score lifted to 60 at least (logged)."""
    instance = await service.set_instance_status(
        session, principal.tenant_id, instance_id, InstanceStatus.ACTIVE
    )
    return await _announced(session, context, instance)


async def _announced(
    session: AsyncSession, context: EngineContext, instance: WhatsAppInstance
) -> InstanceItem:
    """The instance's item; its new status announced once stored (written with it, relayed
    after the commit)."""
    item = InstanceItem.of(instance, utcnow())
    records = await write_outbox(session, [status_event(instance)], context.names.events)
    await session.commit()
    await relay_outbox(context, records)
    return item


@router.patch("/{instance_id}")
async def update_instance(
    instance_id: str, body: InstanceUpdate, session: DbSession, context: Context, principal: NumberWriter
) -> InstanceItem:
    """Change a number's credentials or settings (admins); what is left out stays. Secrets are
    never returned. Webhooks and sends use the change within about two seconds, in every process."""
    instance = await bindings.update_instance(
        session, context.cipher, context.settings, principal.tenant_id, instance_id, body
    )
    return InstanceItem.of(instance, utcnow())


@router.post("/{instance_id}/unbind")
async def unbind_instance(
    instance_id: str, session: DbSession, context: Context, principal: NumberWriter
) -> InstanceItem:
    """Take the number off the tenant (admins): nothing more is sent or received through it, its
    webhook URL stops working, its conversations and messages stay. Binding it again brings it back."""
    instance = await bindings.unbind_instance(session, context.cipher, principal.tenant_id, instance_id)
    return InstanceItem.of(instance, utcnow())
