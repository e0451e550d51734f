"""The demo: the tenant `make run` prints (a login and three simulator numbers, created once), and
`demo`, which sends through them and shows the receipts coming back live."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.live import Live
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.automation import service as automation_service
from messaging_whatsapp.automation.schemas import BusinessHoursIn, RuleIn
from messaging_whatsapp.cli.messages import FINAL_STATUSES, message_statuses, queue_text
from messaging_whatsapp.cli.support import configure_logging, fail, run_engine, stderr, stdout
from messaging_whatsapp.config import Settings, get_settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.inbox.models import Message
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.models import AiMode, WhatsAppInstance
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.knowledge import service as knowledge_service
from messaging_whatsapp.knowledge.chunking import chunk_prose
from messaging_whatsapp.knowledge.embeddings import embedder_for
from messaging_whatsapp.knowledge.models import DocumentKind
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.events import DeliveryStatus
from messaging_whatsapp.providers.meta_cloud.templates import (
    MessageTemplate,
    TemplateComponent,
    TemplateParameter,
    template_registry,
)
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.templates.service import ensure_local
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy import users
from messaging_whatsapp.tenancy.models import User, UserRole

# Once nothing has moved for this long, the demo is over (not every message is read).
SETTLED_AFTER = 3.0
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

DEMO_FAQ_TITLE = "Perguntas frequentes da Loja Demo"
DEMO_FAQ = """
## Qual o horário de atendimento? Que horas vocês abrem?
Abrimos de segunda a sexta, das 8h às 18h, e aos sábados, das 9h às 13h. Não abrimos aos domingos
nem nos feriados nacionais.

## Qual o prazo de entrega? Quanto custa o frete?
Entregamos em todo o Brasil pelos Correios e por transportadora. Na cidade de São Paulo (SP) o
prazo de entrega é de 1 a 2 dias úteis; nas demais capitais, de 3 a 7 dias úteis. O frete é grátis
nas compras acima de R$ 199,00.

## Posso trocar ou devolver um produto?
Você pode trocar ou devolver um produto em até 30 dias depois de recebê-lo, sem custo, desde que
esteja sem uso e na embalagem original. Basta pedir a troca aqui pelo WhatsApp com o número do
pedido.

## Quais as formas de pagamento? Aceitam Pix?
Aceitamos Pix (com 5% de desconto), cartão de crédito em até 6 vezes sem juros e boleto bancário.

## Como rastrear meu pedido?
O código de rastreio é enviado por e-mail assim que o pedido sai do nosso depósito, em até 2 dias
úteis depois da confirmação do pagamento.
"""

# The demo's templates, declared in the registry as seed 001 shows and stored (approved) for the
# first simulator number, so the templates page and the inbox's template form have something.
DEMO_TEMPLATES = (
    template_registry.register(
        MessageTemplate(
            name="pedido_enviado",
            language="pt_BR",
            category="UTILITY",
            components=[
                TemplateComponent(
                    type="body",
                    text="Olá {{1}}, seu pedido {{2}} saiu para entrega.",
                    parameters=[
                        TemplateParameter(name="customer_name"),
                        TemplateParameter(name="order_number"),
                    ],
                )
            ],
        )
    ),
    template_registry.register(
        MessageTemplate(
            name="boas_vindas",
            language="pt_BR",
            category="MARKETING",
            components=[
                TemplateComponent(
                    type="body",
                    text="Olá {{1}}! Que bom ter você por aqui. Como podemos ajudar?",
                    parameters=[TemplateParameter(name="customer_name")],
                )
            ],
        )
    ),
)


@dataclass(frozen=True, slots=True)
class DemoNumber:
    """One of the demo's simulator numbers."""

    instance_id: str
    name: str
    number: str
    webhook_url: str


@dataclass(frozen=True, slots=True)
class DemoTenant:
    """How to reach the demo tenant."""

    tenant_id: str
    email: str
    password: str
    numbers: tuple[DemoNumber, ...]

    @property
    def instance_ids(self) -> tuple[str, ...]:
        """The numbers' instance ids."""
        return tuple(number.instance_id for number in self.numbers)


