"""An OpenAI-compatible embeddings endpoint replaces the local model by configuration: spoken to
over real HTTP (a local fake of /v1/embeddings), its vectors normalised, its failures a 4xx-able
EmbeddingFailed."""

from __future__ import annotations

import math

import pytest

from messaging_whatsapp.config import Settings
from messaging_whatsapp.knowledge.embeddings import EmbeddingFailed, MiniLM, RemoteEmbedder, embedder_for
from tests.fakes.http import FakeHttpServer, RecordedRequest, Reply


def _openai(request: RecordedRequest) -> Reply:
    """/v1/embeddings as OpenAI answers it: one vector per input, out of order on purpose."""
    body = request.json()
    data = [
        {"object": "embedding", "index": n, "embedding": [float(len(text)), 1.0, 0.0]}
        for n, text in enumerate(body["input"])
    ]
    return Reply(200, {"object": "list", "data": list(reversed(data)), "model": body["model"]})


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, database_url="sqlite:///x.db", **values)  # type: ignore[call-arg, arg-type]


async def test_the_endpoint_named_by_the_settings_embeds() -> None:
    with FakeHttpServer(_openai) as server:
        embedder = embedder_for(
            _settings(ai_base_url=f"{server.base_url}/v1", ai_api_key="sk-test", ai_embeddings_model="emb-1")
        )
        assert isinstance(embedder, RemoteEmbedder)
        vectors = await embedder.embed(["abc", "a"])
        request = server.requests[0]
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.json() == {"model": "emb-1", "input": ["abc", "a"]}
    assert vectors[0].tolist() == pytest.approx([3 / math.sqrt(10), 1 / math.sqrt(10), 0.0])
    assert vectors[1].tolist() == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(2), 0.0])


async def test_failures_are_embedding_failed() -> None:
    with FakeHttpServer(lambda _request: Reply(500, {"error": "down"})) as server:
        embedder = RemoteEmbedder(f"{server.base_url}/v1/embeddings", None, "emb-1", 5.0)
        with pytest.raises(EmbeddingFailed, match="answered 500"):
            await embedder.embed(["x"])
    with FakeHttpServer(lambda _request: Reply(200, {"data": []})) as server:
        embedder = RemoteEmbedder(f"{server.base_url}/v1/embeddings", None, "emb-1", 5.0)
        with pytest.raises(EmbeddingFailed, match="different number"):
            await embedder.embed(["x"])


def test_local_by_default() -> None:
    assert isinstance(embedder_for(_settings()), MiniLM)
