"""Queueing many submissions at once (the API's group commit), on both databases: each gets its own
answer in order, what is refused leaves nothing behind, an Idempotency-Key is honoured inside
a batch too, and a batch that fails as a whole does not fail its good submissions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from messaging_whatsapp.config import Settings
from messaging_whatsapp.consent.service import OptOutCandidate, apply_optouts
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.inbox.models import Contact, Conversation, Message
from messaging_whatsapp.sending.intake import MessageIntake
from messaging_whatsapp.sending.schemas import SendMessageRequest
from messaging_whatsapp.sending.service import queue_messages
from messaging_whatsapp.sending.submissions import QueuedMessage, Submission
from tests.helpers import bind, create_tenant


@pytest.fixture(params=["fresh_sqlite_url", "fresh_postgres_url"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineContext]:
    """An engine context on a database of this test's own (no streams needed)."""
    settings = Settings(
        _env_file=None, database_url=request.getfixturevalue(request.param), data_dir=tmp_path
    )  # type: ignore[call-arg]
    context = await EngineContext.open(settings)
    yield context
    await context.close()


async def _numbers(context: EngineContext) -> tuple[str, str, str]:
    """A tenant with a simulator number and a Meta number (which keeps the 24-hour window)."""
    tenant_id = await create_tenant(context)
    simulator, _ = await bind(
        context, tenant_id, provider="simulator", instance_name="sim", display_number="+5511940028922"
    )
    meta, _ = await bind(
        context,
        tenant_id,
        provider="meta",
        display_number="+551140028922",
        phone_number_id=f"pn-{uuid.uuid4().hex[:8]}",
        access_token="EAAG-test",
        app_secret="s" * 32,
    )
    return tenant_id, simulator.id, meta.id


def _text(to: str, instance_id: str | None, text: str = "Olá") -> SendMessageRequest:
    return SendMessageRequest(to=to, instance_id=instance_id, text=text)


async def _count(context: EngineContext, model: type, tenant_id: str) -> int:
    async with context.sessions() as session:
        query = select(func.count()).select_from(model).where(model.tenant_id == tenant_id)  # type: ignore[attr-defined]
        return int(await session.scalar(query) or 0)


async def test_each_submission_gets_its_own_answer_and_refusals_leave_nothing(context: EngineContext) -> None:
    tenant_id, simulator_id, meta_id = await _numbers(context)
    async with context.sessions() as session, session.begin():
        await apply_optouts(
            session,
            [
                OptOutCandidate(
                    tenant_id, None, "+5511955550000", simulator_id, "sair", "sair", None, utcnow()
                )
            ],
        )
    submissions = [
        Submission(tenant_id, _text("+5511955551111", simulator_id)),
        Submission(tenant_id, _text("12", simulator_id)),  # not a phone
        Submission(tenant_id, _text("+5511955550000", simulator_id)),  # opted out
        Submission(tenant_id, _text("+5511955552222", meta_id)),  # never wrote: outside the window
        Submission(tenant_id, _text("+5511955553333", str(uuid.uuid4()))),  # no such number
        Submission(tenant_id, _text("+5511955554444", None)),  # the engine chooses the number
    ]
    async with context.sessions() as session, session.begin():
        results = await queue_messages(session, submissions, utcnow())

    codes = [result.code if isinstance(result, EngineError) else "queued" for result in results]
    assert codes == ["queued", "invalid_phone", "opted_out", "outside_service_window", "not_found", "queued"]
    queued = [result for result in results if isinstance(result, QueuedMessage)]
    assert queued[0].message.instance_id == simulator_id
    assert queued[1].message.instance_id == simulator_id  # the Meta number may not write first
    # Only the two queued messages left rows: no contact or conversation for the refused ones.
    assert await _count(context, Message, tenant_id) == 2
    assert await _count(context, Conversation, tenant_id) == 2
    assert await _count(context, Contact, tenant_id) == 2


async def test_one_idempotency_key_in_a_batch_and_across_batches_is_one_message(
    context: EngineContext,
) -> None:
    tenant_id, simulator_id, _ = await _numbers(context)
    same = [Submission(tenant_id, _text("+5511955551111", simulator_id), idempotency_key="pedido-7")] * 3
    async with context.sessions() as session, session.begin():
        first = await queue_messages(session, same, utcnow())
    async with context.sessions() as session, session.begin():
        [again] = await queue_messages(session, same[:1], utcnow())

    assert all(isinstance(result, QueuedMessage) for result in [*first, again])
    ids = {result.message.id for result in [*first, again] if isinstance(result, QueuedMessage)}
    assert len(ids) == 1
    assert [result.created for result in first if isinstance(result, QueuedMessage)] == [True, False, False]
    assert isinstance(again, QueuedMessage)
    assert not again.created
    # Each answer shows the number the message goes to, the replayed one too.
    assert {r.to for r in [*first, again] if isinstance(r, QueuedMessage)} == {"+5511955551111"}
    assert await _count(context, Message, tenant_id) == 1


async def test_the_intake_stores_concurrent_submissions_together_and_isolates_a_bad_one(
    context: EngineContext,
) -> None:
    tenant_id, simulator_id, _ = await _numbers(context)
    await _poison_messages(context)
    intake = MessageIntake(context)
    good = [Submission(tenant_id, _text(f"+55119555{n:05d}", simulator_id)) for n in range(20)]
    bad = Submission(tenant_id, _text("+5511955559999", simulator_id, text="poison"))

    submitted = [*good[:10], bad, *good[10:]]
    results = await asyncio.gather(*(intake.submit(s) for s in submitted), return_exceptions=True)
    await intake.close()

    failed = [result for result in results if isinstance(result, BaseException)]
    assert len(failed) == 1
    assert not isinstance(failed[0], EngineError)  # a storage failure, not a refusal
    queued = [result for result in results if isinstance(result, QueuedMessage)]
    assert len(queued) == 20
    assert all(result.created for result in queued)
    assert await _count(context, Message, tenant_id) == 20


async def _poison_messages(context: EngineContext) -> None:
    """A trigger that makes the database refuse a message whose text is "poison"."""
    async with context.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            await connection.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.content = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )
            return
        await connection.exec_driver_sql(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.content = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$"
        )
        await connection.exec_driver_sql(
            "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()"
        )
