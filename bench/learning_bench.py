"""Learning speed: ``python -m bench.learning_bench`` (``make bench-learning``).

The goal (issue 7): fitting the churn model on 100,000 accounts with 12 monthly observations each
takes under 60 seconds (suggestions have a benchmark of their own: ``make bench-suggestions``).
What this measures:

1. **The fit** (the goal), on arrays of the real shape: 100,000 accounts x 12 monthly observations
   (1.2 million rows, 11 measure scores each with about 10 % missing, the three stages), churn
   drawn from a known logistic model (about 13 % of observations churn within the horizon). Timed:
   ``fit_churn_model`` (calibrated, validated on a time-and-group split), once, in this process.
2. **Data assembly**, separately, on PostgreSQL (database ``hs_bench_learning``, dropped and
   created): demo data (``--accounts``, default 20,000, with 480 days of raw history), then
   ``build_training_data`` with 12 monthly observation dates plus the outcome observations
   (one ``compute_measures`` pass per date; ``--snap-days`` groups outcome dates, 7 here), and
   the churn model fitted on that real data. ``--skip-db`` measures the fit only.

Results print and are written to ``bench/results/learning.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from typing import Any

import numpy as np
from sqlalchemy.orm import sessionmaker

from app.db import make_engine
from app.services.analysis import build_training_data
from bench.run_bench import AS_OF, RESULTS, fresh_database, seed
from scoring.learning import TrainingSet, fit_churn_model
from scoring.model import default_config_dict, model_from_dict
from scoring.stage import STAGES

MODEL = model_from_dict(default_config_dict())


def synthetic(accounts: int, observations: int, seed_value: int = 7) -> TrainingSet:
    """Monthly observations of ``accounts`` accounts: each account's measure scores drift around
    its own level, churn follows a known logistic model of the centered scores."""
    rng = np.random.default_rng(seed_value)
    m = len(MODEL.measures)
    k = accounts * observations
    account = np.repeat(np.arange(1, accounts + 1, dtype=np.int64), observations)
    first = np.datetime64("2025-01-31")
    observed = first + (np.tile(np.arange(observations), accounts) * 30).astype("timedelta64[D]")
    level = rng.uniform(10, 90, (accounts, m))
    scores = np.clip(np.repeat(level, observations, axis=0) + rng.normal(0, 12, (k, m)), 0, 100)
    scores[rng.random((k, m)) < 0.1] = np.nan
    beta = -np.linspace(0.4, 2.4, m)
    logit = -3.4 + np.nan_to_num((scores - 50) / 50) @ beta
    label = rng.random(k) < 1 / (1 + np.exp(-logit))
    stage = rng.choice(len(STAGES), size=k, p=[0.15, 0.65, 0.20]).astype(np.int8)
    return TrainingSet(observed, account, stage, scores, label, MODEL.measure_names)


def bench_fit(data: TrainingSet) -> dict[str, Any]:
    start = time.perf_counter()
    churn = fit_churn_model(data, seed=0)
    churn_seconds = time.perf_counter() - start
    return {
        "observations": data.size,
        "accounts": int(np.unique(data.account_id).size),
        "churned": int(np.count_nonzero(data.label)),
        "churn_model_seconds": round(churn_seconds, 2),
        "fit_seconds": round(churn_seconds, 2),
        "validation": {"churn_model_auc": churn.validation.auc, "churn_model_brier": churn.validation.brier},
    }


def bench_assembly(pg_url: str, accounts: int, days: int, snap_days: int) -> dict[str, Any]:
    url = fresh_database("postgresql", pg_url, RESULTS, accounts)
    seeded = seed(url, accounts, days)
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    start = time.perf_counter()
    with factory.begin() as session:
        training = build_training_data(session, as_of=AS_OF, periodic_months=12, snap_days=snap_days)
    assembly = time.perf_counter() - start
    engine.dispose()
    fit = bench_fit_model(training.data, training.model)
    return {
        "accounts": accounts,
        "raw_days": days,
        "seed": seeded,
        "snap_days": snap_days,
        "assembly_seconds": round(assembly, 1),
        "observation_dates": training.observation_dates,
        "counts": training.counts(),
        "fit": fit,
    }


def bench_fit_model(data: TrainingSet, model: Any) -> dict[str, Any]:
    start = time.perf_counter()
    churn = fit_churn_model(data, neutral_score=model.neutral_score, seed=0)
    end = time.perf_counter()
    return {
        "churn_model_seconds": round(end - start, 2),
        "churn_model_auc": churn.validation.auc,
        "churn_model_brier": churn.validation.brier,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit-accounts", type=int, default=100_000)
    parser.add_argument("--observations", type=int, default=12)
    parser.add_argument("--accounts", type=int, default=20_000, help="Accounts of the data-assembly run.")
    parser.add_argument("--days", type=int, default=480, help="Days of raw history of the data-assembly run.")
    parser.add_argument("--snap-days", type=int, default=7)
    parser.add_argument("--skip-db", action="store_true", help="Measure the fit only.")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("HS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/hs_bench_learning"),
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count()}
    data = synthetic(args.fit_accounts, args.observations)
    results["fit"] = bench_fit(data)
    fit = results["fit"]
    print(
        f"fit: {fit['observations']:,} observations of {fit['accounts']:,} accounts ({fit['churned']:,} churned): "
        f"churn model {fit['churn_model_seconds']} s (goal < 60 s; suggestions: make bench-suggestions)"
    )
    print(f"  validation: {json.dumps(fit['validation'])}")
    if not args.skip_db:
        results["assembly"] = bench_assembly(args.pg_url, args.accounts, args.days, args.snap_days)
        a = results["assembly"]
        print(
            f"assembly: {a['accounts']:,} accounts x {a['raw_days']} days on PostgreSQL: "
            f"{a['counts']['observations']:,} observations over {a['observation_dates']} dates in "
            f"{a['assembly_seconds']} s; fit on them {json.dumps(a['fit'])}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "learning.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
