"""Knowledge base: a tenant's documents and their chunks (text, source, text hash, float32 vector),
the tenant's revision (moved by every write, so processes know when to reload their vectors),
with a Portuguese full-text index on both databases: SQLite FTS5 (unicode61, diacritics removed)
kept by triggers, PostgreSQL a GIN index over to_tsvector('knowledge_pt', text), where knowledge_pt
is the portuguese configuration with unaccent before the stemmer.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE knowledge_search USING fts5("
    "text, content='knowledge_chunks', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_search_insert AFTER INSERT ON knowledge_chunks BEGIN "
    "INSERT INTO knowledge_search(rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER knowledge_search_delete AFTER DELETE ON knowledge_chunks BEGIN "
    "INSERT INTO knowledge_search(knowledge_search, rowid, text) VALUES ('delete', old.rowid, old.text); END",
    "CREATE TRIGGER knowledge_search_update AFTER UPDATE OF text ON knowledge_chunks BEGIN "
    "INSERT INTO knowledge_search(knowledge_search, rowid, text) VALUES ('delete', old.rowid, old.text); "
    "INSERT INTO knowledge_search(rowid, text) VALUES (new.rowid, new.text); END",
)

# unaccent is a trusted extension (PostgreSQL 13+), used as a dictionary inside a configuration
# (so to_tsvector('knowledge_pt', text) stays immutable). The vector is stored (search_vector, no
# model column: kept by a trigger as SQLite's FTS table is) because ranking recomputed it for every
# matching row: about a second a search over 10,000 chunks (docs/benchmarks.md).
POSTGRESQL_SEARCH = (
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH CONFIGURATION knowledge_pt (COPY = pg_catalog.portuguese)",
    "ALTER TEXT SEARCH CONFIGURATION knowledge_pt ALTER MAPPING FOR hword, hword_part, word "
    "WITH unaccent, portuguese_stem",
    "ALTER TABLE knowledge_chunks ADD COLUMN search_vector tsvector",
    "CREATE FUNCTION knowledge_chunks_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN NEW.search_vector := to_tsvector('knowledge_pt'::regconfig, NEW.text); RETURN NEW; END $$",
    "CREATE TRIGGER knowledge_chunks_search_vector BEFORE INSERT OR UPDATE OF text ON knowledge_chunks "
    "FOR EACH ROW EXECUTE FUNCTION knowledge_chunks_search_vector()",
    "CREATE INDEX ix_knowledge_chunks_fts ON knowledge_chunks USING gin (search_vector)",
)


def _time(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "knowledge_documents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_knowledge_documents_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_documents")),
    )
    op.create_index(
        "ix_knowledge_documents_tenant_created", "knowledge_documents", ["tenant_id", "created_at"]
    )
    op.create_table(
        "knowledge_chunks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("embedding_model", sa.String(length=200), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_knowledge_chunks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["knowledge_documents.id"],
            name=op.f("fk_knowledge_chunks_document_id_knowledge_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_chunks")),
    )
    op.create_index("ix_knowledge_chunks_document_position", "knowledge_chunks", ["document_id", "position"])
    op.create_index("ix_knowledge_chunks_tenant_id", "knowledge_chunks", ["tenant_id"])
    op.create_table(
        "knowledge_revisions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_knowledge_revisions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_knowledge_revisions")),
    )
    statements = POSTGRESQL_SEARCH if op.get_bind().dialect.name == "postgresql" else SQLITE_SEARCH
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_knowledge_chunks_fts")
        op.execute("DROP TRIGGER knowledge_chunks_search_vector ON knowledge_chunks")
        op.execute("DROP FUNCTION knowledge_chunks_search_vector()")
        op.execute("ALTER TABLE knowledge_chunks DROP COLUMN search_vector")
        op.execute("DROP TEXT SEARCH CONFIGURATION knowledge_pt")
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER knowledge_search_{trigger}")
        op.execute("DROP TABLE knowledge_search")
    op.drop_table("knowledge_revisions")
    op.drop_table("knowledge_chunks")
    op.drop_table("knowledge_documents")
