"""A fake Twilio Messages API (``POST /2010-04-01/Accounts/{sid}/Messages.json``) for FakeHttpServer.

It checks what Twilio checks before creating a message: HTTP Basic ``AccountSid:AuthToken`` (401 with
error 20003 otherwise), the account SID in the path, ``To``, one of ``Body``/``MediaUrl``/``ContentSid``,
and ``From`` or ``MessagingServiceSid``, and a ``Body`` of at most 1,600 characters (21617). Given
``window`` (the ``whatsapp:+...`` addresses that wrote in the last 24 h), it refuses free-form
``Body``/``MediaUrl`` to anyone else at creation with 63016, as FORMATS.md's
``twilio_send_error_63016_sync.json`` shows; a ``ContentSid`` template always goes. A created
message answers 201 in the shape of ``twilio_send_response.json`` with a fresh ``SM...`` sid.
``fail_next`` makes the next creates answer a given Twilio REST error instead (e.g. 21211, 63016).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from tests.fakes.http import RecordedRequest, Reply

_EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
_RESOURCE_SHAPE: dict[str, Any] = json.loads((_EXAMPLES / "twilio_send_response.json").read_text())["body"]
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_WHATSAPP_ADDRESS = re.compile(r"^whatsapp:\+[1-9][0-9]{7,14}$")
_FORM = "application/x-www-form-urlencoded"

# Messages Twilio gives for the errors tests ask for by code alone.
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
    21604: "A 'To' phone number is required.",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21656: "The ContentVariables Parameter is invalid.",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}


def error_body(code: int, status: int, message: str | None = None) -> dict[str, Any]:
    """A Twilio REST error body: ``{"code", "message", "more_info", "status"}``."""
    return {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, f"Error {code}"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def error_reply(code: int, status: int = 400, message: str | None = None) -> Reply:
    """The HTTP answer for a Twilio REST error."""
    return Reply(status, error_body(code, status, message))


@dataclass(frozen=True, slots=True)
class CreatedMessage:
    """A message the fake accepted: its sid and the form it was created from."""

    sid: str
    form: dict[str, str]


class FakeTwilio:
    """A FakeHttpServer handler speaking Twilio's Messages create API for one account."""

    def __init__(self, account_sid: str, auth_token: str, window: set[str] | None = None) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        # The addresses inside their 24 h window; None: the window is not enforced.
        self.window = window
        self.created: list[CreatedMessage] = []
        self._failures: deque[Reply] = deque()

    def fail_next(self, code: int, status: int = 400, message: str | None = None) -> None:
        """Answer the next valid create with this Twilio error instead of creating the message."""
        self._failures.append(error_reply(code, status, message))

    def __call__(self, request: RecordedRequest) -> Reply:
        """Answer one request as Twilio would."""
        if not self._authorized(request):
            return error_reply(20003, 401)
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None or match["sid"] != self.account_sid:
            return error_reply(20404, 404)
        form = request.form() if _is_form(request) else {}
        problem = _validate(form)
        if problem is not None:
            return problem
        if self.window is not None and "ContentSid" not in form and form["To"] not in self.window:
            return error_reply(63016)
        if self._failures:
            return self._failures.popleft()
        return self._create(form)

    def _authorized(self, request: RecordedRequest) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.account_sid}:{self.auth_token}"

    def _create(self, form: dict[str, str]) -> Reply:
        sid = "SM" + uuid.uuid4().hex
        self.created.append(CreatedMessage(sid, form))
        return Reply(201, self._resource(sid, form))

    def _resource(self, sid: str, form: dict[str, str]) -> dict[str, Any]:
        """The created Message resource, in the shape of twilio_send_response.json."""
        body = copy.deepcopy(_RESOURCE_SHAPE)
        now = format_datetime(datetime.now(UTC))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        body.update(
            sid=sid,
            account_sid=self.account_sid,
            body=form.get("Body", ""),
            date_created=now,
            date_updated=now,
            to=form["To"],
            messaging_service_sid=form.get("MessagingServiceSid"),
            num_media="1" if form.get("MediaUrl") else "0",
            uri=f"{uri}.json",
            subresource_uris={"media": f"{uri}/Media.json"},
        )
        body["from"] = form.get("From")
        return body


def _is_form(request: RecordedRequest) -> bool:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower() == _FORM


def _validate(form: dict[str, str]) -> Reply | None:
    """The error Twilio answers for a create it refuses before queueing it, or None."""
    to = form.get("To")
    if not to:
        return error_reply(21604)
    if not _WHATSAPP_ADDRESS.match(to):
        return error_reply(21211, message=f"Invalid 'To' Phone Number: {to}")
    if not (form.get("From") or form.get("MessagingServiceSid")):
        return error_reply(21603)
    if not any(form.get(name) for name in ("Body", "MediaUrl", "ContentSid")):
        return error_reply(21602)
    if len(form.get("Body", "")) > 1600:
        return error_reply(21617)
    if "ContentVariables" in form and not _is_json_object(form["ContentVariables"]):
        return error_reply(21656)
    return None


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
