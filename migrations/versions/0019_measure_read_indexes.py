"""covering index for the latest feedback of a kind

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 19:00:00

The measure step reads each account's latest feedback of a kind in a window (the CSM's latest
sentiment), newest day first and then newest id: the (account_id, kind, day) index found the rows
but sorted each account's day by id and read the table for the score. The index becomes
(account_id, kind, day, id, score): one backward index-only seek per account, no sort.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feedback_account_id_kind_day_id_score", ["account_id", "kind", "day", "id", "score"], unique=False
        )
        batch_op.drop_index("ix_feedback_account_id_kind_day")


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_account_id_kind_day", ["account_id", "kind", "day"], unique=False)
        batch_op.drop_index("ix_feedback_account_id_kind_day_id_score")
