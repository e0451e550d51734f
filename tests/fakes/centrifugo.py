"""A fake Centrifugo server API: `POST /api/publish` and `POST /api/batch` with `X-API-Key`.

It keeps what was published per channel, as Centrifugo would hand it to subscribers. Answers as
Centrifugo v5/v6 does: `{"result": {}}` for a publish, `{"replies": [...]}` for a batch, 401 for a
wrong key, and `{"error": {"code", "message"}}` for a command it refuses (a channel without
a name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import RecordedRequest, Reply


@dataclass(slots=True)
class FakeCentrifugo:
    """Centrifugo's HTTP server API, as far as publishing goes."""

    api_key: str
    # channel -> the data published to it, in order.
    published: dict[str, list[Any]] = field(default_factory=dict)

    def __call__(self, request: RecordedRequest) -> Reply:
        if request.method != "POST":
            return Reply(405)
        if request.headers.get("x-api-key") != self.api_key:
            return Reply(401)
        body = request.json()
        if request.path == "/api/publish":
            return Reply(200, self._publish(body))
        if request.path == "/api/batch":
            answers = [self._publish(command.get("publish") or {}) for command in body.get("commands", [])]
            replies = [{"error": a["error"]} if "error" in a else {"publish": a["result"]} for a in answers]
            return Reply(200, {"replies": replies})
        return Reply(404)

    def _publish(self, command: dict[str, Any]) -> dict[str, Any]:
        channel = command.get("channel")
        if not channel or "data" not in command:
            return {"error": {"code": 107, "message": "bad request"}}
        self.published.setdefault(channel, []).append(command["data"])
        return {"result": {}}
