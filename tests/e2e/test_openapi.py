"""The OpenAPI document tells the truth: schemathesis generates requests for every operation from it,
valid ones and invalid ones, against a running engine, and no answer may be a 5xx or a status the
document does not list. Embedded only, to keep the suite's time bounded (the scaled deployment
serves the same routes)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from tests.helpers import ServerThread, bind, create_tenant, create_user, engine_settings, free_port

# Examples per operation and mode (valid, invalid): 50 requests an operation, some 170 operations.
MAX_EXAMPLES = 25
# The operations are fuzzed in this many parts, each its own test (and engine): parts run side by
# side on the test workers, and none comes near the per-test timeout as the API grows.
SHARDS = 6
# A progress stream lasts until its campaign ends, the event stream until its client leaves: not
# request/answer operations to fuzz (tests/e2e/test_events_stream.py covers the second's bad input).
SKIPPED = {("GET", "/api/v1/campaigns/{campaign_id}/progress"), ("GET", "/api/v1/events/stream")}


@pytest.fixture
def served(fresh_sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A running embedded engine with a tenant, a number and a logged-in admin: (URL, headers)."""
    port = free_port()
    deployment = engine_settings(fresh_sqlite_url, None, f"fuzz{utcnow().timestamp():.0f}:", tmp_path, port)

    async def tenant() -> None:
        context = await EngineContext.open(deployment)
        try:
            tenant_id = await create_tenant(context)
            await create_user(context, tenant_id, "ana@loja.com.br")
            await bind(
                context, tenant_id, provider="simulator", display_number="+5511940028922", instance_name="s"
            )
        finally:
            await context.close()

    asyncio.run(tenant())
    with ServerThread(create_app(deployment, Role.ALL), port, deployment) as server:
        login = httpx.post(
            f"{server.base_url}/api/v1/auth/login",
            json={"email": "ana@loja.com.br", "password": "s3cret-pass"},
        )
        yield server.base_url, {"authorization": f"Bearer {login.json()['access_token']}"}


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_generated_request_gets_a_5xx_or_an_undocumented_status(
    served: tuple[str, dict[str, str]], shard: int
) -> None:
    base_url, headers = served
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: dict[str, str] = {}
    for index, result in enumerate(schema.get_all_operations()):
        if index % SHARDS != shard:
            continue
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def answer(case: schemathesis.Case) -> None:
                response = case.call(base_url=base_url, headers=headers, timeout=30)
                case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

            try:
                answer()
            except Unsatisfiable:
                pass  # no invalid request exists for an operation without inputs
            except BaseException as exc:
                # An interrupt, or the per-test timeout (pytest.fail), ends the test; not a finding.
                if isinstance(exc, KeyboardInterrupt | pytest.fail.Exception):
                    raise
                failures[f"{operation.method.upper()} {operation.path} ({mode.value})"] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{name}:\n{detail}" for name, detail in failures.items())
