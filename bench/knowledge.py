"""`python -m bench.knowledge` (part of `make bench`): the knowledge base's retrieval quality and
speed on both databases, written to docs/benchmarks.md.

Quality: a store's FAQ in Portuguese (bench/data/loja_faq.md, one chunk per section) and an
evaluation set (bench/data/knowledge_eval.json): questions with the section(s) that answer them,
and questions the FAQ cannot answer. recall@3 for full text alone, vectors alone and the hybrid
search; the best cosine similarity of each question, against a handoff threshold. Speed: the same
tenant padded to 10,000 chunks (filler text made of the FAQ's own words, random unit vectors: the
ranking cost does not depend on what the vectors mean), search timed end to end.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from bench.common import cpu_probe, machine, scratch_database, today
from messaging_whatsapp import migrate
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.knowledge import service
from messaging_whatsapp.knowledge.chunking import chunk_prose
from messaging_whatsapp.knowledge.embeddings import local_embedder
from messaging_whatsapp.knowledge.models import DocumentKind, KnowledgeChunk, KnowledgeDocument
from messaging_whatsapp.knowledge.retrieval import (
    bump_revision,
    fulltext_ranked,
    query_terms,
    tenant_matrix,
    vector_ranked,
)
from messaging_whatsapp.tenancy import service as tenancy_service

DATA = Path(__file__).resolve().parent / "data"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## Knowledge base retrieval (Portuguese FAQ)"
TITLE = "Perguntas frequentes da Casa Aurora"
SCALE_CHUNKS = 10_000
TIMED_SEARCHES = 300
# The best cosine similarity under which a question goes to a person (the answering step's
# handoff), chosen from the answerable questions' lowest best similarities.
HANDOFF_THRESHOLD = 0.35


@dataclass
class Quality:
    """One database's figures."""

    database: str
    recall: dict[str, float] = field(default_factory=dict)
    answerable_best: list[float] = field(default_factory=list)
    unanswerable_best: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    search_ms: list[float] = field(default_factory=list)
    retrieve_ms: list[float] = field(default_factory=list)


def _heading(source: str) -> str:
    return source.split(" > ", 1)[-1]


