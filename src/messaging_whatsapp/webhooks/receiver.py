"""The webhook's request path: recognise, resolve, verify, append the raw request, nothing more.

Parsing into domain changes happens in the worker; here we only read as much of the body as it
takes to find the instance (and to refuse a body that cannot be read), so the answer is fast and
every accepted request is durably in the inbound stream before we say 200.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import MalformedPayload, Unauthorized, UnsupportedMediaType
from messaging_whatsapp.instances.resolver import InstanceResolver, ResolvedInstance
from messaging_whatsapp.providers.base import (
    PayloadError,
    ProviderName,
    WebhookProvider,
    WebhookRequest,
)
from messaging_whatsapp.providers.registry import BATCHING, CREDENTIAL_CARRYING, detect_provider, get_provider
from messaging_whatsapp.streams.base import Streams

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
logger = logging.getLogger(__name__)

ACCEPTED_CONTENT_TYPES: dict[ProviderName, frozenset[str]] = {
    ProviderName.META: frozenset({JSON}),
    ProviderName.TWILIO: frozenset({FORM}),
    ProviderName.EVOLUTION: frozenset({JSON}),
    ProviderName.WUZAPI: frozenset({JSON, FORM}),
    ProviderName.SIMULATOR: frozenset({JSON}),
}


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request durably queued for the worker."""

    entry_id: str
    provider: ProviderName
    instance_id: str


class WebhookReceiver:
    """Accepts provider webhooks onto the inbound stream."""

    def __init__(self, resolver: InstanceResolver, streams: Streams, inbound_stream: str) -> None:
        self._resolver = resolver
        self._streams = streams
        self._inbound_stream = inbound_stream

    async def accept(
        self, request: WebhookRequest, provider: ProviderName | None = None, instance_id: str | None = None
    ) -> Accepted:
        """Verify the request and queue it; raises an EngineError naming what is wrong."""
        provider = provider or detect_provider(request)
        if provider is None:
            raise MalformedPayload("the body is not a webhook of any supported provider")
        if request.content_type not in ACCEPTED_CONTENT_TYPES[provider]:
            allowed = " or ".join(sorted(ACCEPTED_CONTENT_TYPES[provider]))
            raise UnsupportedMediaType(f"{provider.value} webhooks must be {allowed}")
        adapter = get_provider(provider)
        parts = self._parts(request, provider)
        if parts:
            return await self._accept_parts(request, provider, adapter, parts)
        instance = await self._resolve(request, provider, instance_id)
        if not adapter.verify(request, instance.secrets):
            raise _unauthenticated(provider)
        stored = _stored_body(request, provider)
        entry_id = await self._append(request, provider, instance, _text(stored))
        return Accepted(entry_id=entry_id, provider=provider, instance_id=instance.id)

    @staticmethod
    def _parts(request: WebhookRequest, provider: ProviderName) -> dict[str, bytes]:
        batching = BATCHING.get(provider)
        if batching is None:
            return {}
        try:
            return batching.split_by_number(request)
        except PayloadError as exc:
            raise MalformedPayload(str(exc)) from exc

    async def _accept_parts(
        self,
        request: WebhookRequest,
        provider: ProviderName,
        adapter: WebhookProvider,
        parts: dict[str, bytes],
    ) -> Accepted:
        """A batch of several numbers: each part is queued under its own number, if the signature
        holds for that number's secrets. A part for a number no instance accepts is dropped (it is
        not ours to keep); none accepted is a 401."""
        accepted: list[Accepted] = []
        for key, body in parts.items():
            instance = await self._resolver.by_routing_key(provider, key)
            if instance is None or not get_provider(provider).verify(request, instance.secrets):
                logger.warning(
                    "%s batch: the changes of %s match no instance of ours; dropped", provider, key
                )
                continue
            entry_id = await self._append(request, provider, instance, _text(body))
            accepted.append(Accepted(entry_id=entry_id, provider=provider, instance_id=instance.id))
        if not accepted:
            raise _unauthenticated(provider)
        return accepted[0]

    async def _append(
        self, request: WebhookRequest, provider: ProviderName, instance: ResolvedInstance, body: str
    ) -> str:
        return await self._streams.append(
            self._inbound_stream,
            {
                "provider": provider.value,
                "instance_id": instance.id,
                "tenant_id": instance.tenant_id,
                "content_type": request.headers.get("content-type", ""),
                "body": body,
                "url": _stored_url(request),
                "received_at": utcnow().isoformat(),
            },
        )

    async def _resolve(
        self, request: WebhookRequest, provider: ProviderName, instance_id: str | None
    ) -> ResolvedInstance:
        try:
            # Also proves the body is readable when the URL already names the instance.
            key = get_provider(provider).routing_key(request)
        except PayloadError as exc:
            raise MalformedPayload(str(exc)) from exc
        if instance_id is not None:
            instance = await self._resolver.by_id(instance_id)
        elif key is None:
            raise MalformedPayload(f"the {provider.value} payload does not name its instance")
        else:
            instance = await self._resolver.by_routing_key(provider, key)
        if instance is None or instance.provider is not provider:
            # Answered as a wrong signature: the answer must not tell which instances exist.
            raise _unauthenticated(provider)
        return instance

    async def verify_tokens(self, instance_id: str | None, global_token: str | None) -> list[str]:
        """The tokens Meta's GET verification may present."""
        tokens = [global_token] if global_token else []
        if instance_id is None:
            return tokens + await self._resolver.verify_tokens()
        instance = await self._resolver.by_id(instance_id)
        if instance is not None and instance.secrets.verify_token:
            tokens.append(instance.secrets.verify_token)
        return tokens


def _unauthenticated(provider: ProviderName) -> Unauthorized:
    """The one answer to a request no bound instance accepts, whether or not the instance exists."""
    return Unauthorized(f"no {provider.value} instance accepts this webhook's signature or secret")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayload("the body is not UTF-8") from exc


def _stored_body(request: WebhookRequest, provider: ProviderName) -> bytes:
    """The body as it is kept: credentials some gateways put in it emptied (checked already)."""
    carrying = CREDENTIAL_CARRYING.get(provider)
    if carrying is None:
        return request.body
    try:
        return carrying.without_credentials(request) or request.body
    except (PayloadError, UnicodeDecodeError) as exc:
        raise MalformedPayload(str(exc)) from exc


def _stored_url(request: WebhookRequest) -> str:
    """The URL as it is kept: the instance's secret, when it came in the path, replaced."""
    if not request.path_secret:
        return request.url
    return request.url.replace(f"/{quote(request.path_secret, safe='')}", "/[secret]").replace(
        f"/{request.path_secret}", "/[secret]"
    )
