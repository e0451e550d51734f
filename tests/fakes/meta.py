"""A fake Meta Graph API for ``POST /{version}/{phone_number_id}/messages``, behind FakeHttpServer.

It checks what the real Cloud API checks before taking a message: the bearer token (401, Graph code
190), the phone number id (400, code 100) and the body's shape per message type (400, code 100 with
the reason in ``error_data.details``). A good send is answered as ``meta_send_response_success.json``
with a fresh ``wamid.``; a read receipt as ``{"success": true}``. Tests can queue Graph errors.

Templates are taken as the Cloud API takes them (``type: template``, name, language code,
components with typed parameters). The 24-hour window is not refused at send time: FORMATS.md
documents 131047 only as a later ``failed`` status. Given ``window`` (the numbers that wrote in the
last 24 h), the fake accepts a free-form message to anyone else as Meta does and notes it in
``outside_window``: the message that would come back failed with 131047.

``GET /{version}/{waba_id}/message_templates`` answers as the Business Management API does: the
WABA's templates in pages of ``limit`` (default 25) as ``{"data": [...], "paging": {"cursors":
{"before", "after"}, "next"}}``, ``next`` only when there is a next page, asked for with
``after=<cursor>``; only the ``fields`` asked for (default id, name, language, status, category,
components). Build template entries with ``meta_template(...)``.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import RecordedRequest, Reply

_PATH = re.compile(r"^/v\d+\.\d+/(?P<phone_number_id>[^/]+)/messages$")
_TEMPLATES_PATH = re.compile(r"^/(?P<version>v\d+\.\d+)/(?P<waba_id>[^/]+)/message_templates$")
_TEMPLATE_FIELDS = ("name", "language", "status", "category", "components", "id")
_DEFAULT_PAGE = 25
_MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
_CAPTIONED = frozenset({"image", "video", "document"})
_TYPES = _MEDIA_TYPES | {"text", "template", "interactive"}
_ENVELOPE_KEYS = {
    "messaging_product", "recipient_type", "to", "recipient", "type", "context", "biz_opaque_callback_data",
}  # fmt: skip
# A business-scoped user id: two letters, a dot, letters and digits ("BR.1502576394655843").
_BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")


class BadRequest(Exception):
    """The body is not something the Cloud API would take (becomes Graph error 100)."""


def graph_error(status: int, code: int, message: str, details: str | None = None) -> Reply:
    """A Graph API error answer, shaped as Meta sends it."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "A" + secrets.token_hex(11)
    return Reply(status, {"error": error})


def new_wamid() -> str:
    """A fresh, wamid-looking message id."""
    return "wamid." + base64.b64encode(b"HBgN" + secrets.token_bytes(24)).decode()


