"""Where a ticket and a contact came from (seed 003's attribution): the ad or the UTM link that
brought a customer's first message, and what our outbound first touches say.

Pure functions of the message: the ticket's and the contact's origin columns, and the UTM
parameters read from the ad's URL (Meta `referral.source_url`, the gateways' externalAdReply) or
from the first link with UTM parameters in the message's text.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from messaging_whatsapp.providers.events import InboundMessage

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# The ticket columns hold at most this much of a value.
MAX_VALUE = 200
# http(s) links and bare domains with a query string, as customers paste them.
_LINK = re.compile(r"(?:https?://|www\.)[^\s<>\"']+|[\w.-]+\.[a-z]{2,}/[^\s<>\"']*\?[^\s<>\"']+", re.I)
_TRAILING = ".,;:!?)]}"


def utm_from_url(url: str | None) -> dict[str, str]:
    """The UTM parameters of one URL (empty when it has none or is not a URL)."""
    if not url:
        return {}
    try:
        query = urlsplit(url if "://" in url else f"https://{url}").query
    except ValueError:
        return {}
    params = parse_qs(query, keep_blank_values=False)
    found: dict[str, str] = {}
    for key in UTM_KEYS:
        values = [value.strip() for value in params.get(key, []) if value.strip()]
        if values:
            found[key] = values[0][:MAX_VALUE]
    return found


def utm_from_text(text: str | None) -> dict[str, str]:
    """The UTM parameters of the first link in `text` that has any."""
    if not text or "utm_" not in text.lower():
        return {}
    for match in _LINK.finditer(text):
        found = utm_from_url(match.group(0).rstrip(_TRAILING))
        if found:
            return found
    return {}


def message_utm(message: InboundMessage) -> dict[str, str]:
    """The UTM parameters a customer's message brought: the ad's URL first, else its text's links
    (a caption counts as its text)."""
    referral = message.referral
    found = utm_from_url(referral.source_url) if referral else {}
    if found:
        return found
    caption = message.media.caption if message.media else None
    return utm_from_text(message.text or caption)


def ticket_origin(message: InboundMessage) -> dict[str, Any]:
    """The origin columns of a ticket a customer's message opens: the ad (`ctwa`), else the UTM
    link's source, medium and campaign, else organic WhatsApp; with every UTM parameter."""
    referral = message.referral
    utm = message_utm(message)
    columns: dict[str, Any] = {key: utm.get(key) for key in UTM_KEYS}
    if referral is not None:
        columns.update(
            source="ctwa",
            medium=referral.source_type or "ad",
            campaign=_cut(referral.headline or referral.source_id or utm.get("utm_campaign")),
            ad_id=_cut(referral.source_id, 100),
            click_id=referral.click_id,
        )
    elif utm:
        columns.update(
            source=_cut(utm.get("utm_source"), 100) or "whatsapp",
            medium=_cut(utm.get("utm_medium"), 100),
            campaign=utm.get("utm_campaign"),
            ad_id=None,
            click_id=None,
        )
    else:
        columns.update(source="whatsapp", medium="organic", campaign=None, ad_id=None, click_id=None)
    return columns


def contact_first_touch(message: InboundMessage) -> dict[str, str | None]:
    """A contact's first touch from the customer's first message, as its ticket's origin says."""
    origin = ticket_origin(message)
    return {
        "first_source": origin["source"],
        "first_medium": origin["medium"],
        "first_campaign": origin["campaign"],
    }


def _cut(value: str | None, length: int = MAX_VALUE) -> str | None:
    return value[:length] if value else None
