"""churn models, and churn probability on the latest scores

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "churn_models",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trained_by", sa.String(length=255), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("neutral_score", sa.Double(), nullable=False),
        sa.Column("measure_names", _json(), nullable=False),
        sa.Column("feature_names", _json(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("counts", _json(), nullable=False),
        sa.Column("validation", _json(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_churn_models")),
    )
    with op.batch_alter_table("latest_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("churn_probability", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("expected_arr_at_risk", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("churn_model_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("latest_scores", schema=None) as batch_op:
        batch_op.drop_column("churn_model_version")
        batch_op.drop_column("expected_arr_at_risk")
        batch_op.drop_column("churn_probability")
    op.drop_table("churn_models")
