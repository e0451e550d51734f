"""One log line per HTTP request, at INFO (`LOG_LEVEL=WARNING` turns them off): method, path,
status and duration, e.g. `POST /webhooks/evolution/0193.../*** 200 1.4ms`.

The path is all that is logged of the target: never the query (Meta's verification carries its
verify token there), and a webhook path's last segment, the instance's secret, is masked.
Uvicorn's own access log stays off, since it prints the path whole.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("messaging_whatsapp.access")

# `/webhooks/{provider}/{instance}/{secret}`: the segments from the secret on are masked.
_WEBHOOK_PREFIX = "/webhooks/"
_SECRET_SEGMENT = 4
_MASK = "***"
# Printable, and no line breaks a client could slip in to forge a log line.
_SAFE = "/:@!$&'()*+,;=-._~"


def loggable_path(path: str) -> str:
    """The path as logged: percent-encoded where not plainly printable, a webhook's secret masked."""
    if path.startswith(_WEBHOOK_PREFIX):
        segments = path.split("/")
        if len(segments) > _SECRET_SEGMENT:
            path = "/".join([*segments[:_SECRET_SEGMENT], _MASK])
    return quote(path, safe=_SAFE)


class AccessLog:
    """ASGI middleware writing each request's line once its answer has started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; log it when it is answered (or fails)."""
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app fails before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            logger.info(
                "%s %s %d %.1fms",
                scope["method"],
                loggable_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )
