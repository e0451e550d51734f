"""Webhook endpoints: one auto-detecting URL, per-provider and per-instance URLs, the seeds' aliases."""

from __future__ import annotations

import hmac
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from messaging_whatsapp import metrics
from messaging_whatsapp.api.errors import error_response, status_for
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.errors import EngineError, NotFound, PayloadTooLarge
from messaging_whatsapp.providers.base import ProviderName, WebhookRequest
from messaging_whatsapp.streams.base import StreamError
from messaging_whatsapp.webhooks.receiver import WebhookReceiver

logger = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


def _receiver(request: Request) -> WebhookReceiver:
    receiver: WebhookReceiver = request.app.state.receiver
    return receiver


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _public_url(request: Request, public_base: str) -> str:
    """The URL the provider called, as it knows it (Twilio signs it); behind a proxy, PUBLIC_URL wins."""
    url = public_base.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


async def _handle(
    request: Request,
    provider: ProviderName | None = None,
    instance_id: str | None = None,
    path_secret: str | None = None,
) -> Response:
    started = time.perf_counter()
    context: EngineContext = request.app.state.context
    label = provider.value if provider else "auto"
    try:
        body = await _read_body(request, context.settings.webhook_max_body_bytes)
        webhook = WebhookRequest(
            body=body,
            headers={key.lower(): value for key, value in request.headers.items()},
            url=_public_url(request, context.settings.public_url),
            query=dict(request.query_params),
            path_secret=path_secret,
        )
        accepted = await _receiver(request).accept(webhook, provider, instance_id)
    except EngineError as exc:
        metrics.WEBHOOK_REQUESTS.labels(label, exc.code).inc()
        return error_response(status_for(exc), exc.code, exc.message)
    except StreamError:
        logger.exception("inbound stream unavailable")
        metrics.WEBHOOK_REQUESTS.labels(label, "unavailable").inc()
        return error_response(503, "unavailable", "the inbound queue is unavailable; retry later")
    metrics.WEBHOOK_REQUESTS.labels(accepted.provider.value, "accepted").inc()
    metrics.WEBHOOK_LATENCY.observe(time.perf_counter() - started)
    return JSONResponse({"status": "accepted", "id": accepted.entry_id, "provider": accepted.provider.value})


def _provider(name: str) -> ProviderName:
    try:
        return ProviderName(name)
    except ValueError:
        raise NotFound(f"unknown provider {name!r}") from None


@router.post("/webhook")
async def webhook_auto(request: Request) -> Response:
    """Any provider's webhook; the provider and instance are recognised from the request."""
    return await _handle(request)


@router.post("/webhooks/{provider}")
async def webhook_provider(provider: str, request: Request) -> Response:
    """A named provider's webhook; the instance is recognised from the payload."""
    return await _handle(request, _provider(provider))


@router.post("/webhooks/{provider}/{instance_id}")
async def webhook_instance(provider: str, instance_id: str, request: Request) -> Response:
    """One instance's webhook (signed providers)."""
    return await _handle(request, _provider(provider), instance_id)


@router.post("/webhooks/{provider}/{instance_id}/{secret}")
async def webhook_instance_secret(provider: str, instance_id: str, secret: str, request: Request) -> Response:
    """One instance's webhook carrying its secret (gateways that cannot sign or set headers)."""
    return await _handle(request, _provider(provider), instance_id, secret)


# The seeds' own paths, kept so existing provider configurations keep working.
@router.post("/api/webhooks/evolution/", include_in_schema=False)
@router.post("/api/webhooks/evolution", include_in_schema=False)
async def webhook_seed_evolution(request: Request) -> Response:
    """Seed 000's Evolution path."""
    return await _handle(request, ProviderName.EVOLUTION)


@router.post("/whatsapp/webhook", include_in_schema=False)
@router.post("/whatsapp/status", include_in_schema=False)
async def webhook_seed_twilio(request: Request) -> Response:
    """Seed 004's Twilio message and status callback paths."""
    return await _handle(request, ProviderName.TWILIO)


@router.post("/api/v1/whatsapp/webhook/{instance_id}", include_in_schema=False)
async def webhook_seed_inbox(instance_id: str, request: Request) -> Response:
    """Seed 003's per-instance path (WuzAPI)."""
    return await _handle(request, ProviderName.WUZAPI, instance_id)


async def _verify(request: Request, instance_id: str | None) -> Response:
    """Meta's subscription handshake: echo hub.challenge when the verify token is one of ours."""
    context: EngineContext = request.app.state.context
    params = request.query_params
    token = params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge", "")
    global_token = context.settings.whatsapp_verify_token
    tokens = await _receiver(request).verify_tokens(
        instance_id, global_token.get_secret_value() if global_token else None
    )
    matched = any(hmac.compare_digest(token.encode(), candidate.encode()) for candidate in tokens)
    if params.get("hub.mode") != "subscribe" or not token or not matched:
        return error_response(403, "verification_failed", "hub.mode or hub.verify_token is wrong")
    return PlainTextResponse(challenge)


@router.get("/webhook")
@router.get("/webhooks/meta")
async def verify_meta(request: Request) -> Response:
    """Meta's GET verification on the shared URL (WHATSAPP_VERIFY_TOKEN or any instance's token)."""
    return await _verify(request, None)


@router.get("/webhooks/meta/{instance_id}")
async def verify_meta_instance(instance_id: str, request: Request) -> Response:
    """Meta's GET verification on an instance's URL."""
    return await _verify(request, instance_id)
