"""campaigns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:57:25.164599
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A campaign log is an audit record: the database itself refuses to change or remove one.
IMMUTABLE_LOGS = {
    "postgresql": [
        """
        CREATE FUNCTION campaign_logs_immutable() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'campaign logs are immutable';
        END;
        $$ LANGUAGE plpgsql
        """,
        """
        CREATE TRIGGER campaign_logs_immutable BEFORE UPDATE OR DELETE ON campaign_logs
        FOR EACH ROW EXECUTE FUNCTION campaign_logs_immutable()
        """,
        # Row triggers do not fire on TRUNCATE.
        """
        CREATE TRIGGER campaign_logs_no_truncate BEFORE TRUNCATE ON campaign_logs
        FOR EACH STATEMENT EXECUTE FUNCTION campaign_logs_immutable()
        """,
    ],
    "sqlite": [
        """
        CREATE TRIGGER campaign_logs_no_update BEFORE UPDATE ON campaign_logs
        BEGIN SELECT RAISE(ABORT, 'campaign logs are immutable'); END
        """,
        """
        CREATE TRIGGER campaign_logs_no_delete BEFORE DELETE ON campaign_logs
        BEGIN SELECT RAISE(ABORT, 'campaign logs are immutable'); END
        """,
    ],
}
DROP_IMMUTABLE_LOGS = {
    "postgresql": ["DROP FUNCTION campaign_logs_immutable() CASCADE"],
    "sqlite": ["DROP TRIGGER campaign_logs_no_update", "DROP TRIGGER campaign_logs_no_delete"],
}


def upgrade() -> None:
    op.create_table(
        "campaign_logs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("log_type", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.Column("contact_id", sa.String(length=36), nullable=True),
        sa.Column("campaign_contact_id", sa.String(length=36), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("request_data", sa.JSON(), nullable=True),
        sa.Column("response_data", sa.JSON(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("campaign_progress", sa.Double(), nullable=True),
        sa.Column("instance_health_score", sa.Double(), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_logs")),
    )
    with op.batch_alter_table("campaign_logs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_logs_campaign_created", ["campaign_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_campaign_logs_instance_created", ["instance_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_campaign_logs_severity_created", ["severity", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_logs_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_campaign_logs_type_created", ["log_type", "created_at"], unique=False)

    op.create_table(
        "campaigns",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("rotation_mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paused_reason", sa.String(length=32), nullable=True),
        sa.Column("interval_min_s", sa.Double(), nullable=True),
        sa.Column("interval_max_s", sa.Double(), nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("warmup", sa.Boolean(), nullable=False),
        sa.Column("send_window", sa.JSON(), nullable=True),
        sa.Column("scheduled_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("total_contacts", sa.Integer(), nullable=False),
        sa.Column("pending_count", sa.Integer(), nullable=False),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.Column("delivered_count", sa.Integer(), nullable=False),
        sa.Column("read_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("opted_out_count", sa.Integer(), nullable=False),
        sa.Column("skipped_count", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaigns_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_status"), ["status"], unique=False)
        batch_op.create_index("ix_campaigns_tenant_created", ["tenant_id", "created_at"], unique=False)

    op.create_table(
        "campaign_contacts",
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("contact_id", sa.String(length=36), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_rank", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.Column("campaign_message_id", sa.String(length=36), nullable=True),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sending_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replied_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_title", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_contacts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_campaign_contacts_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_contacts")),
        sa.UniqueConstraint(
            "campaign_id", "contact_id", name=op.f("uq_campaign_contacts_campaign_id_contact_id")
        ),
    )
    with op.batch_alter_table("campaign_contacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_contacts_campaign_status", ["campaign_id", "status", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_campaign_contacts_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index("ix_campaign_contacts_message", ["message_id"], unique=False)

    op.create_table(
        "campaign_instances",
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.String(length=200), nullable=True),
        sa.Column("interval_min_s", sa.Double(), nullable=True),
        sa.Column("interval_max_s", sa.Double(), nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.Column("last_sent_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_send_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_instances_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["whatsapp_instances.id"],
            name=op.f("fk_campaign_instances_instance_id_whatsapp_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "instance_id", name=op.f("pk_campaign_instances")),
    )
    with op.batch_alter_table("campaign_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_instances_instance_id"), ["instance_id"], unique=False)

    op.create_table(
        "campaign_messages",
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("media", sa.JSON(), nullable=True),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_messages_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_messages")),
    )
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_messages_campaign_id"), ["campaign_id"], unique=False)

    for statement in IMMUTABLE_LOGS[op.get_bind().dialect.name]:
        op.execute(statement)
    with op.batch_alter_table("whatsapp_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("messaging_tier", sa.Integer(), nullable=True, server_default="250"))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_instance_created", ["instance_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_instance_created")
    with op.batch_alter_table("whatsapp_instances", schema=None) as batch_op:
        batch_op.drop_column("messaging_tier")
    for statement in DROP_IMMUTABLE_LOGS[op.get_bind().dialect.name]:
        op.execute(statement)
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_messages_campaign_id"))

    op.drop_table("campaign_messages")
    with op.batch_alter_table("campaign_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_instances_instance_id"))

    op.drop_table("campaign_instances")
    with op.batch_alter_table("campaign_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_contacts_message")
        batch_op.drop_index(batch_op.f("ix_campaign_contacts_contact_id"))
        batch_op.drop_index("ix_campaign_contacts_campaign_status")

    op.drop_table("campaign_contacts")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_tenant_created")
        batch_op.drop_index(batch_op.f("ix_campaigns_status"))

    op.drop_table("campaigns")
    with op.batch_alter_table("campaign_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_logs_type_created")
        batch_op.drop_index(batch_op.f("ix_campaign_logs_tenant_id"))
        batch_op.drop_index("ix_campaign_logs_severity_created")
        batch_op.drop_index("ix_campaign_logs_instance_created")
        batch_op.drop_index("ix_campaign_logs_campaign_created")

    op.drop_table("campaign_logs")
