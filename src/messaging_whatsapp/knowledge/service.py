"""The knowledge base's work: documents in (chunked and embedded), edited (only changed chunks
re-embedded), listed, deleted, and searched (hybrid retrieval)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import new_id, utcnow
from messaging_whatsapp.errors import InvalidInput, NotFound, UnsupportedMediaType
from messaging_whatsapp.knowledge.chunking import ChunkDraft, chunk_prose, chunk_qa_csv, pdf_text, qa_text
from messaging_whatsapp.knowledge.embeddings import Embedder, RemoteEmbedder
from messaging_whatsapp.knowledge.models import DocumentKind, KnowledgeChunk, KnowledgeDocument
from messaging_whatsapp.knowledge.retrieval import (
    REMOTE_TEXT_WEIGHT,
    TEXT_WEIGHT,
    bump_revision,
    coverage,
    fulltext_scored,
    fuse_scores,
    query_terms,
    telling_terms,
    tenant_matrix,
)
from messaging_whatsapp.pagination import decode_time_cursor, encode_cursor

# A document may have at most this many chunks (about 2 MB of text).
MAX_CHUNKS = 3000
MAX_QUERY_CHARS = 1000


@dataclass(frozen=True)
class Found:
    """One search result: the chunk, its document's title, the fused score and its similarity."""

    chunk: KnowledgeChunk
    title: str
    score: float
    similarity: float


def text_hash(model: str, chunk_text: str) -> str:
    """What decides whether a chunk's vector is still good: its text and the model."""
    return hashlib.sha256(f"{model}\n{chunk_text}".encode()).hexdigest()


async def create_document(
    session: AsyncSession,
    embedder: Embedder,
    tenant_id: str,
    title: str,
    kind: DocumentKind,
    drafts: list[ChunkDraft],
) -> KnowledgeDocument:
    """A new document with its chunks embedded; InvalidInput when it has no text."""
    _check_drafts(drafts)
    document = KnowledgeDocument(id=new_id(), tenant_id=tenant_id, title=title, kind=kind.value)
    session.add(document)
    await session.flush()
    await _store_chunks(session, embedder, document, drafts, [])
    return document


def _check_drafts(drafts: list[ChunkDraft]) -> None:
    if not drafts:
        raise InvalidInput("The document has no text to index.", code="empty_document")
    if len(drafts) > MAX_CHUNKS:
        raise InvalidInput(f"The document has more than {MAX_CHUNKS} chunks.", code="document_too_long")


async def _store_chunks(
    session: AsyncSession,
    embedder: Embedder,
    document: KnowledgeDocument,
    drafts: list[ChunkDraft],
    existing: list[KnowledgeChunk],
) -> int:
    """Make the document's chunks `drafts`: an existing chunk with the same text hash is kept
    (moved to its new position, vector untouched), the rest embedded anew, leftovers deleted.
    Returns how many chunks were embedded."""
    unchanged: dict[str, list[KnowledgeChunk]] = {}
    for old in existing:
        unchanged.setdefault(old.text_hash, []).append(old)
    hashes = [text_hash(embedder.name, draft.text) for draft in drafts]
    kept: list[KnowledgeChunk | None] = [unchanged[h].pop() if unchanged.get(h) else None for h in hashes]
    fresh = [draft.text for draft, found in zip(drafts, kept, strict=True) if found is None]
    vectors = iter(await embedder.embed(fresh)) if fresh else iter(())
    leftovers = [old.id for olds in unchanged.values() for old in olds]
    if leftovers:
        await session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.id.in_(leftovers)))
    for position, (draft, digest, chunk) in enumerate(zip(drafts, hashes, kept, strict=True)):
        if chunk is not None:
            chunk.position, chunk.source = position, draft.source
            continue
        session.add(
            KnowledgeChunk(
                id=new_id(),
                tenant_id=document.tenant_id,
                document_id=document.id,
                position=position,
                source=draft.source,
                text=draft.text,
                question=draft.question,
                answer=draft.answer,
                text_hash=digest,
                embedding=np.asarray(next(vectors), dtype="<f4").tobytes(),
                embedding_model=embedder.name,
            )
        )
    await bump_revision(session, document.tenant_id)
    await session.flush()
    return len(fresh)


async def get_document(session: AsyncSession, tenant_id: str, document_id: str) -> KnowledgeDocument:
    """The tenant's document; NotFound for one there is not (or another tenant's)."""
    document = await session.scalar(
        select(KnowledgeDocument).where(
            KnowledgeDocument.id == document_id, KnowledgeDocument.tenant_id == tenant_id
        )
    )
    if document is None:
        raise NotFound("No such document.")
    return document


async def document_chunks(session: AsyncSession, document: KnowledgeDocument) -> list[KnowledgeChunk]:
    """The document's chunks in order."""
    query = (
        select(KnowledgeChunk)
        .where(KnowledgeChunk.document_id == document.id, KnowledgeChunk.tenant_id == document.tenant_id)
        .order_by(KnowledgeChunk.position)
    )
    return list((await session.scalars(query)).all())


