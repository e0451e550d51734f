"""Hybrid retrieval: full-text candidates (SQLite FTS5 / PostgreSQL tsvector, Portuguese, accents
folded) and vector candidates (the tenant's chunk matrix in memory, ranked by dot product of unit
vectors), fused by reciprocal rank (k=60)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import is_postgresql
from messaging_whatsapp.knowledge.embeddings import Vectors, one_blas_thread
from messaging_whatsapp.knowledge.models import TEXT_SEARCH_CONFIG, KnowledgeChunk, KnowledgeRevision

RRF_K = 60
# The local vector ranking counts for less than the full-text one: the model was trained on
# English and ranks Portuguese worse than the full text does; it still reorders the full text's
# best and finds what shares no word with the question. (bench/knowledge.py, recall@3 of the
# hybrid: 0.93 with 20 candidates a side and equal weights, 0.95 with 5 and equal weights, 0.97
# with 5 and a weight of 0.3 or 0.5; measured on the evaluation set itself: there is no other.)
VECTOR_WEIGHT = 0.3
# Each side offers this many candidates to the fusion: with more, a chunk ranked middling by both
# (an OR query matches most chunks) outscored the full text's first.
CANDIDATES = 5
MAX_TERMS = 24
# Words too common in Portuguese questions to tell chunks apart (accents already folded).
_COMMON_WORDS = (
    "a o as os um uma uns umas de da do das dos em na no nas nos ao aos para pra pro por pelo "
    "pela pelos pelas com sem que qual quais quem quando onde como e ou se eu voce voces ele "
    "ela eles elas nos me te lhe meu minha seu sua seus suas isso isto esse essa este esta "
    "aquele aquela ha tem ter sao ser e foi vai vou posso pode podem preciso quero queria "
    "gostaria saber sobre mais muito ja nao sim tambem entao the of and to is in"
)
STOPWORDS = frozenset(_COMMON_WORDS.split())


def fold(typed: str) -> str:
    """Lower case without accents ("Devolução" -> "devolucao")."""
    decomposed = unicodedata.normalize("NFKD", typed.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def query_terms(typed: str) -> list[str]:
    """The words of a question worth searching: folded, letters and digits only (no search
    syntax survives), common words dropped, each once."""
    seen: dict[str, None] = {}
    for word in re.findall(r"[^\W_]+", fold(typed)):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def _stem(term: str) -> str:
    """A longer word's beginning, searched as a prefix on both databases, so "entregas" finds
    "entrega" and "devolução" finds "devoluções" (unicode61 has no Portuguese stemmer, and
    PostgreSQL's stems the folded singular and plural apart: devoluca, devoluco)."""
    return term[: max(4, len(term) - 2)] if len(term) >= 6 else term


def _sqlite_match(terms: list[str]) -> str:
    """An FTS5 query: any of the terms, quoted (no operator survives), prefixes from 4 letters."""
    return " OR ".join(f'"{_stem(t)}"*' if len(_stem(t)) >= 4 else f'"{t}"' for t in terms)


def _postgresql_query(terms: list[str]) -> str:
    """A tsquery: any of the terms (letters and digits only, so safe as operands), prefixes."""
    # Quoted: each term one operand whatever the parser makes of it.
    return " | ".join(f"'{_stem(t)}':*" if len(_stem(t)) >= 4 else f"'{t}'" for t in terms)


async def fulltext_ranked(session: AsyncSession, tenant_id: str, terms: list[str]) -> list[str]:
    """The tenant's chunk ids matching any term, best first (bm25 on SQLite, ts_rank on PostgreSQL)."""
    if not terms:
        return []
    if is_postgresql(session):
        query = f"to_tsquery('{TEXT_SEARCH_CONFIG}'::regconfig, :query)"
        statement = text(
            f"SELECT id FROM knowledge_chunks WHERE tenant_id = :tenant AND search_vector @@ {query} "
            f"ORDER BY ts_rank(search_vector, {query}) DESC, id LIMIT :limit"
        )
        params: dict[str, Any] = {"query": _postgresql_query(terms)}
    else:
        statement = text(
            "SELECT c.id FROM knowledge_search s JOIN knowledge_chunks c ON c.rowid = s.rowid "
            "WHERE knowledge_search MATCH :query AND c.tenant_id = :tenant "
            "ORDER BY bm25(knowledge_search), c.id LIMIT :limit"
        )
        params = {"query": _sqlite_match(terms)}
    rows = await session.execute(statement, {**params, "tenant": tenant_id, "limit": CANDIDATES})
    return [row[0] for row in rows]


@dataclass
class TenantMatrix:
    """A tenant's chunk vectors as one matrix, for one version of its chunks."""

    version: tuple[int, str]
    ids: list[str]
    matrix: Vectors
    rows: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = {chunk_id: row for row, chunk_id in enumerate(self.ids)}

    def similarities(self, query: Vectors, chunk_ids: list[str]) -> dict[str, float]:
        """The cosine similarity of each of `chunk_ids` (those it holds) to `query`."""
        if not self.ids or self.matrix.shape[1] != query.shape[-1]:
            return {}
        return {
            chunk_id: float(self.matrix[self.rows[chunk_id]] @ query.reshape(-1))
            for chunk_id in chunk_ids
            if chunk_id in self.rows
        }


# tenant id -> its matrix; rebuilt when the tenant's revision moved (any write moves it).
_matrices: dict[str, TenantMatrix] = {}


async def bump_revision(session: AsyncSession, tenant_id: str) -> None:
    """Move the tenant's revision: every process reloads its vectors at its next search."""
    values = {"tenant_id": tenant_id, "revision": 1}
    bumped = {"revision": KnowledgeRevision.revision + 1}
    if is_postgresql(session):
        await session.execute(
            postgresql_insert(KnowledgeRevision)
            .values(values)
            .on_conflict_do_update(index_elements=["tenant_id"], set_=bumped)
        )
    else:
        await session.execute(
            sqlite_insert(KnowledgeRevision)
            .values(values)
            .on_conflict_do_update(index_elements=["tenant_id"], set_=bumped)
        )


async def _version(session: AsyncSession, tenant_id: str, model: str) -> tuple[int, str]:
    """The tenant's revision (0 before its first write) and the model."""
    revision = await session.scalar(
        select(KnowledgeRevision.revision).where(KnowledgeRevision.tenant_id == tenant_id)
    )
    return int(revision or 0), model


async def tenant_matrix(session: AsyncSession, tenant_id: str, model: str) -> TenantMatrix:
    """The tenant's vectors (made by `model`), from memory while its chunks have not changed."""
    version = await _version(session, tenant_id, model)
    cached = _matrices.get(tenant_id)
    if cached is not None and cached.version == version:
        return cached
    rows = (
        await session.execute(
            select(KnowledgeChunk.id, KnowledgeChunk.embedding).where(
                KnowledgeChunk.tenant_id == tenant_id, KnowledgeChunk.embedding_model == model
            )
        )
    ).all()
    ids = [row[0] for row in rows]
    matrix = (
        np.vstack([np.frombuffer(row[1], dtype="<f4") for row in rows])
        if rows
        else np.zeros((0, 1), dtype=np.float32)
    )
    _matrices[tenant_id] = TenantMatrix(version, ids, matrix)
    return _matrices[tenant_id]


def vector_ranked(matrix: TenantMatrix, query: Vectors) -> list[tuple[str, float]]:
    """(chunk id, cosine similarity) of the nearest chunks, best first."""
    if not matrix.ids or matrix.matrix.shape[1] != query.shape[-1]:
        return []
    one_blas_thread()
    similarities = matrix.matrix @ query.reshape(-1)
    count = min(CANDIDATES, len(matrix.ids))
    nearest = np.argpartition(-similarities, count - 1)[:count]
    ordered = nearest[np.argsort(-similarities[nearest], kind="stable")]
    return [(matrix.ids[i], float(similarities[i])) for i in ordered]


def fuse(*rankings: list[str], weights: tuple[float, ...] = (), k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: each id scores the sum of weight/(k + rank) over the rankings
    holding it (rank from 1; weight 1 unless given), best first; ties keep the first ranking's
    order."""
    scores: dict[str, float] = {}
    for index, ranking in enumerate(rankings):
        weight = weights[index] if index < len(weights) else 1.0
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])
