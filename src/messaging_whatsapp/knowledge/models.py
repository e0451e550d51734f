"""The knowledge base's tables: a tenant's documents and their chunks (text, source, vector).

The full-text indexes are no models: on SQLite the FTS5 table KNOWLEDGE_SEARCH_TABLE (external
content over knowledge_chunks, kept by triggers); on PostgreSQL the column SEARCH_VECTOR_COLUMN,
`to_tsvector('knowledge_pt', text)` kept by a trigger (a Portuguese configuration that folds
accents with unaccent), under a GIN index.
"""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from messaging_whatsapp.db import Base, IdMixin, TimestampMixin

KNOWLEDGE_SEARCH_TABLE = "knowledge_search"
# The PostgreSQL text search configuration: portuguese, with unaccent before the stemmer.
TEXT_SEARCH_CONFIG = "knowledge_pt"
POSTGRESQL_ONLY_INDEXES = {"ix_knowledge_chunks_fts"}
SEARCH_VECTOR_COLUMN = "search_vector"


class DocumentKind(enum.StrEnum):
    """Where a document's text came from."""

    TEXT = "text"
    MARKDOWN = "markdown"
    PDF = "pdf"
    QA = "qa"


class KnowledgeDocument(IdMixin, TimestampMixin, Base):
    """A document a tenant gave the knowledge base (its text lives in its chunks)."""

    __tablename__ = "knowledge_documents"
    __table_args__ = (Index("ix_knowledge_documents_tenant_created", "tenant_id", "created_at"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))


class KnowledgeChunk(IdMixin, TimestampMixin, Base):
    """One retrievable piece of a document: its text, where it came from, and its vector."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        Index("ix_knowledge_chunks_document_position", "document_id", "position"),
        Index("ix_knowledge_chunks_tenant_id", "tenant_id"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    document_id: Mapped[str] = mapped_column(ForeignKey("knowledge_documents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    # The document's title and the heading above the chunk ("Title > Heading").
    source: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    # A question-and-answer pair's parts (CSV documents); None for prose.
    question: Mapped[str | None] = mapped_column(Text, default=None)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    # sha256 of what was embedded: an unchanged chunk keeps its vector on reindex.
    text_hash: Mapped[str] = mapped_column(String(64))
    # float32 little-endian, unit length; the model that made it.
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    embedding_model: Mapped[str] = mapped_column(String(200))


class KnowledgeRevision(Base):
    """A tenant's knowledge base's revision, moved by every write to its chunks: the in-memory
    vector matrix of each process is reloaded when it differs (one primary-key read a search)."""

    __tablename__ = "knowledge_revisions"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
