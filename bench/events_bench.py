"""Events, plays and alerts cost: ``python -m bench.events_bench`` (``make bench-events``).

On demo data (100,000 accounts, 90 days of usage by default) on PostgreSQL (and SQLite):

1. With the default config (all default rules) and the default play library, day D-2 is scored
   and committed: the *first evaluation* (since issue 17 it records the rules' state and fires
   only the rules with ``fire_on_first_day``; before, every condition already true fired: the
   one-off flood of a new installation), then day D-1: a steady day. Then ``VACUUM ANALYZE``, as
   autovacuum would after such writes.
2. Day D is then scored again and again in this process, rolled back each time, alternating
   *alone* (the same config without rules, no plays: what the run cost before events existed)
   and *with rules and plays* (a steady-state daily run: D's events, play runs and the alerts
   they queue are new; the alerts step's seconds are reported too).
   Same database state, same day, same process: the medians of ``--repeats`` runs each, and
   their ratio, which the events-and-plays issue wants at most 1.5.

``--reuse`` (PostgreSQL) keeps the freshly seeded database as a template (``<database>_seed``) and
later runs start from a copy of it instead of seeding again (a few seconds instead of minutes);
the first evaluation still runs on a never-scored portfolio.

Results print and are written to ``bench/results/events.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.db import make_engine
from app.pipeline import run as scoring
from bench.run_bench import AS_OF, RESULTS, fresh_database, seed
from config import normalize_database_url


def _timed(factory: sessionmaker[Session], day: dt.date, *, commit: bool) -> dict[str, Any]:
    with factory() as session:
        start = time.perf_counter()
        summary = scoring.run_scoring(session, as_of=day)
        seconds = time.perf_counter() - start
        if commit:
            session.commit()
        else:
            session.rollback()
    return {
        "run_seconds": round(seconds, 3),
        "events": summary.events,
        "play_runs": summary.play_runs,
        "tasks": summary.tasks,
        "alerts": summary.alerts.queued + summary.alerts.held,
        "steps": summary.seconds,
    }


def _model_without_rules(session: Session) -> tuple[int, Any]:
    version, model = _REAL["model"](session)
    return version, dataclasses.replace(model, rules=())


def _alone(enabled: bool) -> None:
    """Switch this process between the real run and the run without rules and plays."""
    if enabled:
        scoring.get_active_model = _model_without_rules  # type: ignore[assignment]
        scoring.load_plays = lambda s: []  # type: ignore[assignment]
    else:
        scoring.get_active_model = _REAL["model"]  # type: ignore[assignment]
        scoring.load_plays = _REAL["plays"]  # type: ignore[assignment]


_REAL: dict[str, Any] = {"model": scoring.get_active_model, "plays": scoring.load_plays}


def _seeded(
    backend: str, pg_url: str, workdir: Path, size: int, days: int, *, reuse: bool
) -> tuple[str, dict[str, Any]]:
    """A seeded, never-scored database: seeded now, or (``reuse``, PostgreSQL) copied from the
    template an earlier ``--reuse`` run kept, which it makes when there is none for this size."""
    if backend != "postgresql" or not reuse:
        url = fresh_database(backend, pg_url, workdir, size)
        return url, seed(url, size, days)
    target = sa.make_url(normalize_database_url(pg_url))
    template = f"{target.database}_seed"
    wanted = {"accounts": size, "days": days}
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :name"),
                {"name": template},
            ).scalar()
            kept = json.loads(found) if found else None
            if kept is not None and kept.get("size") == wanted:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}"'))
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}" TEMPLATE "{template}"'))
                url = target.render_as_string(hide_password=False)
                engine = make_engine(url)
                migrate.upgrade(engine)  # a template from before a schema change
                engine.dispose()
                return url, {**kept["seeded"], "reused": template}
        url = fresh_database(backend, pg_url, workdir, size)
        seeded = seed(url, size, days)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{template}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{template}" TEMPLATE "{target.database}"'))
            comment = json.dumps({"size": wanted, "seeded": seeded}).replace("'", "''")
            conn.exec_driver_sql(f"COMMENT ON DATABASE \"{template}\" IS '{comment}'")
        return url, seeded
    finally:
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/hs_bench_events")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: start from a copy of the seeded database an earlier --reuse kept.",
    )
    args = parser.parse_args()

    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "runs": []}
    with tempfile.TemporaryDirectory(prefix="hs-bench-events-") as tmp:
        for backend in args.backends.split(","):
            url, seeded = _seeded(backend, args.pg_url, Path(tmp), args.size, args.days, reuse=args.reuse)
            engine = make_engine(url)
            factory = sessionmaker(bind=engine)
            first = _timed(factory, AS_OF - dt.timedelta(days=2), commit=True)
            _timed(factory, AS_OF - dt.timedelta(days=1), commit=True)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE" if backend == "postgresql" else "ANALYZE"))
            runs: dict[str, list[dict[str, Any]]] = {"alone": [], "with_rules": []}
            for _ in range(args.repeats):
                for mode, results in runs.items():
                    _alone(mode == "alone")
                    results.append(_timed(factory, AS_OF, commit=False))
            _alone(False)
            engine.dispose()
            alone = statistics.median(r["run_seconds"] for r in runs["alone"])
            full = statistics.median(r["run_seconds"] for r in runs["with_rules"])
            alerts_step = statistics.median(r["steps"]["alerts"] for r in runs["with_rules"])
            steady = runs["with_rules"][-1]
            row = {
                "backend": backend,
                "accounts": args.size,
                **seeded,
                "first_evaluation": first,
                "alone_runs": runs["alone"],
                "with_rules_runs": runs["with_rules"],
                "alone_median_seconds": alone,
                "with_rules_median_seconds": full,
                "ratio": round(full / alone, 2),
                "alerts_step_median_seconds": alerts_step,
            }
            report["runs"].append(row)
            print(
                f"{backend:10} {args.size:,} accounts: alone {alone:.2f}s, with rules, plays and alerts {full:.2f}s "
                f"({steady['events']:,} events, {steady['play_runs']:,} play runs, {steady['tasks']:,} tasks, "
                f"{steady['alerts']:,} alerts; alerts step {alerts_step:.2f}s) = {full / alone:.2f}x (medians of "
                f"{args.repeats}); first evaluation {first['run_seconds']}s ({first['events']:,} events, "
                f"{first['play_runs']:,} play runs, {first['alerts']:,} alerts, alerts step "
                f"{first['steps']['alerts']:.2f}s); steps alone "
                f"{runs['alone'][-1]['steps']}, with rules {steady['steps']}",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "events.json").write_text(json.dumps(report, indent=2))
    print(f"written to {RESULTS / 'events.json'}")


if __name__ == "__main__":
    main()
