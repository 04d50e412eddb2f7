"""``python -m bench.external.run --accounts 3000 --out /tmp/ext``: the health score on data this
project did not generate (docs/benchmark-external.md).

1. Generates ChurnSim's social-network product with the ``fightchurn`` package (cached).
2. Loads it into a fresh instance of the service through the ingest API only.
3. Scores the monthly observation dates with ``flask score run --as-of``.
4. Reports test-period ROC AUC with 95% bootstrap intervals: the stored health score (the default
   config, and ``--config FILE`` when given) next to single 28-day event counts, active days in
   28 days and a logistic regression on the 28-day counts fitted on the training period.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.external import churnsim
from bench.external.dataset import Dataset, load_dataset
from bench.external.loader import account_records, external_id, outcome_records, usage_records
from bench.external.observations import Observations, build_observations, monthly_dates
from bench.external.report import evaluate, print_table
from bench.external.service import IngestTally, Service

DEFAULT_CACHE = Path.home() / ".cache" / "healthscore-bench" / "external"
MODES = ("replay", "backfill")


def _at_least(low: int) -> Callable[[str], int]:
    def check(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return value

    return check


def _json_file(text: str) -> Path:
    path = Path(text)
    try:
        json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"not a readable JSON file: {exc}") from None
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--accounts", type=_at_least(20), default=3_000, help="about this many accounts in total (default 3000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the simulator's random_seed (default 1)")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json, the log and SQLite files")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"generated data ({DEFAULT_CACHE})")
    parser.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="the PostgreSQL server the simulator writes to (a scratch database, dropped after)",
    )  # fmt: skip
    parser.add_argument(
        "--database-url", default=None,
        help="the service's database: a postgresql:// URL (a database per mode, named <db>_<mode>, recreated);"
        " default: a SQLite file per mode in --out",
    )  # fmt: skip
    parser.add_argument(
        "--mode", choices=(*MODES, "both"), default="both",
        help="replay: push each day's data as it happened, score each date as it comes (point in time);"
        " backfill: push everything, then score the past dates (default: both)",
    )  # fmt: skip
    parser.add_argument("--config", type=_json_file, default=None, help="a scoring config JSON to score too")
    parser.add_argument("--first-date", type=dt.date.fromisoformat, default=dt.date(2020, 2, 1))
    parser.add_argument("--split", type=dt.date.fromisoformat, default=dt.date(2020, 4, 1), help="test: dates on/after")
    parser.add_argument("--horizon", type=_at_least(1), default=30, help="churned within this many days (default 30)")
    parser.add_argument(
        "--min-tenure", type=_at_least(0), default=0, help="observe accounts this many days old or more"
    )
    parser.add_argument("--draws", type=_at_least(10), default=1_000, help="bootstrap draws (default 1000)")
    return parser.parse_args(argv)


def get_dataset(args: argparse.Namespace, timings: dict[str, float]) -> Dataset:
    cache = args.cache_dir / f"socialnet7-a{args.accounts}-s{args.seed}"
    started = time.perf_counter()
    if not churnsim.is_cached(cache):
        print(f"generating ChurnSim socialnet7 (~{args.accounts} accounts) into {cache} ...", flush=True)
        churnsim.generate(cache, accounts=args.accounts, seed=args.seed, pg_url=args.pg_url, log=args.out / "run.log")
        timings["generate"] = time.perf_counter() - started
    else:
        print(f"using the cached data in {cache}", flush=True)
        timings["generate"] = 0.0
    started = time.perf_counter()
    dataset = load_dataset(cache)
    timings["read_dataset"] = time.perf_counter() - started
    return dataset


def fresh_database(args: argparse.Namespace, mode: str) -> str:
    if args.database_url is None:
        path = (args.out / f"service-{mode}.db").resolve()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    url = sa.make_url(args.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{url.database}_{mode}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


class Loader:
    """Pushes the dataset through the ingest API, window by window, tallying what the API said."""

    def __init__(self, service: Service, dataset: Dataset) -> None:
        self.service, self.dataset = service, dataset
        self.tallies = {kind: IngestTally() for kind in ("accounts", "usage", "outcomes")}
        self.billing_term: bool | None = None  # unknown until the API has answered once
        self.billing_term_refusal: Any = None  # the API's message when it refused the field
        self.seconds = 0.0

    def push(self, after: dt.date | None, through: dt.date) -> None:
        started = time.perf_counter()
        self._push_accounts(through)
        self.service.ingest("usage", usage_records(self.dataset, after, through), self.tallies["usage"])
        self.service.ingest("outcomes", outcome_records(self.dataset, after, through), self.tallies["outcomes"])
        self.seconds += time.perf_counter() - started

    def _push_accounts(self, as_of: dt.date) -> None:
        records = account_records(self.dataset, as_of, billing_term=self.billing_term is not False)
        if self.billing_term is None:
            # Does this service take billing_term? Ask with one record before sending the rest.
            probe = IngestTally()
            self.service.ingest("accounts", records[:1], probe)
            refused = [e for e in probe.examples if "billing_term" in e.get("errors", {})]
            self.billing_term = not refused
            if refused:
                self.billing_term_refusal = refused[0]["errors"]["billing_term"]
                records = account_records(self.dataset, as_of, billing_term=False)
        self.service.ingest("accounts", records, self.tallies["accounts"])

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "billing_term_accepted": self.billing_term,
            "billing_term_refusal": self.billing_term_refusal,
            **{kind: vars(t) for kind, t in self.tallies.items()},
        }


def config_body(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return data if "config" in data else {"config": data, "comment": f"bench.external: {path.name}"}


Scores = dict[str, dict[tuple[str, dt.date], float | None]]  # arm -> (external id, day) -> score


def run_mode(mode: str, dataset: Dataset, dates: list[dt.date], args: argparse.Namespace) -> dict[str, Any]:
    """Load and score one service instance; the stored scores per arm, and what it took."""
    started = time.perf_counter()
    service = Service(fresh_database(args, mode), args.out / "run.log")
    arms: dict[str, int | None] = {"default config": service.active_version()}
    if args.config is not None:
        # Posted once the first data is in: the API checks a config against the portfolio (a
        # percentile mapping needs 20 accounts), as it would for an admin.
        arms[args.config.name] = None
    setup = time.perf_counter() - started
    loader = Loader(service, dataset)
    scores: Scores = {arm: {} for arm in arms}
    stages: dict[str, dict[tuple[str, dt.date], str]] = {arm: {} for arm in arms}
    score_seconds: list[float] = []

    def score_all(day: dt.date) -> None:
        for arm in list(arms):
            version = arms[arm]
            if version is None:
                version = service.add_config(config_body(args.config))
                arms[arm] = version
            if len(arms) > 1:
                service.activate(version)
            score_seconds.append(service.score(day))
            for ext, (score, stage, _) in service.stored_scores(day).items():
                scores[arm][(ext, day)] = score
                stages[arm][(ext, day)] = stage

    if mode == "replay":
        previous = None
        for day in dates:
            loader.push(previous, day)
            previous = day
            score_all(day)
        loader.push(previous, dataset.simulated_end)  # the rest, so the instance ends complete
    else:
        loader.push(None, dataset.simulated_end)
        for day in dates:
            score_all(day)
    service.close()
    print(
        f"  {mode}: loaded in {loader.seconds:.1f}s, {len(score_seconds)} scoring runs in {sum(score_seconds):.1f}s",
        flush=True,
    )
    return {
        "database": sa.make_url(service.database_url).render_as_string(hide_password=True),
        "config_versions": arms,
        "setup_seconds": round(setup, 1),
        "load": loader.summary(),
        "score_runs": len(score_seconds),
        "score_seconds": round(sum(score_seconds), 1),
        "score_seconds_per_run": [round(s, 1) for s in score_seconds],
        "scores": scores,
        "stages": stages,
    }


def observations_for(dataset: Dataset, args: argparse.Namespace) -> tuple[list[dt.date], Observations]:
    last = dataset.simulated_end - dt.timedelta(days=args.horizon)
    dates = monthly_dates(args.first_date, last)
    observations = build_observations(
        dataset.source_id, dataset.start, dataset.churn, dates,
        horizon_days=args.horizon, data_end=dataset.simulated_end, min_tenure_days=args.min_tenure,
    )  # fmt: skip
    return dates, observations


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    timings: dict[str, float] = {}
    dataset = get_dataset(args, timings)
    dates, observations = observations_for(dataset, args)
    print(
        f"{dataset.source_id.size} accounts, {len(dataset.event_types)} event types; observation dates "
        f"{', '.join(d.isoformat() for d in dates)}; split at {args.split}",
        flush=True,
    )
    modes = MODES if args.mode == "both" else (args.mode,)
    runs = {}
    for mode in modes:
        started = time.perf_counter()
        runs[mode] = run_mode(mode, dataset, dates, args)
        timings[mode] = time.perf_counter() - started
    started = time.perf_counter()
    ids = [external_id(dataset, row) for row in range(dataset.source_id.size)]
    results = evaluate(dataset, observations, ids, args.split, runs, draws=args.draws)
    timings["evaluate"] = time.perf_counter() - started
    timings["total"] = time.perf_counter() - total
    for run in runs.values():
        del run["scores"], run["stages"]
    report = {
        "dataset": dataset.meta,
        "parameters": {
            "observation_dates": [d.isoformat() for d in dates],
            "split": args.split.isoformat(),
            "horizon_days": args.horizon,
            "min_tenure_days": args.min_tenure,
            "bootstrap_draws": args.draws,
            "config_file": str(args.config) if args.config else None,
        },
        **results,
        "runs": runs,
        "timings_seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    (args.out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"results: {args.out / 'results.json'}")
    return report


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, ValueError, OSError) as exc:
        # A refused config, a failed flask command, an unreachable PostgreSQL: one readable line.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
