"""The ASGI application: API, webhook and (in `all` role) the in-process workers."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from messaging_whatsapp.alerts import api as alerts_api
from messaging_whatsapp.analytics import api as analytics_api
from messaging_whatsapp.api import events, fake_ai, health, live
from messaging_whatsapp.api.access_log import AccessLog
from messaging_whatsapp.api.errors import install_error_handlers
from messaging_whatsapp.api.openapi import documented_openapi
from messaging_whatsapp.api.text_guard import RefuseUnstorableText
from messaging_whatsapp.assistant import api as assistant_api
from messaging_whatsapp.automation import api as automation_api
from messaging_whatsapp.campaigns import api as campaigns_api
from messaging_whatsapp.campaigns.dispatcher import Dispatcher
from messaging_whatsapp.config import Settings, get_settings
from messaging_whatsapp.context import EngineContext, settle_garbage_collector
from messaging_whatsapp.followups import api as followups_api
from messaging_whatsapp.inbox import api as inbox_api
from messaging_whatsapp.instances import api as instances_api
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.integrations import api as integrations_api
from messaging_whatsapp.integrations.tasks import WebhookWorker
from messaging_whatsapp.knowledge import api as knowledge_api
from messaging_whatsapp.notifications import api as notifications_api
from messaging_whatsapp.ops import api as ops_api
from messaging_whatsapp.ops.heartbeat import Heartbeat
from messaging_whatsapp.privacy import api as privacy_api
from messaging_whatsapp.sending import api as sending_api
from messaging_whatsapp.sending.intake import MessageIntake
from messaging_whatsapp.sending.ratelimit import open_rate_limiter
from messaging_whatsapp.sending.readmarks import ProviderReadMarks
from messaging_whatsapp.simulator import api as simulator_api
from messaging_whatsapp.simulator.service import Simulator
from messaging_whatsapp.templates import api as templates_api
from messaging_whatsapp.tenancy import api as tenancy_api
from messaging_whatsapp.tenancy.throttle import open_login_throttle
from messaging_whatsapp.web import (
    admin_pages,
    alerts_pages,
    analytics_pages,
    automation_pages,
    campaigns_pages,
    integrations_pages,
    knowledge_pages,
    notifications_pages,
    numbers_pages,
    ops_pages,
    templates_pages,
)
from messaging_whatsapp.web import docs as web_docs
from messaging_whatsapp.web import pages as web_pages
from messaging_whatsapp.web import session as web_session
from messaging_whatsapp.webhooks import api as webhooks_api
from messaging_whatsapp.webhooks.receiver import WebhookReceiver
from messaging_whatsapp.worker.inbound import run_inbound_workers
from messaging_whatsapp.worker.notifications import run_notifications_worker
from messaging_whatsapp.worker.scheduler import Scheduler
from messaging_whatsapp.worker.sender import Sender

logger = logging.getLogger(__name__)

# The engine exports Prometheus metrics itself (/metrics). FastAPI's native OpenTelemetry, left
# on, looks up the global providers on every request: about 3% of a webhook's CPU.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class Role(enum.StrEnum):
    """Which parts a server process runs."""

    ALL = "all"
    API = "api"
    WEBHOOK = "webhook"


# What each role runs, as its heartbeat names it (the operator's view lists them).
ROLE_PARTS = {
    Role.ALL: ("api", "webhook", "inbound", "sender", "dispatcher", "scheduler", "webhooks"),
    Role.API: ("api",),
    Role.WEBHOOK: ("webhook",),
}


def create_app(settings: Settings | None = None, role: Role = Role.ALL) -> FastAPI:
    """Build the app; its lifespan opens the engine context and, for `all`, starts the worker."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await EngineContext.open(settings)
        app.state.context = context
        # One instance cache for the process: the webhook and the simulator look numbers up in it.
        resolver = InstanceResolver.for_context(context)
        if role in (Role.ALL, Role.WEBHOOK):
            # The first webhooks wait for nothing: every number cached and the connections open
            # (a cold start made 64 concurrent first requests queue for over 100 ms).
            await resolver.warm()
            await context.streams.info(context.names.inbound)
        app.state.receiver = WebhookReceiver(resolver, context.streams, context.names.inbound)
        app.state.limiter = open_rate_limiter(settings)
        app.state.login_throttle = open_login_throttle(settings)
        app.state.simulator = Simulator(settings, resolver)
        app.state.intake = MessageIntake(context)
        app.state.read_marks = ProviderReadMarks(context)
        settle_garbage_collector()
        stop = asyncio.Event()
        heartbeat = Heartbeat(context, role.value, ROLE_PARTS[role])
        tasks = [asyncio.create_task(heartbeat.run(stop), name="heartbeat")]
        if role is Role.ALL:
            tasks.append(asyncio.create_task(run_inbound_workers(context, stop), name="inbound-workers"))
            # Events in (events:materials): an inbound consumer too, counted in the "inbound" part.
            tasks.append(asyncio.create_task(run_notifications_worker(context, stop), name="notifications"))
            tasks.append(asyncio.create_task(Sender(context).run(stop), name="sender"))
            tasks.append(asyncio.create_task(Dispatcher(context).run(stop), name="campaign-dispatcher"))
            tasks.append(asyncio.create_task(Scheduler(context).run(stop), name="scheduler"))
            # Events out over HTTP: fan-out of the events stream and the delivery pass.
            tasks.append(asyncio.create_task(WebhookWorker(context).run(stop), name="webhooks-out"))
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                try:
                    await asyncio.wait_for(task, timeout=10)
                except TimeoutError:
                    task.cancel()
            await app.state.intake.close()
            await app.state.read_marks.close()
            await app.state.simulator.close()
            await app.state.limiter.close()
            await app.state.login_throttle.close()
            await context.close()

    app = FastAPI(
        title="messaging-whatsapp",
        version="0.1.0",
        summary="Multi-tenant WhatsApp messaging engine",
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
        # Served by web/docs.py from vendored files: FastAPI's own pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(RefuseUnstorableText)
    # Outermost: every request is logged, the ones the guard refuses too.
    app.add_middleware(AccessLog)
    app.openapi = lambda: documented_openapi(app)  # type: ignore[method-assign]
    app.include_router(health.router)
    app.include_router(web_docs.router)
    app.mount(web_docs.STATIC_PREFIX, web_docs.static_files(), name="static")
    # The simulator stands in for a provider: reachable wherever PUBLIC_URL points. First in
    # line with the webhooks, matched before any of the API's routers (the hot paths).
    app.router.routes[:0] = simulator_api.routes
    if role in (Role.ALL, Role.WEBHOOK):
        app.router.routes[:0] = webhooks_api.routes
    if role in (Role.ALL, Role.API):
        # Sending first: routes are matched in order, and POST /api/v1/messages is the busiest.
        app.include_router(sending_api.router)
        app.include_router(tenancy_api.router)
        app.include_router(tenancy_api.api_keys_router)
        app.include_router(tenancy_api.tenant_router)
        app.include_router(tenancy_api.users_router)
        app.include_router(instances_api.router)
        app.include_router(inbox_api.router)
        app.include_router(privacy_api.router)
        app.include_router(campaigns_api.router)
        app.include_router(events.router)
        app.include_router(live.router)
        app.include_router(analytics_api.router)
        app.include_router(alerts_api.router)
        app.include_router(ops_api.router)
        app.include_router(templates_api.router)
        app.include_router(automation_api.router)
        app.include_router(followups_api.router)
        app.include_router(notifications_api.router)
        app.include_router(integrations_api.router)
        app.include_router(knowledge_api.router)
        app.include_router(assistant_api.router)
        if settings.ai_fake:
            app.include_router(fake_ai.router)
        # The web UI: the same API behind pages, for people.
        app.include_router(web_session.router)
        app.include_router(web_pages.router)
        app.include_router(campaigns_pages.router)
        app.include_router(numbers_pages.router)
        app.include_router(analytics_pages.router)
        app.include_router(alerts_pages.router)
        app.include_router(admin_pages.router)
        app.include_router(ops_pages.router)
        app.include_router(automation_pages.router)
        app.include_router(templates_pages.router)
        app.include_router(integrations_pages.router)
        app.include_router(knowledge_pages.router)
        app.include_router(notifications_pages.router)
    return app
