"""contacts known without a phone: contacts.phone nullable, contacts.bsuid (Meta's business-scoped
user id, was user_id) and contacts.lid (a gateway's @lid address), each unique per tenant; the
consent ledger lets a merge of two contacts re-point their entries to the survivor

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BSUID_INDEX = "uq_contacts_tenant_id_bsuid"
LID_INDEX = "uq_contacts_tenant_id_lid"

# user_id held both kinds: LIDs are JIDs ("97318254610077@lid"), BSUIDs are not ("BR.1502...").
# Where two contacts of a tenant share one (possible before this revision), the oldest keeps it.
SPLIT_IDENTITIES = [
    "UPDATE contacts SET lid = bsuid, bsuid = NULL WHERE bsuid LIKE '%@%'",
    """
    UPDATE contacts SET bsuid = NULL WHERE bsuid IS NOT NULL AND id <> (
        SELECT MIN(other.id) FROM contacts AS other
        WHERE other.tenant_id = contacts.tenant_id AND other.bsuid = contacts.bsuid
    )
    """,
    """
    UPDATE contacts SET lid = NULL WHERE lid IS NOT NULL AND id <> (
        SELECT MIN(other.id) FROM contacts AS other
        WHERE other.tenant_id = contacts.tenant_id AND other.lid = contacts.lid
    )
    """,
]

# SQLite cannot drop a NOT NULL in place, and rebuilding contacts would cascade-delete every
# conversation and message (foreign keys are on, and cannot be turned off inside the migration's
# transaction). Dropping NOT NULL and widening a VARCHAR change no stored byte, so the schema text
# is edited instead: SQLite documents this (lang_altertable.html, section 7) for exactly that.
SQLITE_TEXT_CHANGES = [
    ("phone VARCHAR(20) NOT NULL", "phone VARCHAR(20)"),
    ("bsuid VARCHAR(64)", "bsuid VARCHAR(160)"),
]

# The ledger (migration 0013) accepts one more change: a merge re-pointing an entry to the
# surviving contact, everything else as it was.
SAME_BUT_CONTACT = {
    "postgresql": """
        NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.status = OLD.status
        AND NEW.source = OLD.source AND NEW.created_at = OLD.created_at
        AND NEW.phone IS NOT DISTINCT FROM OLD.phone AND NEW.evidence IS NOT DISTINCT FROM OLD.evidence
        AND NEW.actor IS NOT DISTINCT FROM OLD.actor
        AND NEW.provider_message_id IS NOT DISTINCT FROM OLD.provider_message_id
    """,
    "sqlite": """
        NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.status = OLD.status
        AND NEW.source = OLD.source AND NEW.created_at = OLD.created_at
        AND NEW.phone IS OLD.phone AND NEW.evidence IS OLD.evidence AND NEW.actor IS OLD.actor
        AND NEW.provider_message_id IS OLD.provider_message_id
    """,
}
ERASURE_ONLY = """
    NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.status = OLD.status
    AND NEW.source = OLD.source AND NEW.created_at = OLD.created_at
    AND NEW.phone IS NULL AND NEW.evidence IS NULL AND NEW.provider_message_id IS NULL
"""


def _ledger(allowed: str) -> dict[str, list[str]]:
    return {
        "postgresql": [
            f"""
            CREATE OR REPLACE FUNCTION consents_append_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND ({allowed}) THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'the consent ledger is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        ],
        "sqlite": [
            "DROP TRIGGER consents_no_update",
            f"""
            CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
            WHEN NOT ({allowed})
            BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END
            """,
        ],
    }


def _run(statements: dict[str, list[str]]) -> None:
    for statement in statements[op.get_bind().dialect.name]:
        op.execute(statement)


def _edit_sqlite_schema(changes: list[tuple[str, str]]) -> None:
    bind = op.get_bind()
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    for old, new in changes:
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'contacts'",
            (old, new),
        )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version or 0) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("ALTER TABLE contacts RENAME COLUMN user_id TO bsuid")
    if sqlite:
        _edit_sqlite_schema(SQLITE_TEXT_CHANGES)
    else:
        op.alter_column("contacts", "phone", existing_type=sa.String(length=20), nullable=True)
        op.alter_column("contacts", "bsuid", existing_type=sa.String(length=64), type_=sa.String(length=160))
    with op.batch_alter_table("contacts", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("lid", sa.String(length=160), nullable=True))
    for statement in SPLIT_IDENTITIES:
        op.execute(statement)
    op.create_index(BSUID_INDEX, "contacts", ["tenant_id", "bsuid"], unique=True)
    op.create_index(LID_INDEX, "contacts", ["tenant_id", "lid"], unique=True)
    _run(_ledger(f"({ERASURE_ONLY}) OR ({SAME_BUT_CONTACT[op.get_bind().dialect.name]})"))


def downgrade() -> None:
    _run(_ledger(ERASURE_ONLY))
    op.drop_index(LID_INDEX, table_name="contacts")
    op.drop_index(BSUID_INDEX, table_name="contacts")
    # Contacts known only by an identity have no phone to keep: they go (with their messages).
    op.execute("DELETE FROM contacts WHERE phone IS NULL")
    op.execute("UPDATE contacts SET bsuid = lid WHERE bsuid IS NULL AND lid IS NOT NULL")
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("ALTER TABLE contacts DROP COLUMN lid")
        _edit_sqlite_schema([(new, old) for old, new in SQLITE_TEXT_CHANGES])
    else:
        op.drop_column("contacts", "lid")
        op.alter_column("contacts", "phone", existing_type=sa.String(length=20), nullable=False)
        op.alter_column("contacts", "bsuid", existing_type=sa.String(length=160), type_=sa.String(length=64))
    op.execute("ALTER TABLE contacts RENAME COLUMN bsuid TO user_id")
