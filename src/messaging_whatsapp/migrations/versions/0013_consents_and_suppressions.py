"""consents (the LGPD ledger, append-only), suppressions, tenants.suppression_key; campaign logs
no longer keep a removed contact's phone

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The ledger is evidence: the database refuses to delete an entry or change one, but for the
# erasure of the person, which may only blank the phone and the evidence.
ERASURE_ONLY = """
    NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.status = OLD.status
    AND NEW.source = OLD.source AND NEW.created_at = OLD.created_at
    AND NEW.phone IS NULL AND NEW.evidence IS NULL AND NEW.provider_message_id IS NULL
"""
APPEND_ONLY_CONSENTS = {
    "postgresql": [
        f"""
        CREATE FUNCTION consents_append_only() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND {ERASURE_ONLY} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'the consent ledger is append-only';
        END;
        $$ LANGUAGE plpgsql
        """,
        """
        CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE ON consents
        FOR EACH ROW EXECUTE FUNCTION consents_append_only()
        """,
        """
        CREATE TRIGGER consents_no_truncate BEFORE TRUNCATE ON consents
        FOR EACH STATEMENT EXECUTE FUNCTION consents_append_only()
        """,
    ],
    "sqlite": [
        f"""
        CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
        WHEN NOT ({ERASURE_ONLY})
        BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END
        """,
        """
        CREATE TRIGGER consents_no_delete BEFORE DELETE ON consents
        BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END
        """,
    ],
}
DROP_APPEND_ONLY_CONSENTS = {
    "postgresql": ["DROP FUNCTION consents_append_only() CASCADE"],
    "sqlite": ["DROP TRIGGER consents_no_update", "DROP TRIGGER consents_no_delete"],
}
# Campaign logs are immutable, so the phone a `contact_removed` log used to carry would outlive
# the person's erasure: those logs are rewritten once, with the triggers briefly off.
SCRUB_REMOVED_CONTACT_LOGS = """
    UPDATE campaign_logs SET message = 'Contact removed', details = NULL
    WHERE log_type = 'contact_removed'
"""
LOG_TRIGGERS_OFF = {
    "postgresql": ["ALTER TABLE campaign_logs DISABLE TRIGGER campaign_logs_immutable"],
    "sqlite": ["DROP TRIGGER campaign_logs_no_update"],
}
LOG_TRIGGERS_ON = {
    "postgresql": ["ALTER TABLE campaign_logs ENABLE TRIGGER campaign_logs_immutable"],
    "sqlite": [
        """
        CREATE TRIGGER campaign_logs_no_update BEFORE UPDATE ON campaign_logs
        BEGIN SELECT RAISE(ABORT, 'campaign logs are immutable'); END
        """
    ],
}


def _run(statements: dict[str, list[str]]) -> None:
    for statement in statements[op.get_bind().dialect.name]:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("contact_id", sa.String(length=36), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index("ix_consents_tenant_id_contact_id", "consents", ["tenant_id", "contact_id"], unique=False)
    op.create_table(
        "suppressions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_suppressions_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("tenant_id", "phone_hash", name=op.f("uq_suppressions_tenant_id_phone_hash")),
    )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suppression_key", sa.Text(), nullable=True))
    _run(APPEND_ONLY_CONSENTS)
    _run(LOG_TRIGGERS_OFF)
    op.execute(SCRUB_REMOVED_CONTACT_LOGS)
    _run(LOG_TRIGGERS_ON)


def downgrade() -> None:
    _run(DROP_APPEND_ONLY_CONSENTS)
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("suppression_key")
    op.drop_table("suppressions")
    op.drop_index("ix_consents_tenant_id_contact_id", table_name="consents")
    op.drop_table("consents")
