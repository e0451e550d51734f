"""Ingest benchmark: 64 keep-alive clients POST signed Meta and Evolution webhooks to
`serve --role webhook` on Redis, and the same load hits a bare endpoint on the same server stack."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import redis
from tests.helpers import META_APP_SECRET, example, meta_signature

from bench.common import REDIS_URL, LoadResult, free_port, scratch_database, serve, wrk
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.tenancy import service as tenancy_service

CONNECTIONS = 64
DURATION_S = 10
ROUNDS = 3
BODIES = 1000


async def _bind(settings: Settings) -> str:
    """Bind a Meta and an Evolution number; returns the Evolution webhook path (it carries the secret)."""
    context = await EngineContext.open(settings)
    try:
        async with context.sessions() as session, session.begin():
            tenant = await tenancy_service.create_tenant(session, "Bench")
            await instances_service.bind_instance(
                session,
                context.cipher,
                settings,
                tenant.id,
                InstanceBind(
                    provider="meta",
                    display_number="+551140028922",
                    phone_number_id="109283746501928",
                    access_token="x",
                    app_secret=META_APP_SECRET,
                ),
            )
            _, url = await instances_service.bind_instance(
                session,
                context.cipher,
                settings,
                tenant.id,
                InstanceBind(
                    provider="evolution",
                    display_number="+551140028922",
                    instance_name="loja-centro",
                    api_url="http://127.0.0.1:9",
                    api_key="k",
                ),
            )
        return urlsplit(url).path
    finally:
        await context.close()


def _lua_requests(evolution_path: str, bare: bool) -> str:
    meta, evolution = example("meta_text.json"), example("evolution_messages_upsert_text.json")
    lines = ["local requests = {}"]
    for index in range(BODIES):
        if index % 2 == 0:
            meta["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.BENCH-{index}"
            body = json.dumps(meta, separators=(",", ":"))
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": meta_signature(body.encode()),
            }
            path = "/webhook"
        else:
            evolution["data"]["key"]["id"] = f"BENCH{index}"
            body = json.dumps(evolution, separators=(",", ":"))
            headers = {"Content-Type": "application/json"}
            path = evolution_path
        header_lua = ", ".join(f'["{k}"]="{v}"' for k, v in headers.items())
        target = "/bare" if bare else path
        lines.append(
            f'requests[{index + 1}] = wrk.format("POST", "{target}", {{{header_lua}}}, [==[{body}]==])'
        )
    lines.append(
        "local i = math.random(#requests)\n"
        "request = function()\n  i = i % #requests + 1\n  return requests[i]\nend"
    )
    return "\n".join(lines)


def run(duration: int = DURATION_S) -> dict[str, list[LoadResult]]:
    """Run both loads in alternating rounds of `duration` seconds; each target's rounds in order.

    Both servers stay up and the loads take turns (webhook, bare, webhook, bare...), so a machine
    that speeds up or slows down during the run moves both alike instead of only the later one.
    """
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "STREAM_PREFIX": prefix,
            "DATA_DIR": tmp,
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
        }
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            redis_url=REDIS_URL,  # type: ignore[call-arg]
            stream_prefix=prefix,
            data_dir=Path(tmp),
            public_url=env["PUBLIC_URL"],
        )
        evolution_path = asyncio.run(_bind(settings))
        scripts = {}
        for name, bare in (("webhook", False), ("bare", True)):
            scripts[name] = Path(tmp) / f"{name}.lua"
            scripts[name].write_text(_lua_requests(evolution_path, bare))
        webhook_command = ["-m", "messaging_whatsapp.cli", "serve", "--role", "webhook", "--port", str(port)]
        bare_command = ["-m", "uvicorn", "bench.bare:app", "--port", str(bare_port), "--log-level", "warning"]
        servers = [
            serve([sys.executable, *webhook_command], env, port, "/healthz"),
            serve([sys.executable, *bare_command, "--no-access-log"], env, bare_port, "/docs"),
        ]
        urls = {"webhook": f"http://127.0.0.1:{port}", "bare": f"http://127.0.0.1:{bare_port}"}
        results: dict[str, list[LoadResult]] = {"webhook": [], "bare": []}
        try:
            for name, url in urls.items():
                wrk(url, scripts[name], 3, CONNECTIONS)  # warm-up: caches, connections
            for _ in range(ROUNDS):
                for name, url in urls.items():
                    results[name].append(wrk(url, scripts[name], duration, CONNECTIONS))
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=20)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    return results
