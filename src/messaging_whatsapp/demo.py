"""The demo tenant `make run` prints: a login and a simulator number, created once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy.models import User, UserRole

DEMO_EMAIL = "admin@demo.local"
# Local embedded use only: the server binds 127.0.0.1 by default.
DEMO_PASSWORD = "demo-password"
DEMO_INSTANCE = "demo-simulator"


@dataclass(frozen=True, slots=True)
class DemoTenant:
    """How to reach the demo tenant."""

    tenant_id: str
    email: str
    password: str
    instance_id: str
    webhook_url: str


async def ensure_demo_tenant(context: EngineContext) -> DemoTenant:
    """Create the demo tenant, its admin and a simulator number unless they exist."""
    async with context.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
        if user is None:
            tenant = await tenancy_service.create_tenant(session, "Demo")
            user = await tenancy_service.create_user(
                session, tenant.id, DEMO_EMAIL, DEMO_PASSWORD, UserRole.ADMIN.value
            )
        instance = await session.scalar(
            select(WhatsAppInstance).where(
                WhatsAppInstance.provider == ProviderName.SIMULATOR.value,
                WhatsAppInstance.routing_key == DEMO_INSTANCE,
            )
        )
        if instance is None:
            bind = InstanceBind(
                provider=ProviderName.SIMULATOR, display_number="+5511940028922", instance_name=DEMO_INSTANCE
            )
            instance, url = await instances_service.bind_instance(
                session, context.cipher, context.settings, user.tenant_id, bind
            )
        else:
            credentials = instances_service.decrypt_credentials(instance, context.cipher)
            url = instances_service.webhook_url(instance, credentials, context.settings.public_url)
    return DemoTenant(user.tenant_id, DEMO_EMAIL, DEMO_PASSWORD, instance.id, url)
