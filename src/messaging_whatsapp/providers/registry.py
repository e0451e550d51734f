"""The explicit map from provider name to its module, and auto-detection order."""

from __future__ import annotations

from messaging_whatsapp.providers.base import ProviderName, WebhookProvider, WebhookRequest
from messaging_whatsapp.providers.evolution import evolution_provider
from messaging_whatsapp.providers.meta import meta_provider
from messaging_whatsapp.providers.simulator import simulator_provider
from messaging_whatsapp.providers.twilio import twilio_provider
from messaging_whatsapp.providers.wuzapi import wuzapi_provider

PROVIDERS: dict[ProviderName, WebhookProvider] = {
    ProviderName.META: meta_provider,
    ProviderName.TWILIO: twilio_provider,
    ProviderName.EVOLUTION: evolution_provider,
    ProviderName.WUZAPI: wuzapi_provider,
    ProviderName.SIMULATOR: simulator_provider,
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