@dataclass
class MetaGraphFake:
    """The handler: one business phone number with its token; records what it accepted."""

    token: str
    phone_number_id: str
    # Meta may answer a wa_id other than the number sent (Brazil's 9th digit): input -> wa_id.
    wa_ids: dict[str, str] = field(default_factory=dict)
    # (wamid, body) of every message accepted, in order.
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Message ids marked as read.
    read: list[str] = field(default_factory=list)
    # Ids to give the next accepted messages (a test that needs to know one in advance).
    wamids: list[str] = field(default_factory=list)
    # The numbers inside their 24 h window; None: the window is not watched.
    window: set[str] | None = None
    # (wamid, body) of free-form messages accepted outside the window (each would fail 131047).
    outside_window: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # The WhatsApp Business Account of the number, and its templates as Meta lists them.
    waba_id: str | None = None
    templates: list[dict[str, Any]] = field(default_factory=list)
    # Every message_templates request's query, in order (paging is asserted on it).
    template_queries: list[dict[str, str]] = field(default_factory=list)
    _errors: deque[Reply] = field(default_factory=deque, init=False)

    def fail_next(self, status: int, code: int, message: str, details: str | None = None) -> None:
        """Answer the next well-formed, authorised request with this Graph error."""
        self._errors.append(graph_error(status, code, message, details))

    def __call__(self, request: RecordedRequest) -> Reply:
        """Answer one request as the Graph API would."""
        templates = _TEMPLATES_PATH.match(request.path)
        if request.method == "GET" and templates is not None:
            return self._templates(request, templates["version"], templates["waba_id"])
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            return graph_error(400, 100, "Unsupported request - method type or path not supported")
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if (unknown := match["phone_number_id"]) != self.phone_number_id:
            return graph_error(
                400, 100, f"Unsupported post request. Object with ID '{unknown}' does not exist"
            )
        try:
            body = _json_object(request)
            receipt = "status" in body
            if receipt:
                check_read_receipt(body)
            else:
                check_message(body)
        except BadRequest as exc:
            return graph_error(400, 100, "(#100) Invalid parameter", str(exc))
        except (KeyError, TypeError, AttributeError) as exc:
            # A shape the checks did not foresee: still a bad request, never a crashed handler.
            return graph_error(400, 100, "(#100) Invalid parameter", f"malformed body: {exc!r}")
        if self._errors:
            return self._errors.popleft()
        return self._mark_read(body) if receipt else self._accept(body)

    def _templates(self, request: RecordedRequest, version: str, waba_id: str) -> Reply:
        """A page of the WABA's templates, as the Business Management API pages them."""
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if waba_id != self.waba_id:
            return graph_error(
                400, 100, f"Unsupported get request. Object with ID '{waba_id}' does not exist"
            )
        if self._errors:
            return self._errors.popleft()
        self.template_queries.append(dict(request.query))
        try:
            limit = int(request.query.get("limit", _DEFAULT_PAGE))
            start = int(base64.b64decode(request.query["after"]).decode()) if "after" in request.query else 0
        except ValueError:
            return graph_error(400, 100, "(#100) Invalid parameter", "limit and after must be valid")
        fields = [f for f in request.query.get("fields", ",".join(_TEMPLATE_FIELDS)).split(",") if f]
        page = self.templates[start : start + limit]
        data = [{key: template[key] for key in fields if key in template} for template in page]
        body: dict[str, Any] = {"data": data}
        if page:
            end = start + len(page)
            cursors = {"before": _cursor(start), "after": _cursor(end)}
            body["paging"] = {"cursors": cursors}
            if end < len(self.templates):
                query = f"fields={','.join(fields)}&limit={limit}&after={cursors['after']}"
                body["paging"]["next"] = (
                    f"https://graph.facebook.com/{version}/{waba_id}/message_templates?{query}"
                )
        return Reply(200, body)

    def _accept(self, body: dict[str, Any]) -> Reply:
        wamid = self.wamids.pop(0) if self.wamids else new_wamid()
        self.sent.append((wamid, body))
        if self.window is not None and body["type"] != "template" and body.get("to") not in self.window:
            self.outside_window.append((wamid, body))
        if "to" not in body:
            # Sent to a BSUID: Meta answers with the user id, and no wa_id to give away the phone.
            contact = {"input": body["recipient"], "user_id": body["recipient"]}
        else:
            to = body["to"]
            contact = {"input": to, "wa_id": self.wa_ids.get(to, to)}
        return Reply(
            200, {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]}
        )

    def _mark_read(self, body: dict[str, Any]) -> Reply:
        self.read.append(body["message_id"])
        return Reply(200, {"success": True})


def _cursor(index: int) -> str:
    return base64.b64encode(str(index).encode()).decode()


def meta_template(
    name: str,
    body: str,
    *,
    language: str = "pt_BR",
    status: str = "APPROVED",
    category: str = "UTILITY",
    examples: list[str] | None = None,
    template_id: str | None = None,
    footer: str | None = None,
) -> dict[str, Any]:
    """A template as the management API lists it: a BODY with {{1}}.. placeholders and their example."""
    component: dict[str, Any] = {"type": "BODY", "text": body}
    if examples:
        component["example"] = {"body_text": [examples]}
    components: list[dict[str, Any]] = [component]
    if footer:
        components.append({"type": "FOOTER", "text": footer})
    return {
        "name": name,
        "parameter_format": "POSITIONAL",
        "components": components,
        "language": language,
        "status": status,
        "category": category,
        "id": template_id or str(10**15 + secrets.randbelow(10**15)),
    }


def check_read_receipt(body: dict[str, Any]) -> None:
    """Raise BadRequest unless the body is a well-formed "mark as read" request."""
    _require(body.get("messaging_product") == "whatsapp", "messaging_product must be 'whatsapp'")
    _require(body.get("status") == "read", "status must be 'read'")
    _require(_text(body.get("message_id")), "message_id is required")
    allowed = {"messaging_product", "status", "message_id", "typing_indicator"}
    _require(set(body) <= allowed, f"unexpected fields {sorted(set(body) - allowed)}")
    if "typing_indicator" in body:
        _require(body["typing_indicator"] == {"type": "text"}, "typing_indicator.type must be 'text'")


