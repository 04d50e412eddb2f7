"""score calibrations: how a portfolio-dependent config scored each day; a covering signals index

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 13:00:00

A scoring config may map a measure by the day's portfolio percentiles, or set band cut-offs as
target shares of the portfolio. Each scored day then stores the resolved points and cut-offs per
config version, so a stored score can be explained one account at a time.

The measure language reads product signals over several windows in one pass: the (signal, day)
index becomes (signal, day, account_id, count), which covers that read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_calibrations",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("calibration", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("day", "config_version", name=op.f("pk_score_calibrations")),
    )
    with op.batch_alter_table("usage_signals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_signals_signal_day_account_count", ["signal", "day", "account_id", "count"], unique=False
        )
        batch_op.drop_index("ix_usage_signals_signal_day")


def downgrade() -> None:
    with op.batch_alter_table("usage_signals", schema=None) as batch_op:
        batch_op.create_index("ix_usage_signals_signal_day", ["signal", "day"], unique=False)
        batch_op.drop_index("ix_usage_signals_signal_day_account_count")
    op.drop_table("score_calibrations")
