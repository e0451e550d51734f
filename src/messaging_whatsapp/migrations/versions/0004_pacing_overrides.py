"""pacing overrides: gateway caps, identical texts, typing, per-number warm-up

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OVERRIDES = (
    ("max_per_minute", sa.Integer()),
    ("max_per_hour", sa.Integer()),
    ("max_identical_per_hour", sa.Integer()),
    ("typing", sa.Boolean()),
)


def upgrade() -> None:
    for table in ("campaigns", "campaign_instances"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, type_ in OVERRIDES:
                batch_op.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("campaign_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warmup", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_instances", schema=None) as batch_op:
        batch_op.drop_column("warmup")
    for table in ("campaign_instances", "campaigns"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _ in reversed(OVERRIDES):
                batch_op.drop_column(name)
