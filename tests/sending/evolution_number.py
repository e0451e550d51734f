"""An engine with one Evolution number bound to a fake gateway, for the sender's gateway tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from messaging_whatsapp.context import EngineContext
from tests.fakes.evolution import FakeEvolution
from tests.fakes.http import FakeHttpServer
from tests.helpers import bind, create_tenant, engine_settings, free_port


@dataclass
class EvolutionNumber:
    """The engine, the fake gateway's server (what it was asked), and the bound number."""

    context: EngineContext
    server: FakeHttpServer
    tenant_id: str
    instance_id: str


@asynccontextmanager
async def evolution_number(
    database_url: str, stream_prefix: str, tmp_path: Path, **settings: Any
) -> AsyncIterator[EvolutionNumber]:
    """A migrated engine (rate limits off, `settings` on top) with a connected Evolution number."""
    evolution = FakeEvolution()
    on_gateway = evolution.add_instance("loja", state="open", owner="551140028922")
    engine = engine_settings(database_url, None, stream_prefix, tmp_path, free_port())
    engine = engine.model_copy(update={"rate_limits_enabled": False, **settings})
    context = await EngineContext.open(engine)
    try:
        with FakeHttpServer(evolution) as server:
            tenant_id = await create_tenant(context)
            instance, _ = await bind(
                context,
                tenant_id,
                provider="evolution",
                display_number="+551140028922",
                instance_name="loja",
                api_url=server.base_url,
                api_key=on_gateway.token,
            )
            yield EvolutionNumber(context, server, tenant_id, instance.id)
    finally:
        await context.close()
