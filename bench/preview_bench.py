"""Preview speed: ``python -m bench.preview_bench`` (``make bench-preview``).

The goal (issue 6): ``POST /api/v1/scoring/config/preview`` with its backtest over 100,000 accounts
answers in under 10 seconds on PostgreSQL. What this measures:

1. Demo data (``seed_demo``: 100,000 accounts, 90 days of usage, ~22,000 outcomes) in a fresh
   PostgreSQL database ``hs_bench_preview``.
2. Two real scoring runs: the day before ``AS_OF`` with churned accounts counted as active for that
   run only (so they too have stored measure values, as they would have had before they churned),
   then ``AS_OF`` (the latest score of every active account).
3. Score history, synthetic but of the real shape and size: each account's stored row of the day
   before ``AS_OF`` copied, server-side, to the 88 days before it (90 days of daily history in all)
   and to one day a week from ``AS_OF - 91`` back to ``AS_OF - 280``, so every outcome (the demo's
   fall in the 180 days before ``AS_OF``) has a stored score within 14 days before its 90-day
   horizon. About 118 rows per account, 11.8 million in all; then ``VACUUM ANALYZE``.
4. The preview through the Flask test client with an admin token (the whole request: auth, body
   validation, both queries, numpy, JSON), once cold (a fresh app) and then ``--repeats`` times.
   The proposed config changes the weights and the good cut-off, so accounts change band.

The history values repeat per account, so the AUCs printed are no judgement of the default model:
the figure measured is time. Results print and are written to ``bench/results/preview.json``.
``--reuse`` skips steps 1-3 when the database already holds the data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app import create_app
from app.auth import create_token
from app.db import make_engine
from app.models import Account, AccountStatus, Role
from app.pipeline.run import run_scoring
from bench.run_bench import AS_OF, RESULTS, fresh_database, seed
from config import Config, normalize_database_url
from scoring.model import default_config_dict

DAILY_DAYS = 88  # copies before the day-before row: with it and AS_OF, 90 days of daily history
WEEKLY_ROWS = 28  # AS_OF - 91, - 98, ... - 280


def _score_history(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    seed_day = AS_OF - dt.timedelta(days=1)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with factory.begin() as session:
        churned = session.scalars(
            sa.update(Account)
            .where(Account.status == AccountStatus.CHURNED)
            .values(status=AccountStatus.ACTIVE)
            .returning(Account.id)
        ).all()
        before = run_scoring(session, as_of=seed_day)
        session.execute(sa.update(Account).where(Account.id.in_(churned)).values(status=AccountStatus.CHURNED))
    timings["score_day_before_with_churned"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    with factory.begin() as session:
        latest = run_scoring(session, as_of=AS_OF)
    timings["score_as_of"] = round(time.perf_counter() - start, 1)

    offsets = list(range(1, DAILY_DAYS + 1)) + [90 + 7 * j for j in range(WEEKLY_ROWS)]
    start = time.perf_counter()
    copy = sa.text(
        "INSERT INTO health_scores (account_id, day, config_version, stage, score, band, completeness, "
        "measure_values) SELECT h.account_id, h.day - g.k, h.config_version, h.stage, h.score, h.band, "
        "h.completeness, h.measure_values FROM health_scores h CROSS JOIN unnest(CAST(:offsets AS integer[])) "
        "AS g(k) WHERE h.day = :day"
    )
    for i in range(0, len(offsets), 10):
        with factory.begin() as session:
            session.execute(copy, {"offsets": offsets[i : i + 10], "day": seed_day})
    timings["copy_history"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
        rows = conn.execute(sa.text("SELECT count(*) FROM health_scores")).scalar_one()
        outcomes = conn.execute(sa.text("SELECT count(*) FROM outcomes")).scalar_one()
    timings["vacuum_analyze"] = round(time.perf_counter() - start, 1)
    engine.dispose()
    return {
        "accounts_scored_day_before": before.accounts_scored,
        "accounts_scored_as_of": latest.accounts_scored,
        "history_rows": int(rows),
        "outcomes": int(outcomes),
        "seconds": timings,
    }


def _proposed() -> dict[str, Any]:
    data = default_config_dict()
    data["bands"] = {"good": 75, "poor": 40}
    for weights in data["weights"].values():
        weights["usage_trend_pct"] = weights.get("usage_trend_pct", 0) + 10
        weights["nps"] = weights.get("nps", 0) * 2
    return data


def _time_preview(url: str, repeats: int) -> dict[str, Any]:
    app = create_app(Config(DATABASE_URL=url, SECRET_KEY=secrets.token_urlsafe(32)))
    with sessionmaker(bind=app.extensions["engine"]).begin() as session:
        _, token = create_token(session, "bench-preview", Role.ADMIN)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"config": _proposed(), "horizon_days": 90}
    times = []
    result: dict[str, Any] = {}
    for _ in range(repeats + 1):
        start = time.perf_counter()
        response = client.post("/api/v1/scoring/config/preview", json=body, headers=headers)
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"preview failed: {response.status_code} {response.get_data(as_text=True)[:2000]}")
        result = response.get_json()
    app.extensions["engine"].dispose()
    warm = times[1:] or times
    backtest = result["backtest"]
    return {
        "cold_seconds": round(times[0], 3),
        "warm_median_seconds": round(statistics.median(warm), 3),
        "warm_max_seconds": round(max(warm), 3),
        "service_seconds": result["seconds"],
        "accounts": result["band_changes"]["accounts"],
        "band_changed": result["band_changes"]["changed"],
        "listed": len(result["band_changes"]["accounts_changed"]),
        "outcomes": backtest["outcomes"],
        "auc_active": backtest["active"]["auc"],
        "auc_proposed": backtest["proposed"]["auc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90, help="Days of demo usage per account.")
    parser.add_argument("--repeats", type=int, default=3, help="Warm requests after the cold one.")
    parser.add_argument("--reuse", action="store_true", help="Keep an already seeded and scored database.")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/hs_bench_preview",
        help="A database the benchmark may drop and recreate.",
    )
    args = parser.parse_args()
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "accounts": args.size}
    if args.reuse:
        url = sa.make_url(normalize_database_url(args.pg_url)).render_as_string(hide_password=False)
        previous = RESULTS / "preview.json"
        if previous.is_file():  # keep how the reused database was built
            built = json.loads(previous.read_text())
            report.update({k: built[k] for k in ("seed", "history") if k in built})
    else:
        url = fresh_database("postgresql", args.pg_url, Path("."), args.size)
        report["seed"] = seed(url, args.size, args.days)
        print(f"seeded in {report['seed']['seed_seconds']}s: {report['seed']['summary']}", flush=True)
        report["history"] = _score_history(url)
        print(f"history: {report['history']}", flush=True)
    report["preview"] = preview = _time_preview(url, args.repeats)
    print(
        f"preview over {preview['accounts']:,} latest scores and {preview['outcomes']['considered']:,} outcomes: "
        f"cold {preview['cold_seconds']}s, warm median {preview['warm_median_seconds']}s "
        f"(max {preview['warm_max_seconds']}s; service {preview['service_seconds']}s); "
        f"{preview['band_changed']:,} accounts change band; backtest used {preview['outcomes']['used']:,} "
        f"outcomes, AUC active {preview['auc_active']} vs proposed {preview['auc_proposed']}",
        flush=True,
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preview.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS / 'preview.json'}")


if __name__ == "__main__":
    main()
