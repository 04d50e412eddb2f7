"""The foundation's speed figures: ``python -m bench.run_bench`` (``make bench``).

1. The pure core: stages and health for 1,000,000 accounts (median of 5; peak allocation).
2. The whole scoring run, each in a fresh process, on demo data with 90 days of usage, at
   several portfolio sizes on SQLite and PostgreSQL: run time, whole-process time, peak RSS.
3. The naive run (ORM objects, queries per account) at 10,000 accounts, as a ratio.

Results print as a table and are written to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app import migrate
from app.db import make_engine
from app.demo.seed import seed_demo
from config import normalize_database_url
from scoring.health import compute_health
from scoring.model import default_config_dict, model_from_dict
from scoring.stage import assign_stages

AS_OF = dt.date(2026, 6, 30)
RESULTS = Path(__file__).resolve().parent / "results"


def bench_core(n: int = 1_000_000, repeats: int = 5) -> dict[str, Any]:
    model = model_from_dict(default_config_dict())
    rng = np.random.default_rng(1)
    m = len(model.measures)
    raw = rng.uniform(-60, 120, (m, n))
    raw[rng.random((m, n)) < 0.1] = np.nan
    day = np.datetime64(AS_OF, "D")
    contract_start = day - rng.integers(0, 1500, n).astype("timedelta64[D]")
    renewal = day + rng.integers(-10, 400, n).astype("timedelta64[D]")
    first_value = np.where(rng.random(n) < 0.5, contract_start + 30, np.datetime64("NaT"))

    def once() -> None:
        stage = assign_stages(AS_OF, contract_start, renewal, first_value, model.stage_rules)
        compute_health(raw, stage, model)

    once()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    once()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "accounts": n,
        "median_seconds": round(statistics.median(times), 4),
        "min_seconds": round(min(times), 4),
        "peak_alloc_mib": round(peak / 2**20, 1),
    }


def fresh_database(backend: str, pg_url: str, workdir: Path, size: int) -> str:
    if backend == "sqlite":
        path = workdir / f"bench-{size}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    url = sa.make_url(normalize_database_url(pg_url))
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


def seed(url: str, size: int, days: int) -> dict[str, Any]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    start = time.perf_counter()
    with sessionmaker(bind=engine).begin() as session:
        summary = seed_demo(session, accounts=size, days=days, seed=7, as_of=AS_OF)
    seconds = time.perf_counter() - start
    # Fresh statistics, as autovacuum / a maintenance ANALYZE would give a production database.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    with engine.connect() as conn:
        usage_rows = conn.execute(sa.text("SELECT count(*) FROM daily_usage")).scalar_one()
    engine.dispose()
    return {"seed_seconds": round(seconds, 1), "usage_rows": usage_rows, "summary": summary.one_line()}


def score_in_process(url: str, naive: bool = False) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.score_once", url, AS_OF.isoformat()] + (["--naive"] if naive else [])
    start = time.perf_counter()
    out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - start, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core-only", action="store_true", help="Only the pure-core benchmark.")
    parser.add_argument("--sizes", default="10000,100000,300000", help="Portfolio sizes (comma-separated).")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--days", type=int, default=90, help="Days of daily usage per account.")
    parser.add_argument("--naive-size", type=int, default=10_000, help="0 to skip the naive comparison.")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/hs_bench",
        help="A database the benchmark may drop and recreate.",
    )
    args = parser.parse_args()

    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    core = bench_core()
    report["core"] = core
    print(
        f"core: {core['accounts']:,} accounts in {core['median_seconds']}s median "
        f"(min {core['min_seconds']}s), peak allocation {core['peak_alloc_mib']} MiB",
        flush=True,
    )
    if not args.core_only:
        report["runs"] = []
        sizes = sorted(int(s) for s in args.sizes.split(","))
        with tempfile.TemporaryDirectory(prefix="hs-bench-") as tmp:
            for backend in args.backends.split(","):
                for size in sizes:
                    url = fresh_database(backend, args.pg_url, Path(tmp), size)
                    seeded = seed(url, size, args.days)
                    first = score_in_process(url)
                    rerun = score_in_process(url)
                    row: dict[str, Any] = {
                        "backend": backend,
                        "accounts": size,
                        **seeded,
                        "first_run": first,
                        "rerun": rerun,
                    }
                    print(
                        f"{backend:10} {size:>8,} accounts ({seeded['usage_rows']:,} usage rows, seeded in "
                        f"{seeded['seed_seconds']}s): run {first['run_seconds']}s, whole process "
                        f"{first['wall_seconds']}s, peak RSS {first['peak_rss_mib']} MiB; re-run "
                        f"{rerun['run_seconds']}s; steps {first['steps']}",
                        flush=True,
                    )
                    if size == args.naive_size:
                        naive = score_in_process(url, naive=True)
                        row["naive"] = naive
                        ratio = naive["run_seconds"] / first["run_seconds"]
                        row["naive_ratio"] = round(ratio, 1)
                        print(
                            f"{backend:10} {size:>8,} naive (ORM, queries per account): run "
                            f"{naive['run_seconds']}s, whole process {naive['wall_seconds']}s: "
                            f"the real run is {ratio:.1f}x faster",
                            flush=True,
                        )
                    report["runs"].append(row)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    print(f"written to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
