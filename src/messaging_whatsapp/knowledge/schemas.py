"""The knowledge base's API shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from messaging_whatsapp.knowledge.models import KnowledgeChunk, KnowledgeDocument
from messaging_whatsapp.knowledge.service import Found

# About 2 MB of text, the same as a file's limit.
MAX_TEXT_CHARS = 2_000_000


class DocumentIn(BaseModel):
    """A document given as text (plain or Markdown)."""

    title: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class ChunkEdit(BaseModel):
    """A chunk's new text, or a question-and-answer pair's new question and answer."""

    text: str | None = Field(default=None, max_length=20_000)
    question: str | None = Field(default=None, max_length=5_000)
    answer: str | None = Field(default=None, max_length=20_000)


class ChunkItem(BaseModel):
    """A chunk of a document."""

    id: str
    position: int
    source: str
    text: str
    question: str | None
    answer: str | None
    updated_at: datetime

    @classmethod
    def of(cls, chunk: KnowledgeChunk) -> ChunkItem:
        """The API's view of a chunk."""
        return cls(
            id=chunk.id,
            position=chunk.position,
            source=chunk.source,
            text=chunk.text,
            question=chunk.question,
            answer=chunk.answer,
            updated_at=chunk.updated_at,
        )


class DocumentItem(BaseModel):
    """A document with its number of chunks."""

    id: str
    title: str
    kind: str
    chunk_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, document: KnowledgeDocument, chunk_count: int) -> DocumentItem:
        """The API's view of a document."""
        return cls(
            id=document.id,
            title=document.title,
            kind=document.kind,
            chunk_count=chunk_count,
            created_at=document.created_at,
            updated_at=document.updated_at,
        )


class DocumentDetail(DocumentItem):
    """A document with its chunks in order."""

    chunks: list[ChunkItem]


class DocumentUpdated(DocumentDetail):
    """A document after new text: how many of its chunks were embedded again."""

    reembedded: int


class SearchItem(BaseModel):
    """A chunk found: its text, fused score (full text and vectors), document and cosine similarity."""

    text: str
    score: float
    document_id: str
    title: str
    chunk_id: str
    source: str
    similarity: float

    @classmethod
    def of(cls, found: Found) -> SearchItem:
        """The API's view of a search result."""
        return cls(
            text=found.chunk.text,
            score=round(found.score, 6),
            document_id=found.chunk.document_id,
            title=found.title,
            chunk_id=found.chunk.id,
            source=found.chunk.source,
            similarity=round(found.similarity, 6),
        )


class SearchAnswer(BaseModel):
    """The chunks that best answer a question, best first."""

    items: list[SearchItem]
