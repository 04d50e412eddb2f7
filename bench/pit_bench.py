"""Point-in-time account data and stored predictions at scale: ``python -m bench.pit_bench``
(``make bench-pit``).

On demo data (100,000 accounts by default, with their account history) on each backend:

1. ``plain``: the accounts query the scoring run made before account history (current ARR,
   seats, dates and owner of the accounts not churned by the day), against ``accounts_as_of``
   for the same day (the history row in force, or the first row), and for a day a year earlier
   (where many accounts are before their first row). Medians of ``--repeats``.
2. ``measures``: the whole measures step (``compute_measures``), which now reads its accounts
   through ``accounts_as_of``, for scale.
3. ``predictions``: ``--prediction-days`` days of stored predictions for every account written
   into ``health_scores`` by SQL, then ``evaluate_predictions`` over all of them (AUC, Brier,
   deciles). Median of 3.

Peak RSS is the process's. Results print and are written to ``bench/results/pit.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app.db import make_engine
from app.models import Account
from app.pipeline.accounts import accounts_as_of
from app.pipeline.arrays import fetch_rows
from app.pipeline.measures import compute_measures, not_churned_by
from app.services.predictions import evaluate_predictions
from app.services.scoring_config.active import get_active_model
from bench.run_bench import AS_OF, RESULTS, fresh_database, seed


def _median(action: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def _plain(conn: sa.Connection, as_of: dt.date) -> int:
    statement = (
        sa.select(Account.id, Account.arr, Account.seats_purchased, Account.contract_start, Account.renewal_date,
                  Account.owner)
        .where(not_churned_by(as_of))
        .order_by(Account.id)
    )  # fmt: skip
    return len(fetch_rows(conn, statement))


def _write_predictions(engine: sa.Engine, days: int) -> int:
    """``days`` days of history rows with a pseudo-random churn probability for every account."""
    with engine.begin() as conn:
        for k in range(days):
            day = AS_OF - dt.timedelta(days=k)
            conn.execute(
                sa.text(
                    "INSERT INTO health_scores (account_id, day, config_version, stage, score, band, completeness, "
                    "measure_values, churn_probability, expected_arr_at_risk, churn_model_version) "
                    "SELECT id, :day, 1, 'established', 50.0, 'average', 1.0, '[]', "
                    "((id * 7919 + :k * 104729) % 10000) / 10000.0, 0.0, 1 FROM accounts"
                ),
                {"day": day, "k": k},
            )
        analyze = "ANALYZE health_scores" if engine.dialect.name == "postgresql" else "ANALYZE"
        conn.execute(sa.text(analyze))
        return int(conn.execute(sa.text("SELECT count(*) FROM health_scores")).scalar_one())


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = fresh_database(backend, args.pg_url, workdir, args.accounts)
    out: dict[str, Any] = {"backend": backend, "accounts": args.accounts, "seed": seed(url, args.accounts, args.days)}
    engine = make_engine(url)
    factory = sessionmaker(bind=engine)
    year_before = AS_OF - dt.timedelta(days=365)
    with engine.begin() as conn:
        if backend == "postgresql":  # as the scoring run's measures step sets them
            conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))
            conn.execute(sa.text("SET LOCAL jit = off"))
        out["history_rows"] = int(conn.execute(sa.text("SELECT count(*) FROM account_history")).scalar_one())
        out["plain_seconds"] = _median(lambda: _plain(conn, AS_OF), args.repeats)
        out["as_of_seconds"] = _median(lambda: accounts_as_of(conn, as_of=AS_OF), args.repeats)
        out["as_of_year_before_seconds"] = _median(lambda: accounts_as_of(conn, as_of=year_before), args.repeats)
        out["scored_accounts"] = int(accounts_as_of(conn, as_of=AS_OF).ids.size)
    with factory() as session:
        _, model = get_active_model(session)
        out["measures_seconds"] = _median(lambda: compute_measures(session, as_of=AS_OF, model=model), 1)
        session.rollback()
    out["predictions_rows"] = _write_predictions(engine, args.prediction_days)
    with factory() as session:
        query = {"start": None, "end": None, "horizon_days": 90, "as_of": AS_OF + dt.timedelta(days=90)}
        result: dict[str, Any] = {}
        out["predictions_seconds"] = _median(lambda: result.update(evaluate_predictions(session, **query)), 3)
        out["predictions_evaluated"] = result["predictions"]
        out["predictions_auc"] = result["auc"]
        session.rollback()
    engine.dispose()
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--days", type=int, default=30, help="Days of demo usage per account.")
    parser.add_argument("--prediction-days", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/hs_bench_pit")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            result = bench_backend(backend, args, Path(tmp))
            print(json.dumps(result), flush=True)
            results.append(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pit.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
