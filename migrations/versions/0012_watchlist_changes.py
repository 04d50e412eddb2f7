"""watchlist change log (PostgreSQL): which transactions changed what a watchlist page reads

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 08:30:00

A statement-level trigger on every table a watchlist page reads records the id of the writing
transaction in ``watchlist_changes`` (one row per transaction, whatever it wrote). A cached page
remembers the snapshot it was read in; it is still current exactly when no row of this table is
invisible in that snapshot (``app/services/watchlist/cache.py``). Inserts by different
transactions never wait on each other (each inserts its own key), so writers do not serialize.

PostgreSQL only: SQLite has no transaction ids or snapshots to compare, and its triggers run per
row; there the watchlist is never cached.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: Every table ``GET /api/v1/watchlist`` reads (the page, its play runs and tasks, the drivers'
#: config versions, the churn-model note, and the users a book or team is made of).
TABLES = (
    "accounts",
    "latest_scores",
    "watchlist_pins",
    "band_overrides",
    "play_runs",
    "tasks",
    "plays",
    "scoring_config_versions",
    "churn_models",
    "users",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE TABLE watchlist_changes (
            xid xid8 NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            CONSTRAINT pk_watchlist_changes PRIMARY KEY (xid)
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION hs_watchlist_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO watchlist_changes (xid) VALUES (pg_current_xact_id()) ON CONFLICT (xid) DO NOTHING;
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER tr_{table}_watchlist_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION hs_watchlist_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_watchlist_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS hs_watchlist_changed()")
    op.execute("DROP TABLE IF EXISTS watchlist_changes")
