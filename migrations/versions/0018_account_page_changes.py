"""account page change log (PostgreSQL): which transactions changed what an account page reads beyond the watchlist

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 18:10:00

The account page (``/accounts/<id>``) reads every table a watchlist page reads (logged in
``watchlist_changes``, migration 0012) and more: the score history, events, alerts, and the raw
data whose freshness it shows. A statement-level trigger on each of those records the id of the
writing transaction in ``account_page_changes`` (one row per transaction), so a kept account page
is current exactly when neither log has a row invisible in the snapshot it was read in
(``app/services/watchlist/cache.py``, ``app/web/pages.py``).

A log of its own, not more triggers on ``watchlist_changes``: an ingest batch or an alert sent
changes no watchlist page, and would otherwise drop every kept watchlist page. Statement-level:
a COPY or an ``INSERT ... SELECT`` of a million rows adds one row here, not a million.

PostgreSQL only, as 0012: on SQLite no page is kept.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

#: Every table the account page reads that ``watchlist_changes`` does not cover.
TABLES = (
    "health_scores",
    "score_calibrations",
    "events",
    "alerts",
    "daily_usage",
    "license_snapshots",
    "support_tickets",
    "feedback",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE TABLE account_page_changes (
            xid xid8 NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            CONSTRAINT pk_account_page_changes PRIMARY KEY (xid)
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION hs_account_page_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO account_page_changes (xid) VALUES (pg_current_xact_id()) ON CONFLICT (xid) DO NOTHING;
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER tr_{table}_account_page_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION hs_account_page_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_account_page_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS hs_account_page_changed()")
    op.execute("DROP TABLE IF EXISTS account_page_changes")
