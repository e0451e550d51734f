"""drop the tenant_id-only indexes of messages, contacts and opt-outs

Each of these tables has a unique index that starts with tenant_id (messages: tenant_id,
idempotency_key; contacts and opt-outs: tenant_id, phone), which serves every lookup by tenant,
the tenant foreign key's cascade included. The extra indexes only cost a write on every message
and contact stored.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("messages", "ix_messages_tenant_id"),
    ("contacts", "ix_contacts_tenant_id"),
    ("whatsapp_optouts", "ix_whatsapp_optouts_tenant_id"),
)


def upgrade() -> None:
    for table, index in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)


def downgrade() -> None:
    for table, index in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(index, ["tenant_id"], unique=False)
