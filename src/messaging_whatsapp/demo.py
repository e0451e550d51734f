"""The demo tenant `make run` prints: a login and a simulator number, created once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
# Three simulated numbers, so the demo shows sends spread over several numbers.
DEMO_NUMBERS = (
    (DEMO_INSTANCE, "+5511940028922"),
    ("demo-simulator-2", "+5511940028923"),
    ("demo-simulator-3", "+5521940028924"),
)


@dataclass(frozen=True, slots=True)
class DemoTenant:
    """How to reach the demo tenant."""

    tenant_id: str
    email: str
    password: str
    instance_id: str
    webhook_url: str
    instance_ids: tuple[str, ...]


async def ensure_demo_tenant(context: EngineContext) -> DemoTenant:
    """Create the demo tenant, its admin and a simulator number unless they exist."""
    async with context.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
        if user is None:
            tenant = await tenancy_service.create_tenant(session, "Demo")
            user = await tenancy_service.create_user(
                session, tenant.id, DEMO_EMAIL, DEMO_PASSWORD, UserRole.ADMIN.value
            )
        bound = [
            await _ensure_number(context, session, user.tenant_id, name, number)
            for name, number in DEMO_NUMBERS
        ]
    first_id, first_url = bound[0]
    return DemoTenant(
        user.tenant_id, DEMO_EMAIL, DEMO_PASSWORD, first_id, first_url, tuple(i for i, _ in bound)
    )


async def _ensure_number(
    context: EngineContext, session: AsyncSession, tenant_id: str, name: str, number: str
) -> tuple[str, str]:
    """A simulator number of the demo tenant: (instance id, webhook URL)."""
    instance = await session.scalar(
        select(WhatsAppInstance).where(
            WhatsAppInstance.provider == ProviderName.SIMULATOR.value, WhatsAppInstance.routing_key == name
        )
    )
    if instance is None:
        bind = InstanceBind(provider=ProviderName.SIMULATOR, display_number=number, instance_name=name)
        instance, url = await instances_service.bind_instance(
            session, context.cipher, context.settings, tenant_id, bind
        )
        return instance.id, url
    credentials = instances_service.decrypt_credentials(instance, context.cipher)
    return instance.id, instances_service.webhook_url(instance, credentials, context.settings.public_url)
