"""events, plays, play runs and tasks; rule state on latest scores

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plays",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column(
            "definition", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plays")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("milestone", "risk", name="rule_kind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column(
            "severity",
            sa.Enum("low", "medium", "high", name="rule_severity", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column(
            "stage",
            sa.Enum(
                "onboarding",
                "established",
                "pre_renewal",
                name="lifecycle_stage",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column(
            "trigger_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_events_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("account_id", "rule_id", "day", name=op.f("uq_events_account_id_rule_id_day")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_day", ["day"], unique=False)
        batch_op.create_index("ix_events_rule_id_day", ["rule_id", "day"], unique=False)

    op.create_table(
        "play_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("play_id", sa.String(length=64), nullable=False),
        sa.Column("play_version", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open", "completed", "cancelled", name="play_run_status", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("trigger_rule_id", sa.String(length=64), nullable=True),
        sa.Column(
            "stage",
            sa.Enum(
                "onboarding",
                "established",
                "pre_renewal",
                name="lifecycle_stage",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "band",
            sa.Enum("good", "average", "poor", name="health_band", native_enum=False, create_constraint=True),
            nullable=True,
        ),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("watchlist", sa.Boolean(), nullable=False),
        sa.Column(
            "alert",
            sa.Enum("immediate", "digest", "none", name="alert_mode", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_play_runs_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["play_id"], ["plays.id"], name=op.f("fk_play_runs_play_id_plays")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_play_runs")),
        sa.UniqueConstraint(
            "account_id", "play_id", "started_on", name=op.f("uq_play_runs_account_id_play_id_started_on")
        ),
    )
    with op.batch_alter_table("play_runs", schema=None) as batch_op:
        batch_op.create_index("ix_play_runs_play_id_started_on", ["play_id", "started_on"], unique=False)
        batch_op.create_index(
            "uq_play_runs_open",
            ["account_id", "play_id"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("play_run_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "call",
                "email",
                "meeting",
                "training",
                "escalation",
                name="task_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "owner_role",
            sa.Enum("csm", "manager", "support", name="owner_role", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("assignee", sa.String(length=255), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "done", "skipped", name="task_status", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("completed_by", sa.String(length=255), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_tasks_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["play_run_id"], ["play_runs.id"], name=op.f("fk_tasks_play_run_id_play_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("play_run_id", "position", name=op.f("uq_tasks_play_run_id_position")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_account_id", ["account_id"], unique=False)
        batch_op.create_index("ix_tasks_assignee_status_due_on", ["assignee", "status", "due_on"], unique=False)
        batch_op.create_index("ix_tasks_status_due_on", ["status", "due_on"], unique=False)

    with op.batch_alter_table("latest_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_state", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("latest_scores", schema=None) as batch_op:
        batch_op.drop_column("rule_state")

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_status_due_on")
        batch_op.drop_index("ix_tasks_assignee_status_due_on")
        batch_op.drop_index("ix_tasks_account_id")

    op.drop_table("tasks")
    with op.batch_alter_table("play_runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_play_runs_open", sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'")
        )
        batch_op.drop_index("ix_play_runs_play_id_started_on")

    op.drop_table("play_runs")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_rule_id_day")
        batch_op.drop_index("ix_events_day")

    op.drop_table("events")
    op.drop_table("plays")
