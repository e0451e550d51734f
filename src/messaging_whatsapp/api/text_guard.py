"""Text no database can store, refused at the API's door: a NUL character (PostgreSQL refuses it)
or a lone UTF-16 surrogate (not UTF-8 at all), in the path, the query or a JSON body.

JSON allows both as escapes (`\\u0000`, `\\ud800`), Python's JSON reader takes them, and they used to
reach the database and answer 500. Here they are a 422 that says where; every other request
passes untouched (the body is read once and handed on as it came).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from messaging_whatsapp.http_errors import error_response

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CHECKED_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RefuseUnstorableText:
    """ASGI middleware for the /api/ routes (the webhooks clean what they store instead)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request with 422 if its target or JSON body holds unstorable text."""
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        problem = _target_problem(scope)
        if problem is None and scope["method"] in _CHECKED_METHODS and _is_json(scope):
            body = await _read_body(receive)
            problem = _body_problem(body)
            receive = _replay(body, receive)
        if problem is not None:
            await error_response(422, "validation_error", problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _target_problem(scope: Scope) -> str | None:
    if _UNSTORABLE.search(scope["path"]):
        return "the path holds a NUL character or invalid text"
    query = unquote_to_bytes(scope.get("query_string", b""))
    if b"\x00" in query:
        return "the query holds a NUL character"
    try:
        query.decode("utf-8")
    except UnicodeDecodeError:
        return "the query is not UTF-8"
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type.endswith(b"json")
    return False


def _body_problem(body: bytes) -> str | None:
    if b"\\u" not in body:  # neither character can appear in JSON but escaped
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "surrogate" in str(exc):
            return "the body holds a lone UTF-16 surrogate (\\ud800 to \\udfff without its pair)"
        return None  # not JSON at all: the route's own validation says so
    where = _find(value, "body")
    return None if where is None else f"{where}: NUL characters are not accepted"


def _find(value: Any, where: str) -> str | None:
    """Where in a parsed JSON value a string holds NUL, or None."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find(key, where) or _find(item, f"{where}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, then: Receive) -> Receive:
    """The body as one message, then the connection's own messages (a disconnect, when it comes)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
