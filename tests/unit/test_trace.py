"""What a send's trace keeps for the logs: no credentials, bounded sizes; and which failures are
about the number."""

from __future__ import annotations

import json

import httpx

from messaging_whatsapp.providers.outbound import ErrorClass, SendError
from messaging_whatsapp.providers.trace import MAX_CHARS, REDACTED, SendTrace, bounded, redact


def test_credentials_are_removed_wherever_they_are() -> None:
    data = {
        "headers": {"authorization": "Bearer EAAG", "apikey": "k-1", "content-type": "application/json"},
        "body": {"to": "5511", "instance": {"token": "t-2", "hash": "h-3"}, "items": [{"api_key": "k-4"}]},
    }
    clean = redact(data)
    assert clean["headers"] == {
        "authorization": REDACTED,
        "apikey": REDACTED,
        "content-type": "application/json",
    }
    assert clean["body"]["instance"] == {"token": REDACTED, "hash": REDACTED}
    assert clean["body"]["items"] == [{"api_key": REDACTED}]
    assert clean["body"]["to"] == "5511"


def test_a_large_answer_is_cut() -> None:
    data = bounded({"body": {f"k{index}": "x" * 900 for index in range(20)}})
    assert data["truncated"] is True
    assert len(json.dumps(data)) < MAX_CHARS + 100


def test_a_twilio_form_request_is_read_without_its_basic_auth() -> None:
    request = httpx.Request(
        "POST",
        "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1",
        data={"To": "whatsapp:+5511", "Body": "Oi"},
        headers={"Authorization": "Basic QUM6c2VjcmV0"},
    )
    trace = SendTrace(duration_ms=12, response=httpx.Response(400, json={"code": 21211}, request=request))
    sent = trace.request_data()
    assert sent is not None
    assert sent["url"] == "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
    assert sent["body"] == {"To": "whatsapp:+5511", "Body": "Oi"}
    assert sent["headers"]["authorization"] == REDACTED
    assert (trace.http_status, (trace.response_data() or {})["body"]) == (400, {"code": 21211})


def test_only_failures_about_the_number_cost_health() -> None:
    assert SendError(ErrorClass.DEFER, "131049", "spam").number_level
    assert SendError(ErrorClass.PAUSE_CHANNEL, "368", "policy").number_level
    assert SendError(ErrorClass.RETRY, "130429", "rate limit").number_level
    assert not SendError(ErrorClass.RETRY, "131000", "something went wrong").number_level
    assert not SendError(ErrorClass.INVALID_RECIPIENT, "131026", "invalid phone").number_level
    assert not SendError(ErrorClass.FIX_REQUEST, "template_unsupported", "gateway").number_level
    assert not SendError(ErrorClass.NEEDS_TEMPLATE, "131047", "outside the window").number_level
