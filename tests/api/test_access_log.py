"""The server's line per request: method, path (a webhook's secret masked, never the query), status
and duration, at INFO."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from messaging_whatsapp.api.access_log import AccessLog, loggable_path

SECRET = "E6X4n3WbCi083Nma2XcjBuQ7drKqLvoK"


def test_a_webhook_paths_secret_is_masked_and_odd_characters_escaped() -> None:
    assert loggable_path(f"/webhooks/simulator/0193-ab/{SECRET}") == "/webhooks/simulator/0193-ab/***"
    assert loggable_path("/webhooks/wuzapi/0193-ab") == "/webhooks/wuzapi/0193-ab"
    assert loggable_path("/api/v1/messages") == "/api/v1/messages"
    assert loggable_path("/api/v1/x\nINFO forged line") == "/api/v1/x%0AINFO%20forged%20line"


async def _answer(request: Request) -> PlainTextResponse:
    if request.path_params.get("secret") == "fail":
        raise RuntimeError("the handler broke")
    return PlainTextResponse("ok", status_code=202)


async def test_each_request_is_one_line_with_its_status_and_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = AccessLog(
        Starlette(
            routes=[Route("/webhooks/{provider}/{instance}/{secret}", _answer, methods=["GET", "POST"])]
        )
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    caplog.set_level(logging.INFO, logger="messaging_whatsapp.access")
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
        assert (await client.post(f"/webhooks/simulator/i1/{SECRET}?hub.verify_token=tok")).status_code == 202
        assert (await client.get("/webhooks/simulator/i1/fail")).status_code == 500
        assert (await client.get("/nowhere")).status_code == 404
    lines = [record.getMessage() for record in caplog.records if record.name == "messaging_whatsapp.access"]
    assert len(lines) == 3
    assert re.fullmatch(r"POST /webhooks/simulator/i1/\*\*\* 202 \d+\.\dms", lines[0])
    assert re.fullmatch(r"GET /webhooks/simulator/i1/\*\*\* 500 \d+\.\dms", lines[1])
    assert re.fullmatch(r"GET /nowhere 404 \d+\.\dms", lines[2])
    assert not any(SECRET in line or "tok" in line for line in lines)

    caplog.clear()
    caplog.set_level(logging.WARNING, logger="messaging_whatsapp.access")
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
        await client.get("/nowhere")
    assert not [record for record in caplog.records if record.name == "messaging_whatsapp.access"]