def check_message(body: dict[str, Any]) -> None:
    """Raise BadRequest unless the body is a well-formed Cloud API message of a type we send."""
    _require(body.get("messaging_product") == "whatsapp", "messaging_product must be 'whatsapp'")
    _require(body.get("recipient_type", "individual") == "individual", "recipient_type must be 'individual'")
    if "to" in body or "recipient" not in body:
        _require(
            isinstance(body.get("to"), str) and body["to"].isdigit(), "to must be the phone number's digits"
        )
    else:
        # A username user known by their business-scoped user id: `recipient` instead of `to`.
        recipient = body["recipient"]
        _require(isinstance(recipient, str) and bool(_BSUID.match(recipient)), "recipient must be a BSUID")
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        raise BadRequest(f"unsupported type {kind!r}")
    _require(set(body) - _ENVELOPE_KEYS == {kind}, f"the body takes the {kind!r} object and no other")
    if "context" in body:
        _require(set(body["context"]) == {"message_id"}, "context takes only message_id")
        _require(_text(body["context"]["message_id"]), "context.message_id is required")
    if "biz_opaque_callback_data" in body:
        data = body["biz_opaque_callback_data"]
        _require(_text(data) and len(data) <= 512, "biz_opaque_callback_data is 1 to 512 characters")
    content = body[kind]
    _require(isinstance(content, dict), f"{kind} must be an object")
    if kind == "text":
        _check_text(content)
    elif kind in _MEDIA_TYPES:
        _check_media(kind, content)
    elif kind == "template":
        _check_template(content)
    else:
        _check_interactive(content)


def _check_text(text: dict[str, Any]) -> None:
    _require(_text(text.get("body")) and len(text["body"]) <= 4096, "text.body is 1 to 4096 characters")
    _require(isinstance(text.get("preview_url", False), bool), "text.preview_url must be a boolean")
    _require(set(text) <= {"body", "preview_url"}, "unexpected text field")


def _check_media(kind: str, media: dict[str, Any]) -> None:
    _require(("link" in media) != ("id" in media), f"{kind} needs exactly one of link or id")
    allowed = {"link", "id"} | ({"caption"} if kind in _CAPTIONED else set())
    allowed |= {"filename"} if kind == "document" else set()
    _require(set(media) <= allowed, f"{kind} does not take {sorted(set(media) - allowed)}")
    for key in media:
        _require(_text(media[key]), f"{kind}.{key} must be a non-empty string")


def _check_template(template: dict[str, Any]) -> None:
    _require(_text(template.get("name")), "template.name is required")
    language = template.get("language")
    _require(isinstance(language, dict) and _text(language.get("code")), "template.language.code is required")
    _require(set(template) <= {"name", "language", "components"}, "unexpected template field")
    components = template.get("components", [])
    _require(isinstance(components, list), "template.components must be a list")
    for component in components:
        _require(component.get("type") in {"header", "body", "button"}, "unknown component type")
        for parameter in component.get("parameters", []):
            _require(_text(parameter.get("type")) and parameter["type"] in parameter, "bad parameter")


def _check_interactive(interactive: dict[str, Any]) -> None:
    _require(interactive.get("type") == "button", "only interactive type 'button' is faked")
    body = interactive.get("body")
    _require(isinstance(body, dict) and _text(body.get("text")), "interactive.body.text is required")
    buttons = interactive.get("action", {}).get("buttons")
    _require(isinstance(buttons, list) and 1 <= len(buttons) <= 3, "action.buttons takes 1 to 3 buttons")
    for button in buttons:
        reply = button.get("reply", {})
        _require(button.get("type") == "reply", "button type must be 'reply'")
        _require(_text(reply.get("id")) and len(reply["id"]) <= 256, "reply.id is 1 to 256 characters")
        _require(_text(reply.get("title")) and len(reply["title"]) <= 20, "reply.title is 1 to 20 characters")
    titles = [button["reply"]["title"] for button in buttons]
    _require(len(set(titles)) == len(titles), "button titles must be unique")


def _json_object(request: RecordedRequest) -> dict[str, Any]:
    _require(request.headers.get("content-type", "").startswith("application/json"), "body must be JSON")
    try:
        body = request.json()
    except ValueError as exc:
        raise BadRequest("body is not JSON") from exc
    _require(isinstance(body, dict), "body must be a JSON object")
    return dict(body)


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise BadRequest(reason)
