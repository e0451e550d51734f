"""The fake provider server itself: scripted answers and faults behave as the adapter tests assume."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.http import FakeHttpServer, Fault, RecordedRequest, Reply


def _ok(request: RecordedRequest) -> Reply:
    return Reply(201, {"echo": request.json()})


async def test_handler_answers_and_records() -> None:
    with FakeHttpServer(_ok) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            response = await client.post("/send?x=1", json={"a": 1}, headers={"X-Key": "k"})
    assert response.status_code == 201
    assert response.json() == {"echo": {"a": 1}}
    [request] = server.accepted
    assert (request.method, request.path, request.query, request.headers["x-key"]) == (
        "POST",
        "/send",
        {"x": "1"},
        "k",
    )


async def test_scripted_reply_then_handler() -> None:
    with FakeHttpServer(_ok) as server:
        server.script(Reply(429, {"error": "slow down"}, {"Retry-After": "2"}))
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            limited = await client.post("/send", json={})
            accepted = await client.post("/send", json={})
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    assert accepted.status_code == 201
    assert len(server.requests) == 2
    assert len(server.accepted) == 1


@pytest.mark.parametrize(
    ("fault", "accepted"),
    [(Fault.RESET, 0), (Fault.LOST_ANSWER, 1), (Fault.TIMEOUT, 0)],
)
async def test_faults_break_the_exchange(fault: Fault, accepted: int) -> None:
    with FakeHttpServer(_ok, hold_seconds=2) as server:
        server.script(fault)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=0.5) as client:
            with pytest.raises(httpx.TransportError):
                await client.post("/send", json={})
            after = await client.post("/send", json={})
    assert after.status_code == 201
    assert len(server.accepted) == accepted + 1
