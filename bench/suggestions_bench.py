"""Suggestion speed: ``python -m bench.suggestions_bench`` (``make bench-suggestions``).

The goals (issue 15): suggestions over 100,000 accounts x 12 monthly observations with 60
candidate measures finish in under 2 minutes, and a second suggestion on the same day, from the
day's cached observations, in under 20 s. What this measures, each timed on its own:

1. **The fit** on arrays of the real shape: ``--fit-accounts`` (100,000) accounts x 12 monthly
   observations, 60 candidate values per observation (log-normal counts driven by each account's
   drifting engagement, some pure noise, some near copies of others, 10 % missing), 11 active
   measure scores, churn from a known model. Timed: everything ``suggest_config`` does after the
   observations are assembled: the walk-forward validation (the whole procedure refitted on each
   of 3 folds, four methods compared with 1,000 paired bootstrap draws), the final proposal on
   all observations, and the ranking of the 60 candidates with their intervals.
2. **The whole suggestion on PostgreSQL** (database ``hs_bench_suggestions``, dropped and
   created; skipped with ``--skip-db``): demo data of ``--accounts`` accounts with
   ``--days`` of raw history, then ``suggest_config`` twice as of the same day: the first
   assembles the observations (12 monthly ``compute_measures`` passes over the active measures
   plus every candidate) and fits; the second reads the day's cache and fits.

``--reuse`` starts from a copy of the seeded database an earlier ``--reuse`` run kept (see
bench/events_bench.py); ``--existing`` uses the database at ``--pg-url`` as it is (a suggestion
only reads), so repeated timings skip the copy; ``--skip-fit`` times the PostgreSQL part only.

Results print and are written to ``bench/results/suggestions.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import sessionmaker

from app.db import make_engine
from app.services.suggestions import _ranking, _walk_forward, suggest_config
from bench.events_bench import _seeded
from bench.run_bench import AS_OF, RESULTS
from scoring.discovery import candidate_measures, propose
from scoring.learning import TrainingSet
from scoring.model import default_config_dict, model_from_dict

ACTIVE = model_from_dict(default_config_dict())
SOURCES = ["usage.active_users", "usage.logins", "usage.key_feature_uses",
           *(f"signal.event_{i}" for i in range(6))]  # fmt: skip


def synthetic(accounts: int, months: int, candidates: int, seed_value: int = 7) -> tuple[TrainingSet, np.ndarray]:
    """Monthly observations with ``candidates`` candidate values each (see the module doc)."""
    rng = np.random.default_rng(seed_value)
    k = accounts * months
    account = np.repeat(np.arange(1, accounts + 1, dtype=np.int64), months)
    observed = np.datetime64("2025-01-31") + (np.tile(np.arange(months), accounts) * 30).astype("timedelta64[D]")
    engagement = (
        np.repeat(rng.normal(size=accounts), months)
        + np.cumsum(rng.normal(scale=0.25, size=(accounts, months)), axis=1).ravel()
    )
    values = np.empty((k, candidates), dtype=np.float64)
    for j in range(candidates):
        kind = j % 5
        if kind == 4:  # noise
            values[:, j] = rng.lognormal(1.0, 1.0, size=k)
        elif kind == 3 and j > 0:  # a near copy of the one before
            values[:, j] = values[:, j - 1] * rng.lognormal(0.0, 0.05, size=k)
        else:
            weight = rng.uniform(0.3, 1.2) * (1 if kind != 2 else -1)
            values[:, j] = rng.poisson(np.exp(1.5 + weight * engagement + rng.normal(scale=0.6, size=k)))
    values[rng.random(values.shape) < 0.1] = np.nan
    label = rng.random(k) < 1 / (1 + np.exp(2.6 + 1.2 * engagement))
    stage = rng.choice(3, size=k, p=[0.15, 0.65, 0.20]).astype(np.int8)
    m = len(ACTIVE.measures)
    active = np.clip(50 + 15 * engagement[:, None] + rng.normal(scale=25, size=(k, m)), 0, 100)
    data = TrainingSet(observed, account, stage, active, label, ACTIVE.measure_names)
    return data, values


def bench_fit(accounts: int, months: int, candidates: int) -> dict[str, Any]:
    data, values = synthetic(accounts, months, candidates)
    cands = candidate_measures(SOURCES, limit=candidates)
    assert len(cands) == candidates, len(cands)
    start, cpu = time.perf_counter(), time.process_time()
    validation, per_candidate, y, acct = _walk_forward(
        data, values, data.measure_scores, ACTIVE, cands, horizon_days=30, min_per_class=30, seed=0, draws=1000,
        folds=3,
    )  # fmt: skip
    walk = time.perf_counter() - start
    proposal = propose(values, data.stage, data.label, cands, min_per_class=30, seed=0)
    final = time.perf_counter() - start - walk
    judged = proposal.judged
    chosen = {c.measure.name for c in proposal.chosen}
    _ranking(cands, judged_all=judged, groups=proposal.groups, chosen=chosen, per_candidate=per_candidate, y=y,
             accounts=acct, seed=0)  # fmt: skip
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu
    comparison = validation["comparison"]
    return {
        "observations": data.size,
        "accounts": accounts,
        "candidates": candidates,
        "churned": int(np.count_nonzero(data.label)),
        "seconds": {"walk_forward": round(walk, 1), "final_proposal": round(final, 1),
                    "ranking": round(total - walk - final, 1), "total": round(total, 1), "cpu": round(cpu, 1)},
        "measures": len(proposal.chosen),
        "auc": {m: v["value"] for m, v in comparison["auc"].items()} if comparison else None,
        "verdict": validation["verdict"],
    }  # fmt: skip


def bench_db(pg_url: str, accounts: int, days: int, *, reuse: bool = False, existing: bool = False) -> dict[str, Any]:
    if existing:  # a suggestion only reads (but the default config version on a fresh database)
        url, seeded = pg_url, {"existing": pg_url}
    else:
        url, seeded = _seeded("postgresql", pg_url, RESULTS, accounts, days, reuse=reuse)
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            start = time.perf_counter()
            with factory.begin() as session:
                answer = suggest_config(session, as_of=AS_OF, cache_dir=Path(cache), today=AS_OF)
            runs.append({"seconds": round(time.perf_counter() - start, 1), "parts": answer["seconds"],
                         "cached": answer["data"]["cached"]})  # fmt: skip
    engine.dispose()
    comparison = answer["validation"]["comparison"]
    return {
        "accounts": accounts,
        "raw_days": days,
        "seed": seeded,
        "observations": answer["data"]["observations"],
        "candidates": answer["data"]["candidates"],
        "runs": runs,
        "auc": {m: v["value"] for m, v in comparison["auc"].items()} if comparison else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit-accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--accounts", type=int, default=20_000, help="Accounts of the PostgreSQL run.")
    parser.add_argument("--days", type=int, default=480, help="Days of raw history of the PostgreSQL run.")
    parser.add_argument("--skip-db", action="store_true", help="Measure the fit only.")
    parser.add_argument("--skip-fit", action="store_true", help="Measure the PostgreSQL run only.")
    parser.add_argument(
        "--existing", action="store_true", help="--pg-url is seeded already (by a --reuse run): use it as it is."
    )
    parser.add_argument(
        "--reuse", action="store_true", help="Start from a copy of the seeded database an earlier --reuse run kept."
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("HS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/hs_bench_suggestions"),
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    if not args.skip_fit:
        fit = results["fit"] = bench_fit(args.fit_accounts, args.months, args.candidates)
        print(
            f"fit: {fit['observations']:,} observations of {fit['accounts']:,} accounts x {fit['candidates']} "
            f"candidates ({fit['churned']:,} churned): {json.dumps(fit['seconds'])} (goal: whole suggestion < 120 s)"
        )
        verdict = fit["verdict"]["message"] if fit["verdict"] else ""
        print(f"  AUC {json.dumps(fit['auc'])}; {fit['measures']} measures; {verdict}")
    if not args.skip_db:
        db = results["db"] = bench_db(args.pg_url, args.accounts, args.days, reuse=args.reuse, existing=args.existing)
        first, second = db["runs"]
        print(
            f"PostgreSQL, {db['accounts']:,} accounts x {db['raw_days']} days: {db['observations']:,} observations, "
            f"{db['candidates']} candidates: first suggestion {first['seconds']} s {json.dumps(first['parts'])}, "
            f"second (cached: {second['cached']}) {second['seconds']} s (goal < 20 s)"
        )
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(f"peak memory {results['peak_rss_mib']} MiB; load average {results['load_average']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "suggestions.json").write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