async def list_documents(
    session: AsyncSession, tenant_id: str, cursor: str | None, limit: int
) -> tuple[list[tuple[KnowledgeDocument, int]], str | None]:
    """The tenant's documents newest first, each with its number of chunks, and the next cursor."""
    query = select(KnowledgeDocument).where(KnowledgeDocument.tenant_id == tenant_id)
    if cursor:
        at, last_id = decode_time_cursor(cursor)
        query = query.where(
            or_(
                KnowledgeDocument.created_at < at,
                and_(KnowledgeDocument.created_at == at, KnowledgeDocument.id < last_id),
            )
        )
    query = query.order_by(KnowledgeDocument.created_at.desc(), KnowledgeDocument.id.desc())
    documents = list((await session.scalars(query.limit(limit + 1))).all())
    last = documents[limit - 1] if len(documents) > limit else None
    documents = documents[:limit]
    counts = dict(
        (
            await session.execute(
                select(KnowledgeChunk.document_id, func.count())
                .where(
                    KnowledgeChunk.tenant_id == tenant_id,
                    KnowledgeChunk.document_id.in_([d.id for d in documents]),
                )
                .group_by(KnowledgeChunk.document_id)
            )
        ).all()
    )
    page = [(document, int(counts.get(document.id, 0))) for document in documents]
    return page, encode_cursor(last.created_at, last.id) if last else None


async def replace_document_text(
    session: AsyncSession, embedder: Embedder, tenant_id: str, document_id: str, title: str, new_text: str
) -> tuple[KnowledgeDocument, int]:
    """A prose document's new title and text, rechunked; only chunks whose text changed are
    embedded again. Returns the document and how many chunks were embedded."""
    document = await get_document(session, tenant_id, document_id)
    if document.kind == DocumentKind.QA:
        raise InvalidInput("A question-and-answer document is edited pair by pair.", code="edit_qa_pairs")
    drafts = chunk_prose(title, new_text)
    _check_drafts(drafts)
    document.title = title
    document.updated_at = utcnow()
    embedded = await _store_chunks(
        session, embedder, document, drafts, await document_chunks(session, document)
    )
    return document, embedded


async def edit_chunk(
    session: AsyncSession,
    embedder: Embedder,
    tenant_id: str,
    chunk_id: str,
    *,
    new_text: str | None = None,
    question: str | None = None,
    answer: str | None = None,
) -> KnowledgeChunk:
    """A chunk's new text (or a Q&A pair's new question and answer), re-embedded when it changed."""
    chunk = await session.scalar(
        select(KnowledgeChunk).where(KnowledgeChunk.id == chunk_id, KnowledgeChunk.tenant_id == tenant_id)
    )
    if chunk is None:
        raise NotFound("No such chunk.")
    if chunk.question is not None:
        if not (question and answer and question.strip() and answer.strip()):
            raise InvalidInput("A question-and-answer pair needs both.", code="qa_pair_incomplete")
        chunk.question, chunk.answer = question.strip(), answer.strip()
        updated = qa_text(question, answer)
    else:
        if not (new_text and new_text.strip()):
            raise InvalidInput("The chunk needs text.", code="empty_chunk")
        updated = new_text.strip()
    digest = text_hash(embedder.name, updated)
    if digest != chunk.text_hash:
        chunk.text = updated
        chunk.text_hash = digest
        chunk.embedding = np.asarray((await embedder.embed([updated]))[0], dtype="<f4").tobytes()
        chunk.embedding_model = embedder.name
        chunk.updated_at = utcnow()
        await bump_revision(session, tenant_id)
    await session.flush()
    return chunk


async def delete_document(session: AsyncSession, tenant_id: str, document_id: str) -> None:
    """Delete the document and its chunks (from both indexes)."""
    document = await get_document(session, tenant_id, document_id)
    await session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document.id))
    await session.delete(document)
    await bump_revision(session, tenant_id)
    await session.flush()


