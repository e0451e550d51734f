"""the senders' index (send_state, next_attempt_at) holds outbound messages only

Inbound messages, most of an inbox, have no send state; the senders' sweeps never look for them,
and each one stored cost a write to this index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_messages_send_state_next_attempt"
COLUMNS = ["send_state", "next_attempt_at"]
PREDICATE = "send_state IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(
            INDEX,
            COLUMNS,
            unique=False,
            sqlite_where=sa.text(PREDICATE),
            postgresql_where=sa.text(PREDICATE),
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(INDEX, COLUMNS, unique=False)
