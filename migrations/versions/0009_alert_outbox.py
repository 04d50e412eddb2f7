"""alert outbox, cooldowns and routing

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_routing_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "document", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_alert_routing_versions")),
    )
    op.create_table(
        "alert_cooldowns",
        sa.Column("account_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_cooldowns_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "rule_id", name=op.f("pk_alert_cooldowns")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("immediate", "escalation", "digest", name="alert_kind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "dead",
                "held",
                "digested",
                name="alert_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum(
                "email", "slack", "webhook", "log", name="alert_channel", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("recipient_user", sa.String(length=255), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("route_ids", sa.JSON(), nullable=False),
        sa.Column("event_ids", sa.JSON(), nullable=False),
        sa.Column("play_run_ids", sa.JSON(), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("requires_ack", sa.Boolean(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=255), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_of", sa.Integer(), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "delivered_via",
            sa.Enum(
                "email",
                "slack",
                "webhook",
                "log",
                name="alert_delivered_via",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alerts_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["digest_id"], ["alerts.id"], name=op.f("fk_alerts_digest_id_alerts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["escalation_of"], ["alerts.id"], name=op.f("fk_alerts_escalation_of_alerts"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alerts_dedupe_key")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_account_id_created_at", ["account_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_alerts_awaiting_ack",
            ["created_at"],
            unique=False,
            sqlite_where=sa.text("requires_ack AND acknowledged_at IS NULL AND escalated_at IS NULL"),
            postgresql_where=sa.text("requires_ack AND acknowledged_at IS NULL AND escalated_at IS NULL"),
        )
        batch_op.create_index(
            "ix_alerts_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index("ix_alerts_recipient_day", ["recipient", "day"], unique=False)
        batch_op.create_index("ix_alerts_status_created_at", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_status_created_at")
        batch_op.drop_index("ix_alerts_recipient_day")
        batch_op.drop_index(
            "ix_alerts_due", sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'")
        )
        batch_op.drop_index(
            "ix_alerts_awaiting_ack",
            sqlite_where=sa.text("requires_ack AND acknowledged_at IS NULL AND escalated_at IS NULL"),
            postgresql_where=sa.text("requires_ack AND acknowledged_at IS NULL AND escalated_at IS NULL"),
        )
        batch_op.drop_index("ix_alerts_account_id_created_at")

    op.drop_table("alerts")
    op.drop_table("alert_cooldowns")
    op.drop_table("alert_routing_versions")
