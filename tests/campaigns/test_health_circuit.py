"""A number whose sends fail stops within a few messages, even unpaced, on both databases: the
dispatcher, the sender and a fake Meta Graph API over real HTTP. Failures that are the sender's
own mistakes cost the number nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from messaging_whatsapp.campaigns import lifecycle, service
from messaging_whatsapp.campaigns.dispatcher import Dispatcher
from messaging_whatsapp.campaigns.lifecycle import Action
from messaging_whatsapp.campaigns.models import CampaignContact, CampaignInstance, CampaignLog
from messaging_whatsapp.campaigns.schemas import CampaignCreate
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.worker.sender import Sender
from tests.fakes.http import FakeHttpServer, RecordedRequest, Reply
from tests.fakes.meta import graph_error
from tests.helpers import (
    META_PHONE_NUMBER_ID,
    approved_template,
    bind,
    create_tenant,
    engine_settings,
    free_port,
)

TOKEN = "EAAG-secret-token"


class FailingGraph:
    """A Graph API that refuses every message with one error."""

    def __init__(self) -> None:
        self.code, self.message = (
            131049,
            "(#131049) This message was not delivered to maintain healthy ecosystem",
        )

    def __call__(self, request: RecordedRequest) -> Reply:
        return graph_error(400, self.code, self.message)


@pytest.fixture
def graph() -> FailingGraph:
    return FailingGraph()


@pytest.fixture
def provider(graph: FailingGraph) -> Iterator[FakeHttpServer]:
    with FakeHttpServer(graph) as server:
        yield server


@pytest.fixture(params=["embedded", "scaled"])
async def context(
    request: pytest.FixtureRequest, tmp_path: Path, stream_prefix: str, provider: FakeHttpServer
) -> AsyncIterator[EngineContext]:
    database = "fresh_sqlite_url" if request.param == "embedded" else "fresh_postgres_url"
    settings = engine_settings(request.getfixturevalue(database), None, stream_prefix, tmp_path, free_port())
    settings = settings.model_copy(
        update={"meta_graph_url": f"{provider.base_url}/v23.0", "rate_limits_enabled": False}
    )
    engine_context = await EngineContext.open(settings)
    yield engine_context
    await engine_context.close()


async def _unpaced_campaign(context: EngineContext, contacts: int) -> tuple[str, str]:
    tenant_id = await create_tenant(context)
    instance, _ = await bind(
        context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token=TOKEN,
        app_secret="x" * 32,
    )
    await approved_template(context, tenant_id, instance, "novidades", 1)
    body = {
        "name": "Promo",
        "instance_ids": [instance.id],
        # Business-initiated on Meta: an approved template.
        "messages": [{"template": {"name": "novidades", "parameters": ["{{name}}"]}}],
        "contacts": [{"phone": f"+55119944{index:05d}", "name": f"C{index}"} for index in range(contacts)],
        "settings": {"interval_min_s": 0, "interval_max_s": 0, "warmup": False},
    }
    async with context.sessions() as session, session.begin():
        campaign, _ = await service.create_campaign(
            session, tenant_id, CampaignCreate.model_validate(body), user_id=None, now=utcnow()
        )
        await lifecycle.transition(session, tenant_id, campaign.id, Action.START, user_id=None, now=utcnow())
    return campaign.id, instance.id


async def _run(context: EngineContext, campaign_id: str, rounds: int = 8) -> None:
    """Dispatch and send, round after round, as the engine's loops would."""
    dispatcher = Dispatcher(context)
    sender = Sender(context)
    await sender.ensure_group()
    try:
        for _ in range(rounds):
            await dispatcher.dispatch(campaign_id)
            while (await sender.run_once(block_ms=50)).read:
                pass
    finally:
        await sender.close()


async def test_an_unpaced_number_failing_every_send_stops_after_a_few(
    context: EngineContext, provider: FakeHttpServer
) -> None:
    campaign_id, instance_id = await _unpaced_campaign(context, 10)
    await _run(context, campaign_id)

    assert len(provider.requests) == 3
    async with context.sessions() as session:
        statuses = Counter(
            await session.scalars(
                select(CampaignContact.status).where(CampaignContact.campaign_id == campaign_id)
            )
        )
        link = await session.get(CampaignInstance, (campaign_id, instance_id))
        instance = await session.get(WhatsAppInstance, instance_id)
        logs = list(await session.scalars(select(CampaignLog).where(CampaignLog.campaign_id == campaign_id)))
    assert statuses == {"failed": 3, "pending": 7}
    assert link is not None
    assert link.paused
    assert instance is not None
    assert (instance.health_score, instance.consecutive_errors) == (70.0, 3)
    types = Counter(log.log_type for log in logs)
    assert (types["health_issue"], types["instance_paused"], types["instance_selected"]) == (1, 1, 1)
    assert types["message_failed"] == 3
    failed = next(log for log in logs if log.log_type == "message_failed")
    assert failed.http_status == 400
    assert failed.duration_ms is not None
    assert failed.request_data is not None
    assert failed.response_data is not None
    assert failed.request_data["body"]["to"] == "5511994400000"
    assert failed.request_data["headers"]["authorization"] == "[redacted]"
    assert TOKEN not in str(failed.request_data)
    assert failed.response_data["body"]["error"]["code"] == 131049


async def test_the_senders_own_mistakes_cost_the_number_nothing(
    context: EngineContext, provider: FakeHttpServer, graph: FailingGraph
) -> None:
    graph.code, graph.message = 100, "(#100) Invalid parameter"
    campaign_id, instance_id = await _unpaced_campaign(context, 5)
    await _run(context, campaign_id)

    assert len(provider.requests) == 5
    async with context.sessions() as session:
        instance = await session.get(WhatsAppInstance, instance_id)
        link = await session.get(CampaignInstance, (campaign_id, instance_id))
    assert instance is not None
    assert link is not None
    assert (instance.health_score, instance.consecutive_errors, instance.msgs_failed_today) == (100.0, 0, 5)
    assert not link.paused


async def test_a_number_with_its_window_on_the_way_holds_the_pass_until_the_senders_catch_up(
    context: EngineContext, provider: FakeHttpServer
) -> None:
    campaign_id, _ = await _unpaced_campaign(context, 10)
    dispatcher = Dispatcher(context)

    first = await dispatcher.dispatch(campaign_id)
    again = await dispatcher.dispatch(campaign_id)

    # A number not yet proven has 3 messages on their way: nothing more until they are resolved,
    # and the dispatcher knows to look again soon rather than idle a whole pass.
    assert (first.handed, first.senders_behind) == (3, False)
    assert (again.handed, again.senders_behind) == (0, True)
    assert provider.requests == []
