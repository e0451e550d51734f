"""Tickets with the team's side: who sent each message, how a ticket ended, its UTM attribution

messages.sender_user_id / sender_name: the user who sent a message (the name kept as text, so it
outlives the user); tickets.outcome: the text of a close (a lost sale's reason); tickets.utm_*:
the UTM parameters of the ad's URL or of the first message's links.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender_user_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("sender_name", sa.String(length=320), nullable=True))
        batch_op.create_foreign_key(
            "fk_messages_sender_user_id_users", "users", ["sender_user_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=500), nullable=True))
        for name in UTM_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name in reversed(UTM_COLUMNS):
            batch_op.drop_column(name)
        batch_op.drop_column("outcome")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("fk_messages_sender_user_id_users", type_="foreignkey")
        batch_op.drop_column("sender_name")
        batch_op.drop_column("sender_user_id")
