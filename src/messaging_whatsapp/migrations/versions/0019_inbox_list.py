"""The inbox list at scale: conversations carry their last message (type, direction, preview) and
their open ticket with its assignee; indexes in activity order for the tabs; search indexes
(PostgreSQL pg_trgm GIN on contacts' names and phones and messages' text, SQLite FTS5 trigram
tables of contacts' names and phones and of messages' text); contacts.named_by_team (a name the team gave stays); tickets by assignee (an agent's part). Existing rows are
backfilled.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREVIEW_CHARS = 120
FK_ASSIGNEE = "fk_conversations_assignee_id_users"
TRIGRAM_INDEXES = (
    ("ix_contacts_name_trgm", "contacts", "name"),
    # The phone's digits, an expression: a trigram index also answers `=`, and on the bare column
    # PostgreSQL took it for the worker's lookups by phone instead of the unique index.
    ("ix_contacts_phone_trgm", "contacts", "(replace(phone, '+', ''))"),
    ("ix_messages_content_trgm", "messages", "content"),
)

# SQLite: an FTS5 index of messages.content kept by triggers (external content: the text is not
# stored twice). The trigram tokenizer matches any fragment of three characters or more.
SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE messages_search USING fts5("
    "content, content='messages', content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages WHEN new.content IS NOT NULL BEGIN "
    "INSERT INTO messages_search(rowid, content) VALUES (new.rowid, new.content); END",
    "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages WHEN old.content IS NOT NULL BEGIN "
    "INSERT INTO messages_search(messages_search, rowid, content) VALUES ('delete', old.rowid, old.content); "
    "END",
    "CREATE TRIGGER messages_search_update AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_search(messages_search, rowid, content) "
    "SELECT 'delete', old.rowid, old.content WHERE old.content IS NOT NULL; "
    "INSERT INTO messages_search(rowid, content) SELECT new.rowid, new.content WHERE new.content IS NOT NULL; "
    "END",
    "INSERT INTO messages_search(messages_search) VALUES ('rebuild')",
    # Contacts' names and phones alike; the worker rewrites a contact's row often (its counters),
    # so the update trigger fires only when the name or the phone really changed.
    "CREATE VIRTUAL TABLE contacts_search USING fts5("
    "name, phone, content='contacts', content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN "
    "INSERT INTO contacts_search(rowid, name, phone) VALUES (new.rowid, new.name, new.phone); END",
    "CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN "
    "INSERT INTO contacts_search(contacts_search, rowid, name, phone) "
    "VALUES ('delete', old.rowid, old.name, old.phone); END",
    "CREATE TRIGGER contacts_search_update AFTER UPDATE OF name, phone ON contacts "
    "WHEN old.name IS NOT new.name OR old.phone IS NOT new.phone BEGIN "
    "INSERT INTO contacts_search(contacts_search, rowid, name, phone) "
    "VALUES ('delete', old.rowid, old.name, old.phone); "
    "INSERT INTO contacts_search(rowid, name, phone) VALUES (new.rowid, new.name, new.phone); END",
    "INSERT INTO contacts_search(contacts_search) VALUES ('rebuild')",
)


def _latest_message(column: str) -> str:
    return (
        f"(SELECT {column} FROM messages WHERE messages.conversation_id = conversations.id "
        "ORDER BY messages.created_at DESC, messages.id DESC LIMIT 1)"
    )


def _open_ticket(column: str) -> str:
    return (
        f"(SELECT tickets.{column} FROM tickets WHERE tickets.conversation_id = conversations.id "
        "AND tickets.status = 'open')"
    )


def upgrade() -> None:
    # Nullable columns: a plain ALTER TABLE ADD COLUMN on both databases (no table rebuild).
    op.add_column("conversations", sa.Column("last_message_type", sa.String(length=16), nullable=True))
    op.add_column("conversations", sa.Column("last_message_direction", sa.String(length=8), nullable=True))
    op.add_column(
        "conversations", sa.Column("last_message_preview", sa.String(length=PREVIEW_CHARS), nullable=True)
    )
    op.add_column("conversations", sa.Column("open_ticket_id", sa.String(length=36), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("conversations", sa.Column("assignee_id", sa.String(length=36), nullable=True))
        op.create_foreign_key(
            FK_ASSIGNEE, "conversations", "users", ["assignee_id"], ["id"], ondelete="SET NULL"
        )
    else:
        # SQLite adds a column with its reference in place; alembic would rebuild the table, and
        # dropping `conversations` with foreign keys on would cascade into its messages.
        op.execute(
            "ALTER TABLE conversations ADD COLUMN assignee_id VARCHAR(36) "
            f"CONSTRAINT {FK_ASSIGNEE} REFERENCES users (id) ON DELETE SET NULL"
        )
    op.add_column(
        "contacts", sa.Column("named_by_team", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.execute("UPDATE conversations SET last_message_at = created_at WHERE last_message_at IS NULL")
    op.execute(
        "UPDATE conversations SET "
        f"last_message_type = {_latest_message('type')}, "
        f"last_message_direction = {_latest_message('direction')}, "
        f"last_message_preview = {_latest_message(f'substr(content, 1, {PREVIEW_CHARS})')}, "
        f"open_ticket_id = {_open_ticket('id')}, "
        f"assignee_id = {_open_ticket('assignee_id')}"
    )
    op.create_index("ix_tickets_assignee_id", "tickets", ["assignee_id"], unique=False)
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_tenant_last")
        batch_op.create_index(
            "ix_conversations_tenant_activity", ["tenant_id", "last_message_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_conversations_tenant_assignee_activity",
            ["tenant_id", "assignee_id", "last_message_at", "id"],
            unique=False,
        )
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in TRIGRAM_INDEXES:
            op.execute(f"CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)")
    else:
        for statement in SQLITE_SEARCH:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX {name}")
    else:
        for table in ("messages_search", "contacts_search"):
            for trigger in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_{trigger}")
            op.execute(f"DROP TABLE {table}")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_tenant_assignee_activity")
        batch_op.drop_index("ix_conversations_tenant_activity")
        batch_op.create_index("ix_conversations_tenant_last", ["tenant_id", "last_message_at"], unique=False)
        batch_op.drop_constraint(FK_ASSIGNEE, type_="foreignkey")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("open_ticket_id")
        batch_op.drop_column("last_message_preview")
        batch_op.drop_column("last_message_direction")
        batch_op.drop_column("last_message_type")
    op.drop_index("ix_tickets_assignee_id", table_name="tickets")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("named_by_team")