async def search(
    session: AsyncSession, embedder: Embedder, tenant_id: str, typed: str, limit: int
) -> list[Found]:
    """The tenant's chunks that best answer `typed`: full-text and vector candidates fused by
    their scores (retrieval.fuse_scores), best first."""
    typed = typed.strip()[:MAX_QUERY_CHARS]
    if not typed:
        return []
    matrix = await tenant_matrix(session, tenant_id, embedder.name)
    # The question is embedded (a thread, or an endpoint) while the database runs the full text.
    embedding = asyncio.ensure_future(embedder.embed([typed])) if matrix.ids else None
    try:
        by_text = await fulltext_scored(
            session, tenant_id, telling_terms(query_terms(typed), matrix.vocabulary)
        )
    except BaseException:
        if embedding is not None:
            embedding.cancel()
        raise
    query = (await embedding)[0] if embedding is not None else None
    weight = REMOTE_TEXT_WEIGHT if isinstance(embedder, RemoteEmbedder) else TEXT_WEIGHT
    fused = fuse_scores(by_text, matrix, query, weight)[:limit]
    similarities = matrix.similarities(query, [i for i, _ in fused]) if query is not None else {}
    if not fused:
        return []
    # Read by id alone, the tenant checked here: with the tenant in the query SQLite's planner
    # took the tenant index and read every chunk of the tenant (18 ms at 10,000 chunks).
    rows = (
        await session.execute(
            select(KnowledgeChunk, KnowledgeDocument.title)
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
            .where(KnowledgeChunk.id.in_([i for i, _ in fused]))
        )
    ).all()
    by_id = {chunk.id: (chunk, title) for chunk, title in rows if chunk.tenant_id == tenant_id}
    return [
        Found(by_id[chunk_id][0], by_id[chunk_id][1], score, similarities.get(chunk_id, 0.0))
        for chunk_id, score in fused
        if chunk_id in by_id
    ]


# How many chunks an answer is given to work from.
EVIDENCE_CHUNKS = 4
# A question is answerable when the coverage of its words by the best chunks, plus how far the
# best similarity lies above SIMILARITY_CENTRE, reaches EVIDENCE_THRESHOLD. Chosen on the tuning
# set of bench/knowledge.py (the local model's similarities: most answerable questions' best lie
# above 0.5, most unanswerable ones' below): neither signal alone separated the two.
SIMILARITY_CENTRE = 0.5
EVIDENCE_THRESHOLD = 0.53


@dataclass(frozen=True)
class Evidence:
    """What the knowledge base holds for a question: the best chunks, and whether they answer it
    (if not, the assistant hands the customer to a person without asking the model)."""

    found: list[Found]
    answerable: bool
    # The share of the question's words (rarity-weighted) the best two chunks hold, 0 to 1.
    coverage: float = 0.0
    # The best chunk's cosine similarity to the question (its scale depends on the model: the
    # threshold was set for the local one).
    similarity: float = 0.0


async def gather_evidence(
    session: AsyncSession, embedder: Embedder, tenant_id: str, typed: str, limit: int = EVIDENCE_CHUNKS
) -> Evidence:
    """The chunks that best answer `typed`, and whether they are good enough to answer from."""
    found = await search(session, embedder, tenant_id, typed, limit)
    if not found:
        return Evidence(found, answerable=False)
    terms = query_terms(typed.strip()[:MAX_QUERY_CHARS])
    matrix = await tenant_matrix(session, tenant_id, embedder.name)
    covered = coverage(terms, [f.chunk.text for f in found[:2]], matrix.vocabulary)
    best = max((f.similarity for f in found), default=0.0)
    answerable = bool(found) and covered + (best - SIMILARITY_CENTRE) >= EVIDENCE_THRESHOLD
    return Evidence(found, answerable, coverage=covered, similarity=best)


UPLOAD_KINDS = {
    "text/plain": DocumentKind.TEXT,
    "text/markdown": DocumentKind.MARKDOWN,
    "text/x-markdown": DocumentKind.MARKDOWN,
    "application/pdf": DocumentKind.PDF,
    "text/csv": DocumentKind.QA,
}
EXTENSION_KINDS = {
    ".txt": DocumentKind.TEXT,
    ".md": DocumentKind.MARKDOWN,
    ".markdown": DocumentKind.MARKDOWN,
    ".pdf": DocumentKind.PDF,
    ".csv": DocumentKind.QA,
}


def upload_kind(filename: str, content_type: str | None) -> DocumentKind:
    """The kind of an uploaded file, by its type (or, sent as a generic type, its name's
    extension); UnsupportedMediaType for any other."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in UPLOAD_KINDS:
        return UPLOAD_KINDS[declared]
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if declared in ("", "application/octet-stream") and extension in EXTENSION_KINDS:
        return EXTENSION_KINDS[extension]
    raise UnsupportedMediaType(
        "Send text/plain, text/markdown, application/pdf or text/csv (questions and answers)."
    )


def decoded(data: bytes) -> str:
    """A text file's text: UTF-8 (with or without BOM), else Windows-1252 (spreadsheets saved in
    Brazil often are)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def storable(text: str) -> str:
    """`text` without NUL characters (PostgreSQL stores none; a file or a PDF may hold them)."""
    return text.replace("\x00", "")


def upload_drafts(title: str, kind: DocumentKind, data: bytes) -> list[ChunkDraft]:
    """An uploaded file's chunks."""
    if kind == DocumentKind.PDF:
        return chunk_prose(title, storable(pdf_text(data)))
    if kind == DocumentKind.QA:
        return chunk_qa_csv(title, storable(decoded(data)))
    return chunk_prose(title, storable(decoded(data)))
