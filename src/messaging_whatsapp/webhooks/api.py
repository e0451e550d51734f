"""Webhook endpoints: one auto-detecting URL, per-provider and per-instance URLs, the seeds' aliases.

They are plain Starlette routes placed ahead of the API's routers: the webhook is the hot path
and needs neither dependency injection nor request validation, and FastAPI's included-router
matching costs more than the rest of the request (see docs/benchmarks.md). The README documents
them, since they do not appear in the OpenAPI schema.
"""

from __future__ import annotations

import hmac
import logging
import time

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from messaging_whatsapp import metrics
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.errors import EngineError, NotFound, PayloadTooLarge
from messaging_whatsapp.http_errors import error_response, status_for
from messaging_whatsapp.providers.base import ProviderName, WebhookRequest
from messaging_whatsapp.streams.base import StreamError
from messaging_whatsapp.webhooks.receiver import WebhookReceiver

logger = logging.getLogger(__name__)


def _receiver(request: Request) -> WebhookReceiver:
    receiver: WebhookReceiver = request.app.state.receiver
    return receiver


# A refused body up to this size is read to its end before the 413, so the client can read the
# answer (a server that answers while the client still sends resets the connection under it).
DRAINED_BODY_BYTES = 64 * 1024 * 1024


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) <= limit:
            return await request.body()
        if int(declared) <= DRAINED_BODY_BYTES:
            async for _ in request.stream():
                pass
        raise PayloadTooLarge(f"body is over the {limit}-byte limit")
    # No declared length (chunked): count as it arrives; past the limit, keep only counting.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAINED_BODY_BYTES:
            break
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise PayloadTooLarge(f"body is over the {limit}-byte limit")
    return b"".join(chunks)


def _public_url(request: Request, public_base: str) -> str:
    """The URL the provider called, as it sent it (Twilio signs it); behind a proxy, PUBLIC_URL wins."""
    scope = request.scope
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = public_base.rstrip("/") + path.decode("latin-1")
    return f"{url}?{query.decode('latin-1')}" if query else url


def _headers(request: Request) -> dict[str, str]:
    """The request's headers by lower-cased name (ASGI already lower-cases them)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in request.scope["headers"]}


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params) if request.scope.get("query_string") else {}


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
            headers=_headers(request),
            url=_public_url(request, context.settings.public_url),
            query=_query(request),
            path_secret=path_secret,
        )
        accepted = await _receiver(request).accept(webhook, provider, instance_id)
    except EngineError as exc:
        metrics.WEBHOOK_REQUESTS.labels(label, exc.code).inc()
        return error_response(status_for(exc), exc.code, exc.message)
    except ClientDisconnect:
        # The provider hung up mid-body: nothing to answer, nothing queued, and nothing logged (a
        # logged URL would carry the instance's secret).
        metrics.WEBHOOK_REQUESTS.labels(label, "disconnected").inc()
        return Response(status_code=400)
    except StreamError:
        logger.exception("inbound stream unavailable")
        metrics.WEBHOOK_REQUESTS.labels(label, "unavailable").inc()
        return error_response(503, "unavailable", "the inbound queue is unavailable; retry later")
    metrics.WEBHOOK_REQUESTS.labels(accepted.provider.value, "accepted").inc()
    metrics.WEBHOOK_LATENCY.observe(time.perf_counter() - started)
    answer = {"status": "accepted", "id": accepted.entry_id, "provider": accepted.provider.value}
    return Response(orjson.dumps(answer), media_type="application/json")


def _provider(name: str) -> ProviderName:
    try:
        return ProviderName(name)
    except ValueError:
        raise NotFound(f"unknown provider {name!r}") from None


async def webhook_auto(request: Request) -> Response:
    """Any provider's webhook; the provider and instance are recognised from the request."""
    return await _handle(request)


async def webhook_named(request: Request) -> Response:
    """A named provider's webhook, optionally for one instance and carrying its secret."""
    params = request.path_params
    try:
        provider = _provider(params["provider"])
    except NotFound as exc:
        return error_response(404, exc.code, exc.message)
    return await _handle(request, provider, params.get("instance_id"), params.get("secret"))


async def webhook_seed_evolution(request: Request) -> Response:
    """Seed 000's Evolution path."""
    return await _handle(request, ProviderName.EVOLUTION)


async def webhook_seed_twilio(request: Request) -> Response:
    """Seed 004's Twilio message and status callback paths."""
    return await _handle(request, ProviderName.TWILIO)


async def webhook_seed_inbox(request: Request) -> Response:
    """Seed 003's per-instance paths (WuzAPI), with and without its `/w/`."""
    return await _handle(request, ProviderName.WUZAPI, request.path_params["instance_id"])


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


async def verify_meta(request: Request) -> Response:
    """Meta's GET verification on the shared URL (WHATSAPP_VERIFY_TOKEN or any instance's token)."""
    return await _verify(request, request.path_params.get("instance_id"))


routes: list[BaseRoute] = [
    Route("/webhook", webhook_auto, methods=["POST"]),
    Route("/webhook", verify_meta, methods=["GET"]),
    Route("/webhooks/meta", verify_meta, methods=["GET"]),
    Route("/webhooks/meta/{instance_id}", verify_meta, methods=["GET"]),
    Route("/webhooks/{provider}", webhook_named, methods=["POST"]),
    Route("/webhooks/{provider}/{instance_id}", webhook_named, methods=["POST"]),
    Route("/webhooks/{provider}/{instance_id}/{secret}", webhook_named, methods=["POST"]),
    # The seeds' own paths, kept so existing provider configurations keep working.
    Route("/api/webhooks/evolution/", webhook_seed_evolution, methods=["POST"]),
    Route("/api/webhooks/evolution", webhook_seed_evolution, methods=["POST"]),
    Route("/whatsapp/webhook", webhook_seed_twilio, methods=["POST"]),
    Route("/whatsapp/status", webhook_seed_twilio, methods=["POST"]),
    Route("/api/v1/whatsapp/webhook/{instance_id}", webhook_seed_inbox, methods=["POST"]),
    Route("/api/v1/whatsapp/w/webhook/{instance_id}", webhook_seed_inbox, methods=["POST"]),
]
