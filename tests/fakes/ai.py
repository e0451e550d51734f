"""A fake OpenAI-compatible server over real HTTP: the engine's own deterministic model
(assistant/fake.py) behind tests/fakes/http.py, so tests see every request the engine sent."""

from __future__ import annotations

from messaging_whatsapp.assistant import fake
from tests.fakes.http import FakeHttpServer, RecordedRequest, Reply
from tests.helpers import SECRETS_USED

API_KEY = "sk-test-ai-key-7f3a9c"
SECRETS_USED.add(API_KEY)


def handle(request: RecordedRequest) -> Reply:
    """/v1/chat/completions and /v1/embeddings, with a bearer key; 401 without it."""
    if request.headers.get("authorization") != f"Bearer {API_KEY}":
        return Reply(
            401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        )
    if request.path == "/v1/chat/completions":
        return Reply(200, fake.chat_completion(request.json()))
    if request.path == "/v1/embeddings":
        return Reply(200, fake.embeddings(request.json()))
    return Reply(404, {"error": {"message": f"no route {request.path}"}})


def fake_ai_server() -> FakeHttpServer:
    """The server (use as a context manager); its base URL + "/v1" is an AI_BASE_URL."""
    return FakeHttpServer(handle)


def chat_requests(server: FakeHttpServer) -> list[dict[str, object]]:
    """The chat completion bodies the server received, in order."""
    return [r.json() for r in server.requests if r.path == "/v1/chat/completions"]
