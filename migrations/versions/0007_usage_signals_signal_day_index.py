"""usage signals by signal and day

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_signals", schema=None) as batch_op:
        batch_op.create_index("ix_usage_signals_signal_day", ["signal", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_signals", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_signals_signal_day")
