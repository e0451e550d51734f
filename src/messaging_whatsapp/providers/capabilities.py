"""What each provider can send: its longest text, whether it takes templates, whether WhatsApp's
24-hour customer service window applies to it. Checked before a message is queued, so what a
provider cannot send is refused with a reason instead of failing later.

Text limits: Twilio 1,600 characters (a longer Body is error 21617), Meta 4,096 (text.body,
FORMATS.md section 2.6 and the Cloud API's text object). FORMATS.md gives no limit for the
gateways: they send as WhatsApp Web, whose clients take up to 65,536 characters in a text, so
that is their limit. The simulator stands in for the Cloud API in development: Meta's 4,096.
"""

from __future__ import annotations

from messaging_whatsapp.providers.base import GATEWAYS, ProviderName

TEXT_LIMITS: dict[ProviderName, int] = {
    ProviderName.META: 4_096,
    ProviderName.TWILIO: 1_600,
    ProviderName.EVOLUTION: 65_536,
    ProviderName.WUZAPI: 65_536,
    ProviderName.SIMULATOR: 4_096,
}
# The longest text any provider takes: what the API accepts before splitting it per number.
LONGEST_TEXT = max(TEXT_LIMITS.values())
# Providers that enforce the window themselves (Meta 131047, Twilio 63016): free-form text to a
# person who has not written to the number in 24 hours is refused; an approved template is not.
WINDOWED_PROVIDERS = frozenset({ProviderName.META, ProviderName.TWILIO})
# The unofficial gateways send as WhatsApp Web: there are no templates there.
TEMPLATELESS_PROVIDERS = GATEWAYS


def text_limit(provider: ProviderName | str) -> int:
    """The longest text, in characters, one message through this provider may carry."""
    return TEXT_LIMITS[ProviderName(provider)]


def takes_templates(provider: ProviderName | str) -> bool:
    """Whether the provider sends approved templates (the official APIs and the simulator)."""
    return ProviderName(provider) not in TEMPLATELESS_PROVIDERS


def has_service_window(provider: ProviderName | str) -> bool:
    """Whether free-form text through this provider needs the person's message of the last 24 h."""
    return ProviderName(provider) in WINDOWED_PROVIDERS
