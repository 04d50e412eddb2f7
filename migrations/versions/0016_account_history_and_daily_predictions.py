"""account history (point-in-time account data), billing term and plan; churn predictions in score history

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 13:00:00

``account_history`` keeps an account's dated fields (ARR, seats, renewal date, billing term,
plan, owner, segment, contract start) with the day each took effect. Existing accounts get one
row, in force from the day they were last written (``updated_at``): before that day their renewal
date is unknown (their billing term is), see docs/scoring.md. ``health_scores`` gets the churn
probability, expected ARR at risk and model version of every scored day (null on older rows).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_TERMS = ("monthly", "quarterly", "annual", "multi_year")


def _term() -> sa.Enum:
    return sa.Enum(*_TERMS, name="billing_term", native_enum=False, create_constraint=True, length=10)


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_term", _term(), nullable=True))
        batch_op.add_column(sa.Column("plan", sa.String(length=64), nullable=True))
    op.create_table(
        "account_history",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("arr", sa.Float(), nullable=False),
        sa.Column("seats_purchased", sa.Integer(), nullable=False),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("billing_term", _term(), nullable=True),
        sa.Column("plan", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("contract_start", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_history_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "valid_from", name=op.f("pk_account_history")),
    )
    known_since = "date(updated_at)" if op.get_bind().dialect.name == "sqlite" else "CAST(updated_at AS DATE)"
    op.execute(
        "INSERT INTO account_history (account_id, valid_from, arr, seats_purchased, renewal_date, billing_term, "
        "plan, owner, segment, contract_start, recorded_at) "
        f"SELECT id, {known_since}, arr, seats_purchased, renewal_date, billing_term, plan, owner, segment, "
        "contract_start, updated_at FROM accounts"
    )
    with op.batch_alter_table("health_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("churn_probability", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("expected_arr_at_risk", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("churn_model_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("health_scores", schema=None) as batch_op:
        batch_op.drop_column("churn_model_version")
        batch_op.drop_column("expected_arr_at_risk")
        batch_op.drop_column("churn_probability")
    op.drop_table("account_history")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_billing_term"), type_="check")
        batch_op.drop_column("plan")
        batch_op.drop_column("billing_term")
