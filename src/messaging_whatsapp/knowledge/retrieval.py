"""Hybrid retrieval: full-text candidates (SQLite FTS5 / PostgreSQL tsvector, Portuguese, accents
folded, words searched by their Snowball stems) and vector candidates (the tenant's chunk matrix in
memory, ranked by dot product of unit vectors), fused by their scores; and how much of a question
the chunks found hold (coverage, for the decision to hand off)."""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import snowballstemmer  # type: ignore[import-untyped]
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import is_postgresql
from messaging_whatsapp.knowledge.embeddings import Vectors, one_blas_thread
from messaging_whatsapp.knowledge.models import KnowledgeChunk, KnowledgeRevision

# The fusion's weight of the full-text score (the vectors' is the rest). The local model was
# trained on English and ranks Portuguese worse than the full text does; it still reorders the
# full text's best and finds what shares no word with the question. Chosen on the tuning set of
# bench/knowledge.py (recall@3 of the hybrid: 0.97 from 0.6 to 0.8, 0.95 at 0.5 on PostgreSQL).
TEXT_WEIGHT = 0.6
# An embeddings endpoint (likely a multilingual model) counts as much as the full text.
REMOTE_TEXT_WEIGHT = 0.5
# Each side offers this many candidates to the fusion.
CANDIDATES = 10
MAX_TERMS = 24
# Words too common in Portuguese questions to tell chunks apart (accents already folded).
_COMMON_WORDS = (
    "a o as os um uma uns umas de da do das dos em na no nas nos ao aos para pra pro por pelo "
    "pela pelos pelas com sem que qual quais quem quando onde como e ou se eu voce voces ele "
    "ela eles elas nos me te lhe meu minha seu sua seus suas isso isto esse essa este esta "
    "aquele aquela ha tem ter sao ser e foi vai vou posso pode podem preciso quero queria "
    "gostaria saber sobre mais muito ja nao sim tambem entao the of and to is in "
    # How-much words, and how people abbreviate these words when typing on a phone.
    "quanto quanta quantos quantas vc vcs q pq tb tbm ta qto qta qtos qtas qdo "
    # Greetings and thanks, which open many messages (and a burst the assistant answers at once).
    "oi ola tudo bem bom boa dia tarde noite obrigado obrigada obg valeu blz beleza favor"
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


# Folded endings given back their accents before stemming, so that a word typed without them
# stems as the written word does ("devolucao" and "devolução" alike).
_ACCENTED_ENDINGS = (("coes", "ções"), ("cao", "ção"), ("oes", "ões"), ("ao", "ão"))
# Stems shorter than this are searched as whole words: a short prefix matches too much.
MIN_PREFIX = 3


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return snowballstemmer.stemmer("portuguese")


def search_prefix(term: str) -> str:
    """A folded term's Portuguese stem (Snowball), folded, so that singular, plural and verb forms
    share it: "entregas" and "entrega" -> "entreg", "devolucoes" -> "devolu"."""
    for folded, accented in _ACCENTED_ENDINGS:
        if term.endswith(folded) and len(term) > len(folded) + 2:
            term = term[: -len(folded)] + accented
            break
    return fold(_stemmer().stemWord(term))


def _operands(terms: list[str]) -> list[str]:
    """Each term's stem as a prefix when long enough, else the term itself as a whole word."""
    operands: dict[str, None] = {}
    for term in terms:
        prefix = search_prefix(term)
        operands.setdefault(f"{prefix}*" if len(prefix) >= MIN_PREFIX else term, None)
    return list(operands)


def _sqlite_match(terms: list[str]) -> str:
    """An FTS5 query: any of the terms, quoted (no operator survives), stems as prefixes."""
    return " OR ".join(f'"{o[:-1]}"*' if o.endswith("*") else f'"{o}"' for o in _operands(terms))


def _postgresql_query(terms: list[str]) -> str:
    """A tsquery (parsed with the simple configuration: the operands are stems already) of any
    of the terms; letters and digits only, so safe as operands."""
    return " | ".join(f"'{o[:-1]}':*" if o.endswith("*") else f"'{o}'" for o in _operands(terms))


# The FTS5 index holds every tenant's chunks. Reading each match's chunk row to check its tenant
# cost most of a search (10,000 chunks: 180 ms for a question whose words are everywhere), so the
# index's best SQLITE_WIDE matches are ranked first (bm25 alone, no row read) and the tenant's
# taken from those; only when they hold fewer than asked are all the tenant's matches ranked.
SQLITE_WIDE = 200
_SQLITE_WIDE_QUERY = text(
    "SELECT c.id, s.score FROM (SELECT rowid, -bm25(knowledge_search) AS score FROM knowledge_search "
    "WHERE knowledge_search MATCH :query ORDER BY score DESC LIMIT :wide) s "
    "JOIN knowledge_chunks c ON c.rowid = s.rowid WHERE c.tenant_id = :tenant "
    "ORDER BY s.score DESC, c.id LIMIT :limit"
)
_SQLITE_QUERY = text(
    "SELECT c.id, -bm25(knowledge_search) AS score FROM knowledge_search s "
    "JOIN knowledge_chunks c ON c.rowid = s.rowid "
    "WHERE knowledge_search MATCH :query AND c.tenant_id = :tenant "
    "ORDER BY score DESC, c.id LIMIT :limit"
)


async def fulltext_scored(
    session: AsyncSession, tenant_id: str, terms: list[str], limit: int = CANDIDATES
) -> list[tuple[str, float]]:
    """The tenant's chunk ids matching any term with their scores (higher is better: bm25
    negated on SQLite, ts_rank on PostgreSQL), best first."""
    if not terms:
        return []
    if is_postgresql(session):
        # The simple configuration: our stems searched as prefixes of the index's lexemes (which
        # the portuguese configuration stemmed from the folded words: "devoluca", "devoluco").
        query = "to_tsquery('simple'::regconfig, :query)"
        statement = text(
            f"SELECT id, ts_rank(search_vector, {query}) AS score FROM knowledge_chunks "
            f"WHERE tenant_id = :tenant AND search_vector @@ {query} ORDER BY score DESC, id LIMIT :limit"
        )
        params = {"query": _postgresql_query(terms), "tenant": tenant_id, "limit": limit}
        return [(row[0], float(row[1])) for row in await session.execute(statement, params)]
    params = {"query": _sqlite_match(terms), "tenant": tenant_id, "limit": limit, "wide": SQLITE_WIDE}
    found = [(row[0], float(row[1])) for row in await session.execute(_SQLITE_WIDE_QUERY, params)]
    if len(found) < limit:
        # The first SQLITE_WIDE of all tenants held too few of this one's: rank all its matches.
        found = [(row[0], float(row[1])) for row in await session.execute(_SQLITE_QUERY, params)]
    return found


async def fulltext_ranked(session: AsyncSession, tenant_id: str, terms: list[str]) -> list[str]:
    """The tenant's chunk ids matching any term, best first (bm25 on SQLite, ts_rank on PostgreSQL)."""
    return [chunk_id for chunk_id, _ in await fulltext_scored(session, tenant_id, terms)]


@dataclass
class TenantMatrix:
    """A tenant's chunk vectors as one matrix, for one version of its chunks."""

    version: tuple[int, str]
    ids: list[str]
    matrix: Vectors
    # The words of the tenant's chunks (the weights of `coverage`).
    vocabulary: Vocabulary = field(default_factory=lambda: Vocabulary([], [], 0))
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
            select(KnowledgeChunk.id, KnowledgeChunk.embedding, KnowledgeChunk.text).where(
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
    _matrices[tenant_id] = TenantMatrix(version, ids, matrix, Vocabulary.of([row[2] for row in rows]))
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


def fuse_scores(
    by_text: list[tuple[str, float]], matrix: TenantMatrix, query: Vectors | None, text_weight: float
) -> list[tuple[str, float]]:
    """Score-aware fusion: each candidate (the full text's and the vectors' best) scores
    text_weight * its full-text score over the best one's, plus the rest times its similarity
    above the tenant's median, over the best one's; best first."""
    scores: dict[str, float] = {}
    if by_text and by_text[0][1] > 0:
        best = by_text[0][1]
        for chunk_id, score in by_text:
            scores[chunk_id] = text_weight * max(score, 0.0) / best
    if query is not None and matrix.ids and matrix.matrix.shape[1] == query.shape[-1]:
        one_blas_thread()
        similarities = matrix.matrix @ query.reshape(-1)
        floor = float(np.median(similarities)) if len(matrix.ids) > 2 else 0.0
        span = max(float(similarities.max()) - floor, 1e-6)
        count = min(CANDIDATES, len(matrix.ids))
        nearest = set(np.argpartition(-similarities, count - 1)[:count].tolist())
        for row in nearest | {matrix.rows[c] for c in scores if c in matrix.rows}:
            chunk_id = matrix.ids[row]
            lift = max(float(similarities[row]) - floor, 0.0) / span
            scores[chunk_id] = scores.get(chunk_id, 0.0) + (1.0 - text_weight) * lift
    return sorted(scores.items(), key=lambda item: -item[1])


def _word_matcher(term: str) -> tuple[str, bool]:
    """What the full text looks for in a word for `term`: its stem as a prefix, or the term."""
    prefix = search_prefix(term)
    return (prefix, True) if len(prefix) >= MIN_PREFIX else (term, False)


def coverage(terms: list[str], chunk_texts: list[str], vocabulary: Vocabulary) -> float:
    """How much of the question `chunk_texts` hold: the share of its terms found in them, each
    term weighted by its rarity in the tenant's chunks (inverse document frequency: a word the
    base never uses weighs most, one in every chunk least); 0 without terms."""
    if not terms:
        return 0.0
    words = {word for chunk_text in chunk_texts for word in re.findall(r"[^\W_]+", fold(chunk_text))}
    total = held = 0.0
    for term in terms:
        wanted, is_prefix = _word_matcher(term)
        weight = math.log(1.0 + vocabulary.chunks / (vocabulary.frequency(wanted, is_prefix) + 1.0))
        total += weight
        if any(word.startswith(wanted) if is_prefix else word == wanted for word in words):
            held += weight
    # An empty base weighs every term 0.
    return held / total if total else 0.0


def telling_terms(terms: list[str], vocabulary: Vocabulary) -> list[str]:
    """`terms` without those more than half the tenant's chunks use (bm25 gives such a word no
    weight: searching it only adds matches to rank), keeping the rarest if all are."""
    if vocabulary.chunks < 2 or not terms:
        return terms
    frequencies = [vocabulary.frequency(*_word_matcher(term)) for term in terms]
    kept = [t for t, f in zip(terms, frequencies, strict=True) if f <= vocabulary.chunks / 2]
    return kept or [terms[frequencies.index(min(frequencies))]]


@dataclass
class Vocabulary:
    """The folded words of a tenant's chunks, sorted, with how many chunks use each."""

    words: list[str]
    counts: list[int]
    chunks: int

    @classmethod
    def of(cls, texts: list[str]) -> Vocabulary:
        """The vocabulary of `texts`."""
        counter: Counter[str] = Counter()
        for chunk_text in texts:
            counter.update(set(re.findall(r"[^\W_]+", fold(chunk_text))))
        words = sorted(counter)
        return cls(words, [counter[word] for word in words], len(texts))

    def frequency(self, wanted: str, is_prefix: bool) -> int:
        """How many chunks use `wanted` (as a prefix: at least as many as its commonest word)."""
        start = bisect.bisect_left(self.words, wanted)
        end = bisect.bisect_left(self.words, wanted + "\uffff") if is_prefix else start + 1
        return max(
            (
                c
                for w, c in zip(self.words[start:end], self.counts[start:end], strict=True)
                if is_prefix or w == wanted
            ),
            default=0,
        )
