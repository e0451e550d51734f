"""The explicit map from provider name to its module, and auto-detection order."""

from __future__ import annotations

from messaging_whatsapp.providers.base import (
    BatchingProvider,
    CredentialCarryingProvider,
    ProviderName,
    SendProvider,
    WebhookProvider,
    WebhookRequest,
)
from messaging_whatsapp.providers.evolution import evolution_provider
from messaging_whatsapp.providers.evolution_api import evolution_api
from messaging_whatsapp.providers.meta import meta_provider
from messaging_whatsapp.providers.meta_api import meta_api
from messaging_whatsapp.providers.simulator import simulator_provider
from messaging_whatsapp.providers.simulator_api import simulator_api
from messaging_whatsapp.providers.twilio import twilio_provider
from messaging_whatsapp.providers.twilio_api import twilio_api
from messaging_whatsapp.providers.wuzapi import wuzapi_provider
from messaging_whatsapp.providers.wuzapi_api import wuzapi_api

PROVIDERS: dict[ProviderName, WebhookProvider] = {
    ProviderName.META: meta_provider,
    ProviderName.TWILIO: twilio_provider,
    ProviderName.EVOLUTION: evolution_provider,
    ProviderName.WUZAPI: wuzapi_provider,
    ProviderName.SIMULATOR: simulator_provider,
}

# Providers whose one POST may carry several numbers' events, to be filed apart.
BATCHING: dict[ProviderName, BatchingProvider] = {ProviderName.META: meta_provider}

# Providers whose webhook bodies may carry a credential, emptied before a body is stored.
CREDENTIAL_CARRYING: dict[ProviderName, CredentialCarryingProvider] = {
    ProviderName.EVOLUTION: evolution_provider,
    ProviderName.WUZAPI: wuzapi_provider,
}

SENDERS: dict[ProviderName, SendProvider] = {
    ProviderName.META: meta_api,
    ProviderName.TWILIO: twilio_api,
    ProviderName.EVOLUTION: evolution_api,
    ProviderName.WUZAPI: wuzapi_api,
    ProviderName.SIMULATOR: simulator_api,
}

# Most specific markers first: Meta's envelope and Twilio's header are unambiguous; the simulator's
# explicit flag before the gateways, whose JSON shapes are looser.
DETECTION_ORDER = (
    ProviderName.META,
    ProviderName.TWILIO,
    ProviderName.SIMULATOR,
    ProviderName.WUZAPI,
    ProviderName.EVOLUTION,
)


def get_provider(name: ProviderName) -> WebhookProvider:
    """The module for a provider."""
    return PROVIDERS[name]


def detect_provider(request: WebhookRequest) -> ProviderName | None:
    """Which provider sent this request, or None when none recognises it."""
    for name in DETECTION_ORDER:
        if PROVIDERS[name].detect(request):
            return name
    return None
