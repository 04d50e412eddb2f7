"""``python -m bench.predictive --out DIR``: does what the service learns from outcomes predict
churn on data this project did not make? (docs/benchmark-predictive.md)

For each dataset (CDNOW, ChurnSim's crm6, IBM Telco): load it into a fresh instance through the
ingest API, score every observation date, run the service's suggestions and churn-model training
as of a cut date, score the later dates with the default and the suggested config, and report the
later period's ROC AUCs with bootstrap-by-account intervals next to the best single candidate and
a plain logistic regression, both fitted on the earlier period.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.predictive import cdnow, crm, harness, telco
from bench.predictive.evaluate import evaluate
from bench.predictive.panel import Panel

DATASETS = ("cdnow", "crm6", "telco")
CACHE = Path.home() / ".cache" / "healthscore-bench"


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}" if high else f"must be at least {low}")
        return value

    return check


def _datasets(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DATASETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown dataset(s) {unknown or [text]}: choose from {', '.join(DATASETS)}")
    return list(dict.fromkeys(names))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json, the log and SQLite files")
    parser.add_argument(
        "--datasets", type=_datasets, default=list(DATASETS), help=f"comma-separated, of {','.join(DATASETS)} (all)"
    )
    parser.add_argument("--cache-dir", type=Path, default=CACHE / "predictive", help="downloaded data (%(default)s)")
    parser.add_argument(
        "--churnsim-cache", type=Path, default=CACHE / "external",
        help="ChurnSim's virtualenv and generated data, shared with bench.external (%(default)s)",
    )  # fmt: skip
    parser.add_argument("--cdnow-accounts", type=_bounded(200, 23_570), default=5_000, help="sampled (5000)")
    parser.add_argument("--crm-accounts", type=_bounded(100, 100_000), default=600, help="about this many (600)")
    parser.add_argument("--crm-months", type=_bounded(9, 24), default=12, help="simulated months (12)")
    parser.add_argument(
        "--crm-parallel", type=_bounded(1, 16), default=3, help="simulator processes when generating (3)"
    )
    parser.add_argument(
        "--crm-churn", choices=sorted(crm.CHURN_VARIANTS), default="causal",
        help="crm6's churn: from the simulated utility (causal, the default) or as shipped (2 %% a month at random)",
    )  # fmt: skip
    parser.add_argument("--telco-accounts", type=_bounded(200, 7_043), default=7_043, help="sampled (all 7043)")
    parser.add_argument("--seed", type=int, default=1, help="samples, splits and the simulator's seed (1)")
    parser.add_argument("--draws", type=_bounded(10, 100_000), default=1_000, help="bootstrap draws (1000)")
    parser.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="the PostgreSQL server ChurnSim writes to (a scratch database, dropped after)",
    )  # fmt: skip
    parser.add_argument(
        "--database-url", default=None,
        help="the service's database: a postgresql:// URL (a database per dataset, named <db>_<dataset>,"
        " recreated); default: a SQLite file per dataset in --out",
    )  # fmt: skip
    return parser.parse_args(argv)


def load_panel(name: str, args: argparse.Namespace, log: Path) -> tuple[Panel, float]:
    """The dataset's panel, and the seconds spent generating it (0 when cached)."""
    if name == "cdnow":
        return cdnow.load(args.cache_dir / "cdnow", log, accounts=args.cdnow_accounts, seed=args.seed), 0.0
    if name == "telco":
        return telco.load(args.cache_dir / "telco", log, accounts=args.telco_accounts, seed=args.seed), 0.0
    return crm.load(
        args.churnsim_cache,
        log,
        accounts=args.crm_accounts,
        seed=args.seed,
        months=args.crm_months,
        pg_url=args.pg_url,
        parallel=args.crm_parallel,
        churn=args.crm_churn,
    )


def _commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def print_table(report: dict[str, Any]) -> None:
    for name, result in report["datasets"].items():
        counts = result["observations"]
        print(
            f"\n{name}: later period {counts['later']} observations of {counts['later_accounts']} accounts,"
            f" {counts['later_churned']} churned; earlier period {counts['earlier']}"
            f" ({counts['earlier_churned']} churned)"
        )
        print(f"  {'method (later period)':<62} {'ROC AUC':>8}  {'95% interval':<13} {'earlier':>7}")
        for figure in result["figures"]:
            if figure.get("auc") is None:
                print(f"  {figure['method']:<62} {'-':>8}  {figure.get('note', '')}")
                continue
            earlier = "" if figure.get("earlier_auc") is None else f"{figure['earlier_auc']:.3f}"
            interval = f"{figure['low']:.3f}-{figure['high']:.3f}"
            print(f"  {figure['method']:<62} {figure['auc']:>8.3f}  {interval:<13} {earlier:>7}")
        print("  goals: " + ", ".join(f"{k} {v}" for k, v in result["goals"].items()))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "run.log"
    total = time.perf_counter()
    report: dict[str, Any] = {
        "commit": _commit(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "datasets": {},
    }
    for name in args.datasets:
        started = time.perf_counter()
        panel, generated = load_panel(name, args, log)
        read = time.perf_counter() - started - generated
        print(
            f"{name}: {len(panel.ids)} accounts; dates {', '.join(d.isoformat() for d in panel.dates)};"
            f" cut {panel.cut}; horizon {panel.horizon} days",
            flush=True,
        )
        stored, summary = harness.run(panel, args, log)
        started_eval = time.perf_counter()
        result = evaluate(panel, stored, draws=args.draws)
        report["datasets"][name] = {
            "data": panel.meta,
            "observation_dates": [d.isoformat() for d in panel.dates],
            "cut": panel.cut.isoformat(),
            "horizon_days": panel.horizon,
            **result,
            "service": summary,
            "seconds": {
                "generate": round(generated, 1),
                "read": round(read, 1),
                "service": summary["seconds"],
                "evaluate": round(time.perf_counter() - started_eval, 1),
            },
        }
        (args.out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    report["seconds"] = round(time.perf_counter() - total, 1)
    (args.out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"\n{report['seconds']:.0f} s in all; results: {args.out / 'results.json'}")
    return report


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, ValueError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
