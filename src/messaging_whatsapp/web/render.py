"""Jinja2 for the pages: autoescaped (what a customer or another tenant wrote is always text), with
the helpers the templates share to show a message, a phone or a status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from messaging_whatsapp.inbox.schemas import MessageItem
from messaging_whatsapp.web.i18n import Texts

TEMPLATES = Path(__file__).parent / "templates"
STATIC_VERSION = "1"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# The type a message's preview names when it has no text of its own.
TYPE_NAMES = {
    "image": "Image",
    "audio": "Audio",
    "video": "Video",
    "document": "Document",
    "sticker": "Sticker",
    "location": "Location",
    "contacts": "Contact card",
    "reaction": "Reaction",
    "template": "Template",
    "buttons": "Buttons",
}
STATUS_NAMES = {
    "queued": "Queued",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Read",
    "failed": "Failed",
}
SENDER_NAMES = {"campaign": "Campaign", "ai": "AI", "system": "Automatic", "phone": "Business phone"}


def phone_label(phone: str | None) -> str:
    """A phone as people read it, or "" for a contact known only by a BSUID or LID."""
    if not phone:
        return ""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def preview(kind: str | None, text: str | None, t: Texts) -> str:
    """One line for a message: its text (or caption), or what kind of message it is."""
    if kind == "template":
        return f"{t('Template')}: {text or ''}"
    if text:
        return " ".join(text.split())[:140]
    if kind is None:
        return t("No messages yet")
    return t(TYPE_NAMES.get(kind, "Message"))


def sender_label(message: MessageItem, contact_name: str | None, t: Texts) -> str:
    """Who wrote a message, as the chat names them."""
    if message.sender_type == "lead":
        return contact_name or t("Customer")
    if message.sender_type == "user":
        return message.sender_name or t("System")
    return t(SENDER_NAMES.get(message.sender_type, "System"))


def quote_sender(direction: str | None, contact_name: str | None, t: Texts) -> str:
    """Who wrote a quoted message: the customer, or the business."""
    if direction == "inbound":
        return contact_name or t("Customer")
    return t("You")


def media_url(message: MessageItem) -> str | None:
    """A media's public URL (http or https only), when the provider gave one."""
    url = (message.media or {}).get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return url
    return None


def map_url(latitude: float | None, longitude: float | None) -> str | None:
    """An OpenStreetMap link for a location message."""
    if latitude is None or longitude is None:
        return None
    query = urlencode({"mlat": latitude, "mlon": longitude})
    return f"https://www.openstreetmap.org/?{query}#map=16/{latitude}/{longitude}"


def to_json(value: Any) -> Markup:
    """A value as JSON safe inside a <script type="application/json"> block."""
    text = json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))


def query(filters: Any, **more: str) -> str:
    """The list's filters (and more parameters) as a query string."""
    return urlencode({**filters.query(), **more})


def initials(name: str | None, fallback: str) -> str:
    """One or two letters for an avatar."""
    words = [w for w in (name or "").split() if w[:1].isalnum()]
    if not words:
        digits = [c for c in fallback if c.isdigit()]
        return "".join(digits[-2:]) or "?"
    return (words[0][0] + (words[-1][0] if len(words) > 1 else "")).upper()


def avatar_hue(key: str) -> int:
    """A stable colour for a contact's avatar."""
    return sum(key.encode()) * 37 % 360


environment.globals.update(
    phone_label=phone_label,
    preview=preview,
    sender_label=sender_label,
    quote_sender=quote_sender,
    media_url=media_url,
    map_url=map_url,
    to_json=to_json,
    initials=initials,
    query=query,
    avatar_hue=avatar_hue,
    TYPE_NAMES=TYPE_NAMES,
    STATUS_NAMES=STATUS_NAMES,
    STATIC_VERSION=STATIC_VERSION,
)


# Defence in depth should a customer's text ever reach the page as markup: scripts only from the
# engine (Alpine.js evaluates its attributes, hence unsafe-eval), no inline script, no framing.
# Media may come from the providers' URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https: http:; media-src 'self' https: http:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def page(request: Request, name: str, t: Texts, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render a template into an HTML answer (never cached: it shows live data)."""
    html = environment.get_template(name).render(request=request, t=t, lang=t.language, **values)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)
