"""Automation: each tenant's intent list (automation_intents), its auto-reply rules
(automation_rules) and their firings (automation_firings, unique per rule, ticket and occasion, so
a rule fires once however often its cause is delivered).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=nullable)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "automation_intents",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("intents", sa.JSON(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _tenant_fk("automation_intents"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_automation_intents")),
    )
    op.create_table(
        "automation_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("once_per_ticket", sa.Boolean(), nullable=False),
        sa.Column("instance_ids", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("trigger_config", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("action_config", sa.JSON(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _tenant_fk("automation_rules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_rules")),
    )
    op.create_index("ix_automation_rules_tenant_position", "automation_rules", ["tenant_id", "position"])
    op.create_index("ix_automation_rules_trigger", "automation_rules", ["trigger"])
    op.create_table(
        "automation_firings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("rule_id", sa.String(length=36), nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("cause_message_id", sa.String(length=36), nullable=True),
        _time("fired_at"),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        _tenant_fk("automation_firings"),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["automation_rules.id"],
            name=op.f("fk_automation_firings_rule_id_automation_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_automation_firings_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_firings")),
        sa.UniqueConstraint(
            "rule_id", "ticket_id", "key", name=op.f("uq_automation_firings_rule_id_ticket_id_key")
        ),
    )
    op.create_index("ix_automation_firings_ticket", "automation_firings", ["ticket_id"])
    op.create_index(op.f("ix_automation_firings_tenant_id"), "automation_firings", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("automation_firings")
    op.drop_table("automation_rules")
    op.drop_table("automation_intents")
