"""The shared typed accessors of providers/payload.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from messaging_whatsapp.providers import payload
from messaging_whatsapp.providers.base import PayloadError


def test_errors_name_the_source_and_the_path() -> None:
    with pytest.raises(PayloadError, match=r"^Meta payload: data\.id must be a string, got int$"):
        payload.opt_str("Meta", {"id": 1}, "id", "data")
    with pytest.raises(PayloadError, match=r"^WuzAPI payload: body\.event is missing$"):
        payload.req_object("WuzAPI", {}, "event", "body")
    with pytest.raises(PayloadError, match=r"data\.id is missing or empty"):
        payload.req_str("x", {"id": ""}, "id", "data")


def test_optional_accessors_read_absent_and_null_as_empty() -> None:
    parent: payload.JsonObject = {"none": None}
    assert payload.opt_str("x", parent, "none", "p") is None
    assert payload.opt_object("x", parent, "missing", "p") is None
    assert payload.opt_list("x", parent, "none", "p") == []
    assert payload.opt_bool("x", parent, "missing", "p") is None
    assert payload.opt_number("x", parent, "none", "p") is None


@pytest.mark.parametrize("value", [True, "1", [1]])
def test_a_number_is_never_a_bool_or_a_string(value: object) -> None:
    with pytest.raises(PayloadError, match="must be a number"):
        payload.opt_number("x", {"n": value}, "n", "p")


@pytest.mark.parametrize(
    ("value", "expected"), [(5, 5), (" 42", 42), ("4.2", None), (True, None), (None, None)]
)
def test_integer(value: object, expected: int | None) -> None:
    assert payload.integer(value) == expected


def test_times() -> None:
    assert payload.from_seconds("x", 0, "t") == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(PayloadError, match=r"t is out of range"):
        payload.from_seconds("x", 10**20, "t")
    naive = payload.rfc3339("x", {"t": "2025-11-13T12:00:00"}, "t", "p")
    assert naive == datetime(2025, 11, 13, 12, tzinfo=UTC)
    with pytest.raises(PayloadError, match="RFC 3339"):
        payload.rfc3339("x", {"t": "yesterday"}, "t", "p")


def test_json_helpers() -> None:
    assert payload.load_object("x", b'{"a": 1}', "body") == {"a": 1}
    with pytest.raises(PayloadError, match="body is not valid JSON"):
        payload.load_object("x", b"{", "body")
    with pytest.raises(PayloadError, match="jsonData must be an object, got list"):
        payload.load_object("x", "[]", "jsonData")
    assert payload.json_or_none(b"not json") is None
    assert payload.json_str('{"id": "row-1"}', "id") == "row-1"
    assert payload.json_str('{"id": 1}', "id") is None
    assert payload.json_str("[1]", "id") is None


def test_secret_matches_never_accepts_an_empty_secret() -> None:
    assert payload.secret_matches("s3cret", "s3cret")
    assert not payload.secret_matches("s3cret", "other")
    assert not payload.secret_matches("", "")
    assert not payload.secret_matches(None, "s3cret")
