"""latest_scores.churn_values: the churn model's inputs of each account's latest score

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 18:40:00

The churn model now learns from measures of its own (the active config's and the candidates
measure discovery builds), which a scoring run computes beside the config's but does not keep in
``measure_values``. The latest score keeps them, in the model's ``measure_names`` order, so an
account's churn reasons are explained from exactly what made its probability. History does not:
only the latest reasons are shown, and a year of them would double the history's size.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("latest_scores") as batch:
        batch.add_column(sa.Column("churn_values", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("latest_scores") as batch:
        batch.drop_column("churn_values")
