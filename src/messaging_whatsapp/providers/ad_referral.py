"""The gateways' click-to-WhatsApp ad referral: WhatsApp's `contextInfo.externalAdReply`, as the
normalised Referral Meta's `referral` gives.

Evolution (Baileys) spells its fields `sourceUrl`, `sourceId`, `thumbnailUrl`; WuzAPI (whatsmeow's
protobuf JSON) `sourceURL`, `sourceID`, `thumbnailURL`: both are read. An externalAdReply also
decorates link previews; only one naming an ad (its id, its click id, or an `ad`/`post` source
type) is a referral. Lenient on purpose: a field of an unexpected type is skipped, because
attribution is never worth losing the customer's message over.
"""

from __future__ import annotations

from collections.abc import Iterable

from messaging_whatsapp.providers.events import Referral
from messaging_whatsapp.providers.payload import JsonObject

_AD_SOURCE_TYPES = {"ad", "post"}


def _text(parent: JsonObject, *keys: str) -> str | None:
    for key in keys:
        value = parent.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def external_ad_referral(context: object) -> Referral | None:
    """The ad of one contextInfo object (None when it names no ad)."""
    if not isinstance(context, dict):
        return None
    ad = context.get("externalAdReply")
    if not isinstance(ad, dict):
        return None
    source_type = _text(ad, "sourceType")
    referral = Referral(
        source_url=_text(ad, "sourceUrl", "sourceURL"),
        source_id=_text(ad, "sourceId", "sourceID"),
        source_type=source_type.lower() if source_type else None,
        headline=_text(ad, "title"),
        click_id=_text(ad, "ctwaClid") or _text(context, "ctwaClid"),
    )
    if referral.source_id or referral.click_id or referral.source_type in _AD_SOURCE_TYPES:
        return referral
    return None


def first_ad_referral(contexts: Iterable[object]) -> Referral | None:
    """The first ad among contextInfo objects (a message's top-level one, then its content's)."""
    for context in contexts:
        referral = external_ad_referral(context)
        if referral is not None:
            return referral
    return None


def content_contexts(message: JsonObject) -> list[object]:
    """The contextInfo of each content of a WhatsApp message object (`extendedTextMessage`...)."""
    return [body.get("contextInfo") for body in message.values() if isinstance(body, dict)]
