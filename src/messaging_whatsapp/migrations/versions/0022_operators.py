"""Operators: users.is_platform_admin (the operator's view, across tenants) and worker_heartbeats
(one row per engine process, rewritten every few seconds while it runs).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: a plain ALTER TABLE ADD COLUMN on both databases, existing users false.
    op.add_column(
        "users", sa.Column("is_platform_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("parts", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("beat_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_heartbeats")),
    )
    op.create_index("ix_worker_heartbeats_beat_at", "worker_heartbeats", ["beat_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_worker_heartbeats_beat_at", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("is_platform_admin")
