"""Events and plays cost: ``python -m bench.events_bench`` (``make bench-events``).

On demo data (100,000 accounts, 90 days of usage by default), each run in a process of its own:

1. *alone*: a config version without rules and every play disabled; day D-3 (warm-up), then D-2;
2. *with rules and plays*: the default config (all default rules) and the default play library;
   day D-1 (the first evaluation: every condition already true fires, the one-off flood of a new
   installation), then D (a steady-state daily run).

The goal of the events-and-plays issue compares the steady-state run (D) with the run alone (D-2):
at most 1.5 times. Results print and are written to ``bench/results/events.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app.db import make_engine
from app.models import PlayDefinition, ScoringConfigVersion
from app.services.plays import ensure_default_plays
from app.services.scoring_config import ensure_default_config
from bench.run_bench import AS_OF, RESULTS, fresh_database, seed
from scoring.model import default_config_dict


def _set_mode(url: str, *, with_rules: bool) -> None:
    engine = make_engine(url)
    with sessionmaker(bind=engine).begin() as session:
        ensure_default_config(session)
        ensure_default_plays(session)
        session.execute(sa.update(ScoringConfigVersion).values(active=False))
        config = default_config_dict()
        if not with_rules:
            config["rules"] = []
        version = (session.scalar(sa.select(sa.func.max(ScoringConfigVersion.version))) or 0) + 1
        comment = "bench: default rules" if with_rules else "bench: no rules"
        session.add(ScoringConfigVersion(version=version, config=config, author="bench", comment=comment, active=True))
        session.execute(sa.update(PlayDefinition).values(enabled=with_rules))
    engine.dispose()


def _score(url: str, day: dt.date) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.score_once", url, day.isoformat()]
    start = time.perf_counter()
    out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - start, 3)
    return result


def _counts(url: str, day: dt.date) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        events = conn.execute(sa.text("SELECT count(*) FROM events WHERE day = :d"), {"d": day}).scalar_one()
        runs = conn.execute(sa.text("SELECT count(*) FROM play_runs WHERE started_on = :d"), {"d": day}).scalar_one()
    engine.dispose()
    return {"events": int(events), "play_runs": int(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/hs_bench_events")
    args = parser.parse_args()

    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "runs": []}
    with tempfile.TemporaryDirectory(prefix="hs-bench-events-") as tmp:
        for backend in args.backends.split(","):
            url = fresh_database(backend, args.pg_url, Path(tmp), args.size)
            seeded = seed(url, args.size, args.days)
            _set_mode(url, with_rules=False)
            _score(url, AS_OF - dt.timedelta(days=3))
            alone = _score(url, AS_OF - dt.timedelta(days=2))
            _set_mode(url, with_rules=True)
            first = _score(url, AS_OF - dt.timedelta(days=1))
            first_counts = _counts(url, AS_OF - dt.timedelta(days=1))
            steady = _score(url, AS_OF)
            steady_counts = _counts(url, AS_OF)
            ratio = steady["run_seconds"] / alone["run_seconds"]
            row = {
                "backend": backend,
                "accounts": args.size,
                **seeded,
                "alone": alone,
                "first_evaluation": {**first, **first_counts},
                "steady": {**steady, **steady_counts},
                "ratio_steady_to_alone": round(ratio, 2),
                "ratio_first_to_alone": round(first["run_seconds"] / alone["run_seconds"], 2),
            }
            report["runs"].append(row)
            print(
                f"{backend:10} {args.size:,} accounts: alone {alone['run_seconds']}s; with rules and plays "
                f"{steady['run_seconds']}s ({steady_counts['events']:,} events, {steady_counts['play_runs']:,} "
                f"play runs) = {ratio:.2f}x; first evaluation {first['run_seconds']}s "
                f"({first_counts['events']:,} events, {first_counts['play_runs']:,} play runs); "
                f"steps alone {alone['steps']}, steady {steady['steps']}",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "events.json").write_text(json.dumps(report, indent=2))
    print(f"written to {RESULTS / 'events.json'}")


if __name__ == "__main__":
    main()
