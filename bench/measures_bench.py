"""The measure language's cost: ``python -m bench.measures_bench`` (``make bench-measures``).

On demo data (100,000 accounts, 90 days of usage by default), in one process per backend:

1. Days D-2 and D-1 are scored and committed with the default config (the first evaluation and
   a steady day), then ``VACUUM ANALYZE``, as autovacuum would after such writes.
2. Day D is scored again and again, rolled back each time, alternating the default config (the
   11 measures of the first configs, written in the language) and a 30-measure config (the 11,
   10 more from product signals over 7-, 28- and 90-day windows, and 9 from usage, tickets,
   feedback, licenses and account fields), rules, plays and alerts on in both: a steady-state
   daily run. ``--rounds`` rounds (at least 5), each one run of each, in alternating order.

Reported per config: the whole run and the measures step, median, min and max over the rounds;
the ratio 30/11 of the run per round (median, min, max); the process's peak RSS. The measures
issue wants the 30-measure run at most 1.5x the 11-measure run, and peak memory under 1 GiB.

``--reuse`` (PostgreSQL) starts from a copy of a seeded database kept by an earlier ``--reuse``
run (see bench/events_bench.py). Results print and are written to ``bench/results/measures.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine
from app.models import ScoringConfigVersion
from app.pipeline import run as scoring
from app.services.scoring_config.active import ensure_default_config
from bench.events_bench import _seeded
from bench.events_bench import _timed as events_timed
from bench.run_bench import AS_OF, RESULTS
from scoring.model import ScoringModel, default_config_dict, model_from_dict

_SIGNAL_MEASURES = [
    ("report_views_7d", "signal.report_viewed", "sum", 7, {}),
    ("report_views_28d", "signal.report_viewed", "sum", 28, {}),
    ("report_views_90d", "signal.report_viewed", "sum", 90, {}),
    ("report_views_per_user_28d", "signal.report_viewed", "sum", 28, {"per": "active_user"}),
    ("exports_28d", "signal.data_export", "sum", 28, {"direction": "lower_is_better"}),
    ("exports_change_28d", "signal.data_export", "sum", 28, {"form": "change_pct", "direction": "lower_is_better"}),
    ("days_since_admin_change", "signal.admin_changed", "max", 90, {"form": "days_since"}),
    ("business_reviews_90d", "signal.business_review", "count", 90, {}),
    ("module_days_90d", "signal.module_adopted", "active_days", 90, {}),
    ("days_since_setup", "signal.setup_completed", "max", 90, {"form": "days_since"}),
]
_OTHER_MEASURES = [
    ("login_days_28d", "usage.logins", "active_days", 28, {}),
    ("active_per_seat_7d", "usage.active_users", "mean", 7, {"per": "seat"}),
    ("key_use_change_7d", "usage.key_feature_uses", "sum", 7, {"form": "change_diff"}),
    ("tickets_opened_90d", "tickets.opened", "sum", 90, {"direction": "lower_is_better"}),
    ("days_to_close_90d", "tickets.days_to_close", "mean", 90, {"direction": "lower_is_better"}),
    ("nps_responses_180d", "feedback.nps", "count", 180, {}),
    ("seats_assigned_share", "license.assigned", "latest", None, {"per": "licensed_seat"}),
    ("tenure_days", "account.tenure_days", "latest", None, {"transform": "log1p"}),
    ("days_to_renewal", "account.days_to_renewal", "latest", None, {}),
]


def thirty_measure_config() -> dict[str, Any]:
    """The default config plus 19 measures: 30 in all, 10 of them from product signals."""
    data = default_config_dict()
    for name, source, aggregate, window, extra in _SIGNAL_MEASURES + _OTHER_MEASURES:
        measure: dict[str, Any] = {
            "name": name,
            "label": name.replace("_", " "),
            "group": "product" if source.startswith("signal.") else "adoption",
            "source": source,
            "aggregate": aggregate,
            "direction": "higher_is_better",
            "missing": "zero" if source.startswith("signal.") else "skip",
            "mapping": "percentile",
            **extra,
        }
        if window is not None:
            measure["window_days"] = window
        data["measures"].append(measure)
        for stage in data["weights"].values():
            stage[name] = 5
    return data


def _timed(factory: sessionmaker[Session], day: dt.date, *, commit: bool) -> dict[str, Any]:
    """One run (``bench.events_bench._timed``), with its measures step's seconds."""
    result = events_timed(factory, day, commit=commit)
    return {**result, "measures_seconds": result["steps"]["measures"]}


