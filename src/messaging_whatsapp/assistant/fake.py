"""A deterministic stand-in for an OpenAI-compatible server, for tests and `make run`'s demo: its
chat "model" answers with the best source it was given (cited as [1]) or hands off when it was
given none; its embeddings are hashed bags of words. No network, same answer every time."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from messaging_whatsapp.assistant.prompt import HANDOFF_MARKER, SOURCES_HEADING

FAKE_MODEL = "fake-echo"
EMBEDDING_DIMENSIONS = 256
_FIRST_SOURCE = re.compile(r"^\[1\] \([^\n]*\)\n(.*?)(?=\n\n\[2\] \(|\Z)", re.DOTALL | re.MULTILINE)


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    """A chat completion answering with the system message's first source, cited."""
    system = next((m.get("content", "") for m in body.get("messages", []) if m.get("role") == "system"), "")
    sources = system.split(SOURCES_HEADING, 1)[1] if SOURCES_HEADING in system else ""
    found = _FIRST_SOURCE.search(sources.strip())
    answer = f"{found.group(1).strip()} [1]" if found else HANDOFF_MARKER
    return {
        "id": "chatcmpl-fake-" + hashlib.sha256(answer.encode()).hexdigest()[:16],
        "object": "chat.completion",
        "created": 0,
        "model": str(body.get("model") or FAKE_MODEL),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": len(system.split()),
            "completion_tokens": len(answer.split()),
            "total_tokens": 0,
        },
    }


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """One unit vector per input: its words hashed into EMBEDDING_DIMENSIONS buckets."""
    given = body.get("input", [])
    texts = [given] if isinstance(given, str) else list(given)
    return {
        "object": "list",
        "model": str(body.get("model") or FAKE_MODEL),
        "data": [
            {"object": "embedding", "index": index, "embedding": _bag_of_words(str(text))}
            for index, text in enumerate(texts)
        ],
    }


def _bag_of_words(text: str) -> list[float]:
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"[^\W_]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest()[:8], 16) % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]
