"""segment: applied message ids, and daily active users per account

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segment_messages",
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_segment_messages")),
    )
    op.create_table(
        "daily_active_users",
        sa.Column("account_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", "user_id", name=op.f("pk_daily_active_users")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("daily_active_users")
    op.drop_table("segment_messages")
