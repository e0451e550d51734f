"""The webhook's instance cache: warm at start-up, one query for a crowd of misses, Meta's verify
tokens decrypted once per change, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.instances.resolver import InstanceResolver
from messaging_whatsapp.providers.base import ProviderName
from tests.helpers import META_PHONE_NUMBER_ID, bind, bind_example_numbers, create_tenant


@pytest.fixture
def instance_queries(context: EngineContext) -> Iterator[list[str]]:
    """The statements that read the instances table, as they run."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM whatsapp_instances" in statement and "count(" not in statement:
            seen.append(statement)

    event.listen(context.engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(context.engine.sync_engine, "before_cursor_execute", record)


async def test_a_crowd_missing_the_same_number_at_once_makes_one_query(
    context: EngineContext, instance_queries: list[str]
) -> None:
    await bind_example_numbers(context, await create_tenant(context))
    instance_queries.clear()  # binding looks for an unbound holder of each number
    resolver = InstanceResolver.for_context(context)

    found = await asyncio.gather(
        *(resolver.by_routing_key(ProviderName.META, META_PHONE_NUMBER_ID) for _ in range(50))
    )

    assert {instance.routing_key if instance else None for instance in found} == {META_PHONE_NUMBER_ID}
    assert len(instance_queries) == 1
    unknown = await asyncio.gather(*(resolver.by_routing_key(ProviderName.META, "000") for _ in range(50)))
    assert unknown == [None] * 50
    assert len(instance_queries) == 2


async def test_a_warm_cache_answers_the_first_webhooks_without_a_query(
    context: EngineContext, instance_queries: list[str]
) -> None:
    numbers = await bind_example_numbers(context, await create_tenant(context))
    resolver = InstanceResolver.for_context(context)

    assert await resolver.warm() == 5
    warmed = len(instance_queries)
    assert (await resolver.by_id(numbers.evolution.id)) is not None
    assert (await resolver.by_routing_key(ProviderName.META, META_PHONE_NUMBER_ID)) is not None
    assert len(instance_queries) == warmed


async def test_meta_verify_tokens_are_read_once_per_change_of_the_numbers(
    context: EngineContext, instance_queries: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = await create_tenant(context)
    await bind_example_numbers(context, tenant_id)
    instance_queries.clear()  # binding looks for an unbound holder of each number
    monkeypatch.setattr(InstanceResolver, "FINGERPRINT_INTERVAL", 0.0)  # look at every lookup
    resolver = InstanceResolver.for_context(context)

    assert await resolver.verify_tokens() == ["tok-verificacao-7d2f"]
    assert await resolver.verify_tokens() == ["tok-verificacao-7d2f"]
    assert len(instance_queries) == 1

    await bind(
        context,
        tenant_id,
        provider="meta",
        display_number="+551130001000",
        phone_number_id="200000000000002",
        access_token="EAAG-other",
        verify_token="another-token",
        app_secret="s" * 32,
    )
    assert sorted(await resolver.verify_tokens()) == ["another-token", "tok-verificacao-7d2f"]
