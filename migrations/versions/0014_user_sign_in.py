"""users sign in to the pages: role, argon2 password hash, one-time invite and reset links

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROLES = ("admin", "manager", "csm", "ingest", "viewer")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("link_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_users_link_token_hash"), ["link_token_hash"])
    # A second batch: SQLite's copy of the table must have the column before its CHECK.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_check_constraint("user_role", sa.column("role").in_(ROLES))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("user_role", type_="check")
        batch_op.drop_constraint(batch_op.f("uq_users_link_token_hash"), type_="unique")
        batch_op.drop_column("link_expires_at")
        batch_op.drop_column("link_token_hash")
        batch_op.drop_column("password_set_at")
        batch_op.drop_column("password_hash")
        batch_op.drop_column("role")