def _use(version: int, model: ScoringModel) -> None:
    scoring.get_active_model = lambda _session: (version, model)  # type: ignore[assignment]


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": min(values), "max": max(values)}


def _bench_backend(url: str, rounds: int) -> dict[str, Any]:
    engine = make_engine(url)
    factory = sessionmaker(bind=engine)
    real = scoring.get_active_model
    with factory.begin() as session:
        default_version = ensure_default_config(session).version
        version = (session.scalar(sa.select(sa.func.max(ScoringConfigVersion.version))) or 0) + 1
        config = model_from_dict(thirty_measure_config())
        session.add(ScoringConfigVersion(version=version, config=config.to_dict(), author="bench", active=False))
    models = {"11": (default_version, model_from_dict(default_config_dict())), "30": (version, config)}
    try:
        first = _timed(factory, AS_OF - dt.timedelta(days=2), commit=True)
        _timed(factory, AS_OF - dt.timedelta(days=1), commit=True)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
        runs: dict[str, list[dict[str, Any]]] = {"11": [], "30": []}
        for i in range(rounds):
            for key in ("11", "30") if i % 2 == 0 else ("30", "11"):
                _use(*models[key])
                runs[key].append(_timed(factory, AS_OF, commit=False))
    finally:
        scoring.get_active_model = real  # type: ignore[assignment]
        engine.dispose()
    ratios = [b["run_seconds"] / a["run_seconds"] for a, b in zip(runs["11"], runs["30"], strict=True)]
    return {
        "first_evaluation_seconds": first["run_seconds"],
        "measures_11": {
            "run": _spread([r["run_seconds"] for r in runs["11"]]),
            "measures_step": _spread([r["measures_seconds"] for r in runs["11"]]),
        },
        "measures_30": {
            "run": _spread([r["run_seconds"] for r in runs["30"]]),
            "measures_step": _spread([r["measures_seconds"] for r in runs["30"]]),
        },
        "ratio_30_over_11": {k: round(v, 3) for k, v in _spread(ratios).items()},
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/hs_bench_measures")
    parser.add_argument("--reuse", action="store_true", help="PostgreSQL: start from a kept seeded copy.")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5: a ratio from fewer rounds is a lucky draw")
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "results": []}
    with tempfile.TemporaryDirectory(prefix="hs-bench-measures-") as tmp:
        for backend in args.backends.split(","):
            url, seeded = _seeded(backend, args.pg_url, Path(tmp), args.size, args.days, reuse=args.reuse)
            row = {"backend": backend, "accounts": args.size, **seeded, **_bench_backend(url, args.rounds)}
            row["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            report["results"].append(row)
            eleven, thirty, ratio = row["measures_11"], row["measures_30"], row["ratio_30_over_11"]
            print(
                f"{backend:10} {args.size:,} accounts, {args.rounds} rounds: 11 measures run "
                f"{eleven['run']['median']}s (min {eleven['run']['min']}, max {eleven['run']['max']}; measures step "
                f"{eleven['measures_step']['median']}s), 30 measures run {thirty['run']['median']}s (min "
                f"{thirty['run']['min']}, max {thirty['run']['max']}; measures step "
                f"{thirty['measures_step']['median']}s); ratio per round median {ratio['median']} "
                f"(min {ratio['min']}, max {ratio['max']}); peak RSS so far {row['peak_rss_mib']} MiB",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "measures.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"written to {RESULTS / 'measures.json'}")


if __name__ == "__main__":
    main()