async def ensure_demo_tenant(context: EngineContext) -> DemoTenant:
    """Create the demo tenant, its admin and a simulator number unless they exist."""
    async with context.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
        if user is None:
            tenant = await tenancy_service.create_tenant(session, "Demo")
            user = await users.create_user(
                session, tenant.id, DEMO_EMAIL, DEMO_PASSWORD, UserRole.ADMIN.value
            )
            await _demo_automation(session, tenant.id)
            await _demo_knowledge(context, session, tenant.id)
        created = not await session.scalar(
            select(WhatsAppInstance.id).where(WhatsAppInstance.tenant_id == user.tenant_id).limit(1)
        )
        bound = [
            await _ensure_number(context, session, user.tenant_id, name, number)
            for name, number in DEMO_NUMBERS
        ]
        if created:
            await _demo_ai_modes(session, user.tenant_id, [instance_id for instance_id, _ in bound])
        first = await instances_service.get_instance(session, user.tenant_id, bound[0][0])
        for template in DEMO_TEMPLATES:
            await ensure_local(session, user.tenant_id, first, template, utcnow())
    numbers = tuple(
        DemoNumber(instance_id, name, number, url)
        for (instance_id, url), (name, number) in zip(bound, DEMO_NUMBERS, strict=True)
    )
    return DemoTenant(user.tenant_id, DEMO_EMAIL, DEMO_PASSWORD, numbers)


async def _demo_automation(session: AsyncSession, tenant_id: str) -> None:
    """Seed 001's greeting (the default buttons on every new ticket), weekday business hours and
    an out-of-hours reply, so the automation page and the inbox show them from the start."""
    now = utcnow()
    week = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    away = "Olá! Nosso horário é de segunda a sexta, das 8h às 18h. Respondemos assim que voltarmos."
    await automation_service.change_business_hours(
        session,
        tenant_id,
        BusinessHoursIn(schedule={**week, "sat": [["09:00", "13:00"]]}, away_message=away),
        now,
    )
    for rule in (
        {"name": "Saudação com botões", "when": {"type": "new_ticket"}, "then": {"type": "buttons"}},
        {
            "name": "Fora do horário",
            "position": 1,
            "when": {"type": "outside_hours"},
            "then": {"type": "text"},
        },
    ):
        await automation_service.create_rule(session, tenant_id, RuleIn.model_validate(rule), now)


async def _demo_knowledge(context: EngineContext, session: AsyncSession, tenant_id: str) -> None:
    """A small store FAQ in the knowledge base, for the AI replies to answer from. Its headings
    are the customers' own questions, as a FAQ should be: the handoff decision weighs the words a
    question shares with the base (README, "AI replies")."""
    drafts = chunk_prose(DEMO_FAQ_TITLE, DEMO_FAQ)
    embedder = embedder_for(context.settings)
    await knowledge_service.create_document(
        session, embedder, tenant_id, DEMO_FAQ_TITLE, DocumentKind.MARKDOWN, drafts
    )


async def _demo_ai_modes(session: AsyncSession, tenant_id: str, instance_ids: list[str]) -> None:
    """The first number suggests replies to the agent (drafts); the second answers by itself."""
    for instance_id, mode in zip(instance_ids, (AiMode.DRAFTS, AiMode.AUTO), strict=False):
        instance = await instances_service.get_instance(session, tenant_id, instance_id)
        instance.ai_mode = mode.value


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


async def announce_demo(context: EngineContext) -> None:
    """Create the demo tenant, login and simulator numbers once, and print how to use them."""
    demo = await ensure_demo_tenant(context)
    login_body = json.dumps({"email": demo.email, "password": demo.password})
    numbers = "".join(
        f"  simulator: {number.number} ({number.name}), instance {number.instance_id}\n"
        f"             webhook {number.webhook_url}\n"
        for number in demo.numbers
    )
    stderr.print(
        f"\n[bold]demo tenant[/bold] {demo.tenant_id}\n"
        f"  inbox:     {context.settings.public_url}/ (log in with the login below)\n"
        f"  login:     {demo.email} / {demo.password}\n"
        f"  token:     curl -s -X POST {context.settings.public_url}/api/v1/auth/login "
        f"-H 'content-type: application/json' -d '{login_body}'\n"
        f"{numbers}",
        highlight=False,
        soft_wrap=True,
    )


