"""The demo's day-one figures (issue 17, part 5): what a new user sees right after `make demo`.

Seed the demo into a fresh database the way the Makefile does, then count:

    export HS_DATABASE_URL=sqlite:////tmp/dayone-after.db FLASK_APP=wsgi
    .venv/bin/flask db upgrade
    .venv/bin/flask demo seed --accounts 500 --days 365 --replace
    .venv/bin/flask demo users
    .venv/bin/flask score run --days 31
    .venv/bin/python -m bench.dayone_figures            # or: bench/dayone_figures.py --url ...

Figures (plain SQL over the tables, read only):

- watchlist share: accounts not churned that the watchlist lists (poor band; average and falling:
  down ``--falling-7d-points`` or more in 7 days, or 5 or more in 30; an open run of a watchlist
  play; a live pin), over the accounts not churned. ``--falling-7d-points 0`` is the rule before
  issue 17 (any fall at all);
- open tasks, the share already overdue on the run's day (``--today``, default: the newest scored
  day), and open escalation tasks without an assignee;
- alerts: queued to be sent at once (``pending``), held for the digest, in all;
- events on each account's first scored day;
- digests: queued with ``--force`` inside a transaction that is rolled back (the database is left
  as it was): how many, and the largest one's JSON and HTML email size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from typing import Any

import sqlalchemy as sa


def _scalar(conn: sa.Connection, sql: str, **params: Any) -> Any:
    return conn.execute(sa.text(sql), params).scalar()


def figures(conn: sa.Connection, *, today: dt.date | None, falling_7d_points: float) -> dict[str, Any]:
    today = today or dt.date.fromisoformat(str(_scalar(conn, "SELECT max(day) FROM health_scores")))
    active = _scalar(conn, "SELECT count(*) FROM accounts WHERE status != 'churned'")
    listed = _scalar(
        conn,
        """
        SELECT count(*) FROM accounts a LEFT JOIN latest_scores l ON l.account_id = a.id
        WHERE a.status != 'churned' AND (
            l.band = 'poor'
            OR (l.band = 'average' AND ((l.score_change_7d < 0 AND l.score_change_7d <= -:points)
                                        OR l.score_change_30d <= -5))
            OR EXISTS (SELECT 1 FROM play_runs r WHERE r.account_id = a.id AND r.status = 'open' AND r.watchlist)
            OR EXISTS (SELECT 1 FROM watchlist_pins p WHERE p.account_id = a.id AND p.removed_at IS NULL)
        )
        """,
        points=falling_7d_points,
    )
    open_tasks = _scalar(conn, "SELECT count(*) FROM tasks WHERE status = 'open'")
    overdue = _scalar(conn, "SELECT count(*) FROM tasks WHERE status = 'open' AND due_on < :today", today=today)
    unassigned = _scalar(
        conn, "SELECT count(*) FROM tasks WHERE status = 'open' AND type = 'escalation' AND assignee IS NULL"
    )
    alerts = dict(conn.execute(sa.text("SELECT status, count(*) FROM alerts GROUP BY status")).all())
    first_day_events = _scalar(
        conn,
        """
        SELECT count(*) FROM events e
        JOIN (SELECT account_id, min(day) AS first FROM health_scores GROUP BY account_id) f
          ON f.account_id = e.account_id AND f.first = e.day
        """,
    )
    return {
        "today": today.isoformat(),
        "accounts_not_churned": active,
        "watchlist": listed,
        "watchlist_share": round(listed / active, 3) if active else None,
        "open_tasks": open_tasks,
        "overdue_open_tasks": overdue,
        "overdue_share": round(overdue / open_tasks, 3) if open_tasks else 0.0,
        "open_escalation_tasks_without_assignee": unassigned,
        "alerts_sent_at_once": int(alerts.get("pending", 0)),
        "alerts_held": int(alerts.get("held", 0)),
        "alerts_total": int(sum(alerts.values())),
        "events_on_first_scored_day": first_day_events,
        "events_total": _scalar(conn, "SELECT count(*) FROM events"),
    }


def digest_sizes(url: str) -> dict[str, Any]:
    """Queue today's digests with ``--force`` in a transaction that is rolled back."""
    os.environ["HS_DATABASE_URL"] = url
    from alerts.base import message_from_dict
    from alerts.render import email_content
    from app import create_app
    from app.db import session_factory
    from app.models import Alert
    from app.services.alerts.digest import queue_digests
    from app.services.alerts.settings import AlertSettings

    app = create_app()
    with app.app_context():
        session = session_factory()()
        try:
            session.begin()
            queued = queue_digests(
                session, now=dt.datetime.now(dt.UTC), settings=AlertSettings.from_config(app.config), force=True
            )
            session.flush()
            rows = session.scalars(sa.select(Alert).where(Alert.kind == "digest")).all()
            sizes = [(len(json.dumps(r.payload)), len(email_content(message_from_dict(r.payload)).html)) for r in rows]
        finally:
            session.rollback()
            session.close()
    return {
        "digests": queued,
        "largest_digest_json_bytes": max((s[0] for s in sizes), default=0),
        "largest_digest_html_bytes": max((s[1] for s in sizes), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("HS_DATABASE_URL"), help="the database (HS_DATABASE_URL)")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--falling-7d-points", type=float, default=2.0, help="0: the rule before issue 17")
    parser.add_argument("--no-digests", action="store_true", help="skip queueing (and rolling back) digests")
    args = parser.parse_args()
    if not args.url:
        parser.error("give --url or set HS_DATABASE_URL")
    engine = sa.create_engine(args.url)
    with engine.connect() as conn:
        out = figures(conn, today=args.today, falling_7d_points=args.falling_7d_points)
    engine.dispose()
    if not args.no_digests:
        out.update(digest_sizes(args.url))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
