"""A WABA's message templates from Meta's WhatsApp Business Management API.

``GET {graph}/{waba_id}/message_templates?fields=...&limit=...`` with the number's bearer token
answers ``{"data": [template, ...], "paging": {"cursors": {"before", "after"}, "next"}}``; a page
with ``paging.next`` has more, asked for with ``after=<cursors.after>``. We build that next URL
ourselves from the configured Graph URL rather than following ``next`` as given, so a token is
only ever sent to the Graph host we were configured with.

Each template: ``id``, ``name``, ``language``, ``status`` (APPROVED, PENDING, REJECTED, PAUSED,
DISABLED, IN_APPEAL, ...), ``category`` and ``components`` (``{"type": "BODY", "text": "Olá {{1}}",
"example": {"body_text": [["Maria"]]}}``; named parameters as ``{{customer_name}}`` with
``example.body_text_named_params``). Errors are Graph errors, raised as the classified SendError of
``meta_api.graph_error`` (transport failures as ``providers.http.request`` raises them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from messaging_whatsapp.providers.http import json_body, request
from messaging_whatsapp.providers.meta_api import graph_error
from messaging_whatsapp.providers.outbound import ErrorClass, SendError

FIELDS = "name,language,status,category,components,id"
PAGE_SIZE = 100
# A WABA holds at most a few thousand templates; past this many pages something is looping.
MAX_PAGES = 200
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def placeholders(text: str | None) -> list[str]:
    """The distinct placeholders of a template text, in order of first use: ``["1", "2"]`` for
    positional parameters, their names for named ones."""
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


@dataclass(frozen=True, slots=True)
class GraphTemplate:
    """One template as Meta lists it, with what sending needs read out of its components."""

    meta_id: str | None
    name: str
    language: str
    status: str
    category: str
    components: list[dict[str, Any]]

    @property
    def body_text(self) -> str:
        """The BODY component's text ("" without one)."""
        for component in self.components:
            if str(component.get("type", "")).upper() == "BODY":
                text = component.get("text")
                return text if isinstance(text, str) else ""
        return ""

    @property
    def parameter_names(self) -> list[str]:
        """The body's parameters, in order."""
        return placeholders(self.body_text)


def templates_url(api_url: str, waba_id: str) -> str:
    """The message_templates edge of a WABA."""
    return f"{api_url.rstrip('/')}/{waba_id}/message_templates"


async def list_templates(
    client: httpx.AsyncClient, api_url: str, waba_id: str, access_token: str
) -> list[GraphTemplate]:
    """Every template of the WABA, following the pages; SendError when Meta refuses or answers
    something that is not a template list."""
    if not access_token or not waba_id.isdigit():
        raise SendError(
            ErrorClass.PAUSE_CHANNEL, "missing_credentials", "needs an access token and a numeric WABA id"
        )
    headers = {"Authorization": f"Bearer {access_token}"}
    params: dict[str, str | int] = {"fields": FIELDS, "limit": PAGE_SIZE}
    found: list[GraphTemplate] = []
    for _ in range(MAX_PAGES):
        response = await request(
            client, "GET", templates_url(api_url, waba_id), params=params, headers=headers
        )
        if not response.is_success:
            raise graph_error(response)
        body = json_body(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SendError(ErrorClass.FIX_REQUEST, "unexpected_answer", "answer has no data list")
        found.extend(template for item in data if (template := _template(item)) is not None)
        after = _next_cursor(body)
        if after is None:
            return found
        params = {**params, "after": after}
    raise SendError(ErrorClass.FIX_REQUEST, "too_many_pages", f"more than {MAX_PAGES} pages of templates")


def _next_cursor(body: dict[str, Any]) -> str | None:
    """The ``after`` cursor when the page says there is a next one."""
    paging = body.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    return after if isinstance(after, str) and after else None


def _template(item: Any) -> GraphTemplate | None:
    """A listed template, or None for an item without a name and language (nothing could send it)."""
    if not isinstance(item, dict):
        return None
    name, language = item.get("name"), item.get("language")
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        return None
    components = item.get("components")
    meta_id = item.get("id")
    return GraphTemplate(
        meta_id=str(meta_id) if isinstance(meta_id, str | int) and not isinstance(meta_id, bool) else None,
        name=name,
        language=language,
        status=str(item.get("status") or "PENDING").upper(),
        category=str(item.get("category") or "").upper(),
        components=[c for c in components if isinstance(c, dict)] if isinstance(components, list) else [],
    )