def demo(
    messages: Annotated[int, typer.Option(help="How many messages to send.", min=1, max=60)] = 9,
    wait: Annotated[float, typer.Option(help="Seconds to follow the receipts.")] = 30.0,
) -> None:
    """Show the engine end to end: three simulated numbers send, receipts come back live."""
    settings = get_settings()
    configure_logging(settings)
    # The live table tells the story; the engine's line per request and per message would
    # scroll it away.
    logging.getLogger("messaging_whatsapp").setLevel(max(logging.WARNING, logging.root.level))

    async def work(context: EngineContext) -> None:
        tenant = await ensure_demo_tenant(context)
        async with _engine_reachable(settings):
            ids = []
            for index in range(messages):
                request = SendMessageRequest(
                    to=f"+55119876500{index:02d}",
                    text=f"Olá! Mensagem de demonstração {index + 1}",
                    instance_id=tenant.instance_ids[index % len(tenant.instance_ids)],
                )
                ids.append((await queue_text(context, tenant.tenant_id, request)).message.id)
            await _follow(context, ids, wait)

    run_engine(work)


@contextlib.asynccontextmanager
async def _engine_reachable(settings: Settings) -> AsyncIterator[None]:
    """Use the engine at PUBLIC_URL, or run one in this process for as long as needed."""
    import httpx
    import uvicorn

    from messaging_whatsapp.api.app import Role, create_app
    from messaging_whatsapp.api.serving import server_config

    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            (await client.get(f"{settings.public_url}/healthz")).raise_for_status()
        stderr.print(f"using the engine at {settings.public_url}")
        yield
        return
    except httpx.HTTPError:
        pass
    address = urlsplit(settings.public_url)
    config = server_config(
        create_app(settings, Role.ALL),
        settings,
        host=address.hostname or "127.0.0.1",
        port=address.port or 80,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise fail(f"could not start an engine on {settings.public_url}")
        await asyncio.sleep(0.05)
    stderr.print(f"started an engine on {settings.public_url} for the demo")
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def _follow(context: EngineContext, message_ids: list[str], wait: float) -> None:
    """A live table of the messages' statuses until they settle (no change for a while) or time runs out."""
    deadline = time.monotonic() + wait
    last_change = time.monotonic()
    seen: dict[str, str] = {}
    with Live(console=stdout, refresh_per_second=8) as live:
        while time.monotonic() < deadline:
            rows = await message_statuses(context, message_ids)
            live.update(_status_table([rows[i] for i in message_ids if i in rows]))
            current = {row.id: row.status for row in rows.values()}
            if current != seen:
                seen, last_change = current, time.monotonic()
            if all(status in FINAL_STATUSES for status in current.values()):
                return
            # Not every message is read: once nothing has moved for a while, the demo is over.
            unsent = DeliveryStatus.QUEUED.value in current.values()
            if not unsent and time.monotonic() - last_change > SETTLED_AFTER:
                return
            await asyncio.sleep(0.15)


def _status_table(rows: list[Message]) -> Table:
    table = Table("message", "instance", "status", "sent", "delivered", "read", "error")
    colours = {"queued": "dim", "sent": "cyan", "delivered": "green", "read": "bold green", "failed": "red"}
    for row in rows:
        table.add_row(
            row.id[-8:],
            row.instance_id[-8:],
            f"[{colours.get(row.status, '')}]{row.status}[/]",
            _clock(row.sent_at),
            _clock(row.delivered_at),
            _clock(row.read_at),
            row.error_code or "",
        )
    return table


def _clock(at: datetime | None) -> str:
    return at.strftime("%H:%M:%S") if at else ""
