"""users.time_zone: the zone a person's messages show times in

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:40:00

Digests (and any time a message shows) are written in the recipient's time zone instead of raw
UTC ISO timestamps. An IANA name; existing users get UTC.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("time_zone")