async def _measure(url: str, database: str) -> Quality:
    context = await EngineContext.open(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    embedder = local_embedder()
    evaluation = json.loads((DATA / "knowledge_eval.json").read_text())
    quality = Quality(database)
    try:
        async with context.sessions() as session, session.begin():
            tenant = await tenancy_service.create_tenant(session, "Casa Aurora")
            drafts = chunk_prose(TITLE, (DATA / "loja_faq.md").read_text())
            await service.create_document(session, embedder, tenant.id, TITLE, DocumentKind.MARKDOWN, drafts)
        hits = {"full text": 0, "vectors": 0, "hybrid": 0}
        async with context.sessions() as session:
            matrix = await tenant_matrix(session, tenant.id, embedder.name)
            rows = await session.execute(
                KnowledgeChunk.__table__.select().with_only_columns(KnowledgeChunk.id, KnowledgeChunk.source)
            )
            headings = {row[0]: _heading(row[1]) for row in rows}
            for question, expected in evaluation["answerable"]:
                query = (await embedder.embed([question]))[0]
                by_text = (await fulltext_ranked(session, tenant.id, query_terms(question)))[:3]
                by_meaning = [i for i, _ in vector_ranked(matrix, query)][:3]
                found = await service.search(session, embedder, tenant.id, question, 3)
                for name, ids in (
                    ("full text", by_text),
                    ("vectors", by_meaning),
                    ("hybrid", [f.chunk.id for f in found]),
                ):
                    if {headings[i] for i in ids} & set(expected):
                        hits[name] += 1
                    elif name == "hybrid":
                        quality.misses.append(question)
                quality.answerable_best.append(max((f.similarity for f in found), default=0.0))
            for question in evaluation["unanswerable"]:
                found = await service.search(session, embedder, tenant.id, question, 3)
                quality.unanswerable_best.append(max((f.similarity for f in found), default=0.0))
        quality.recall = {name: count / len(evaluation["answerable"]) for name, count in hits.items()}
        await _pad(context, tenant.id, embedder.name, matrix.matrix.shape[1], len(headings))
        await _time(context, tenant.id, embedder, [q for q, _ in evaluation["answerable"]], quality)
    finally:
        await context.close()
    return quality


async def _pad(context: EngineContext, tenant_id: str, model: str, width: int, have: int) -> None:
    """Filler chunks up to SCALE_CHUNKS: sentences of the FAQ's words, random unit vectors."""
    words = re.findall(r"\w+", (DATA / "loja_faq.md").read_text().lower())
    generator = random.Random(17)
    vectors = np.random.default_rng(17).standard_normal((SCALE_CHUNKS - have, width)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    document_id = new_id()
    now = utcnow()
    async with context.sessions() as session, session.begin():
        session.add(KnowledgeDocument(id=document_id, tenant_id=tenant_id, title="Filler", kind="text"))
        await session.flush()
        rows = [
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "document_id": document_id,
                "position": n,
                "source": "Filler",
                "text": " ".join(generator.choices(words, k=90)),
                "text_hash": f"{n:064d}",
                "embedding": vectors[n].astype("<f4").tobytes(),
                "embedding_model": model,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(SCALE_CHUNKS - have)
        ]
        for start in range(0, len(rows), 1000):
            await session.execute(insert(KnowledgeChunk), rows[start : start + 1000])
        await bump_revision(session, tenant_id)


async def _time(
    context: EngineContext, tenant_id: str, embedder: object, questions: list[str], quality: Quality
) -> None:
    """Search end to end (query embedded) and retrieval alone (query vector given)."""
    model = local_embedder()
    vectors = await model.embed(questions)
    async with context.sessions() as session:
        await service.search(session, model, tenant_id, questions[0], 5)  # the matrix loaded once
        for n in range(TIMED_SEARCHES):
            question = questions[n % len(questions)]
            started = time.perf_counter()
            await service.search(session, model, tenant_id, question, 5)
            quality.search_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await fulltext_ranked(session, tenant_id, query_terms(question))
            matrix = await tenant_matrix(session, tenant_id, model.name)
            vector_ranked(matrix, vectors[n % len(questions)])
            quality.retrieve_ms.append((time.perf_counter() - started) * 1000)


def _embed_ms() -> tuple[float, float]:
    """Milliseconds to embed one FAQ chunk alone, and per chunk in one batch of all of them."""
    model = local_embedder()
    texts = [draft.text for draft in chunk_prose(TITLE, (DATA / "loja_faq.md").read_text())]
    model.encode_all(texts[:2])  # warm-up
    started = time.perf_counter()
    for text in texts:
        model.encode_all([text])
    alone = (time.perf_counter() - started) * 1000 / len(texts)
    started = time.perf_counter()
    model.encode_all(texts)
    return alone, (time.perf_counter() - started) * 1000 / len(texts)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def _run() -> tuple[list[Quality], tuple[float, float]]:
    results = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.sqlite"
        migrate.upgrade(url)
        results.append(asyncio.run(_measure(url, "SQLite")))
    with scratch_database() as url:
        results.append(asyncio.run(_measure(url, "PostgreSQL")))
    return results, _embed_ms()


def record(results: list[Quality], embed: tuple[float, float], probe: float) -> None:
    """Write (or replace) this benchmark's section of docs/benchmarks.md."""
    evaluation = json.loads((DATA / "knowledge_eval.json").read_text())
    answerable, unanswerable = len(evaluation["answerable"]), len(evaluation["unanswerable"])
    rows = "\n".join(
        f"| {r.database} | {r.recall['full text']:.2f} | {r.recall['vectors']:.2f} | "
        f"**{r.recall['hybrid']:.2f}** | "
        f"{sum(b < HANDOFF_THRESHOLD for b in r.unanswerable_best)}/{unanswerable} | "
        f"{sum(b < HANDOFF_THRESHOLD for b in r.answerable_best)}/{answerable} | "
        f"{_pct(r.search_ms, 50):.1f} / {_pct(r.search_ms, 95):.1f} | "
        f"{_pct(r.retrieve_ms, 50):.1f} / {_pct(r.retrieve_ms, 95):.1f} |"
        for r in results
    )
    ordered = sorted(results[0].unanswerable_best)
    strict = ordered[math.ceil(0.9 * len(ordered)) - 1] + 0.005
    misses = "; ".join(f"{r.database}: {', '.join(r.misses) or 'none'}" for r in results)
    first = results[0]
    section = f"""{SECTION}

Run with `python -m bench.knowledge` (part of `make bench`). Machine: {machine()}; date {today()};
speed probe {probe:,.0f} ms (see the top of this page). The local model (all-MiniLM-L6-v2 run with
numpy, knowledge/embeddings.py).

Quality. `bench/data/loja_faq.md`, a home-goods store's FAQ in Portuguese (its sections: hours, WhatsApp service, address, delivery times and prices,
pick-up, tracking, payment, instalments, Pix discount, boleto, exchanges, returns, refunds,
defects, warranty, product prices, gift lists and cards, loyalty, coupons, invoices, companies,
account, cancelling, assembly, gift wrap, stock, privacy), cut by the engine's chunker (one chunk
per section, {len(chunk_prose(TITLE, (DATA / "loja_faq.md").read_text()))} chunks). `bench/data/knowledge_eval.json`:
{answerable} questions written as customers type them (some without accents or question marks),
each with the section(s) that answer it, and {unanswerable} the FAQ cannot answer. A question counts
as found when one of its sections is among the first 3 results (recall@3). Handoff: the best cosine
similarity among the results under {HANDOFF_THRESHOLD} (the threshold) sends the question to a person.

| database | recall@3 full text | vectors | hybrid | unanswerable handed off | answerable handed off | search p50 / p95 ms (10,000 chunks) | retrieval alone p50 / p95 ms |
|---|---|---|---|---|---|---|---|
{rows}

Missed by the hybrid search: {misses}.

Best similarity, answerable questions: min {min(first.answerable_best):.2f}, median
{_pct(first.answerable_best, 50):.2f}; unanswerable: median {_pct(first.unanswerable_best, 50):.2f},
max {max(first.unanswerable_best):.2f} (SQLite run; the vectors are the same on PostgreSQL). With
this model the similarity does not tell the two apart: handing off 0.9 of the unanswerable
questions takes a threshold of {strict:.2f}, under which {sum(b < strict for b in first.answerable_best)} of the {answerable} answerable ones
would go to a person too; at {HANDOFF_THRESHOLD} (under every answerable question's best) only the
count in the table is handed off. The answering step needs a better signal: a multilingual model
(an embeddings endpoint by configuration) or the full text's evidence.

Speed. The tenant padded to {SCALE_CHUNKS:,} chunks (filler sentences of the FAQ's words, random
unit vectors), {TIMED_SEARCHES} searches of the evaluation's questions after one that loads the
tenant's matrix. "Search" is the service call behind `GET /api/v1/knowledge/search` (query
embedded, full-text and vector candidates, fusion, chunks read); "retrieval alone" is the
full-text query, the version check of the cached matrix and the vector ranking for a given query
vector. Embedding a chunk: {embed[0]:.1f} ms alone, {embed[1]:.1f} ms each in one batch of the FAQ's
chunks (numpy, BLAS on one thread). Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores when
the run ended: compare the speed probe with a quiet machine's (about 240 ms) before reading the
times. The filler is adversarial for the full text (every filler chunk is made of the FAQ's words,
so an OR query of a question's words matches thousands of chunks to rank).
"""
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if SECTION in current:
        start = current.index(SECTION)
        following = re.search(r"\n## ", current[start + len(SECTION) :])
        end = start + len(SECTION) + following.start() + 1 if following else len(current)
        current = current[:start] + current[end:]
    DOCS.write_text(current.rstrip("\n") + "\n\n" + section)


def main() -> None:
    """Measure on both databases and record the section."""
    probe = cpu_probe()
    results, embed = _run()
    for r in results:
        recall = ", ".join(f"{name} {value:.2f}" for name, value in r.recall.items())
        sys.stdout.write(
            f"knowledge ({r.database}): recall@3 {recall}; search p95 {_pct(r.search_ms, 95):.1f} ms; "
            f"answerable best sims {sorted(round(b, 2) for b in r.answerable_best)[:8]}; "
            f"unanswerable {sorted(round(b, 2) for b in r.unanswerable_best)}; misses {r.misses}\n"
        )
    record(results, embed, probe)
    sys.stdout.write(f"written to {DOCS}\n")


if __name__ == "__main__":
    main()
