"""SQL-source pull speed: ``python -m bench.sql_source_bench`` (``make bench-sources``).

Builds a PostgreSQL "warehouse" database with 1,000,000 daily-usage rows (10,000 accounts x 100
days), a fresh service database with the accounts, then pulls the usage through ``SqlSource`` in
a process of its own and reports seconds, rows per second and the process's peak memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app import migrate
from app.db import make_engine
from app.services.ingest.records import ingest_records
from bench.run_bench import fresh_database

ROOT = Path(__file__).resolve().parent.parent
QUERY = (
    "SELECT account, day, active_users, logins, key_feature_uses FROM usage_daily "
    "WHERE updated_at > :since AND day <= :as_of"
)


def pull_once(service_url: str, warehouse_url: str) -> None:
    """In the child process: one pull, then a JSON line with the figures."""
    from app.services.ingest.pull import pull_source
    from app.sources.sql import SqlSource
    from bench.score_once import peak_rss_mib

    engine = make_engine(service_url)
    source = SqlSource("warehouse", warehouse_url, {"usage": QUERY})
    start = time.perf_counter()
    with sessionmaker(bind=engine).begin() as session:
        summary = pull_source(session, source, now=dt.datetime.now(dt.UTC))
    seconds = time.perf_counter() - start
    print(json.dumps({"landed": summary.total_landed, "seconds": round(seconds, 2), "peak_rss_mib": peak_rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/hs_bench_service")
    parser.add_argument("--warehouse-url", default="postgresql://postgres@127.0.0.1:5432/hs_bench_warehouse")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pull_once(*args.child)
        return

    warehouse = fresh_database("postgresql", args.warehouse_url, Path("/tmp"), 0)
    with sa.create_engine(warehouse).begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE usage_daily AS SELECT 'acct-' || lpad(a::text, 6, '0') AS account,"
            " date '2026-01-01' + d AS day, (a * 7 + d) % 40 AS active_users, (a * 3 + d) % 70 AS logins,"
            " (a + d) % 9 AS key_feature_uses, now() AS updated_at"
            " FROM generate_series(0, :accounts - 1) a, generate_series(0, :days - 1) d"
        ), {"accounts": args.accounts, "days": args.days})  # fmt: skip
    service = fresh_database("postgresql", args.pg_url, Path("/tmp"), 0)
    engine = make_engine(service)
    migrate.upgrade(engine)
    accounts = [
        {"external_id": f"acct-{i:06d}", "name": f"Account {i}", "contract_start": "2025-01-01"}
        for i in range(args.accounts)
    ]
    with sessionmaker(bind=engine).begin() as session:
        ingest_records(session, kind="accounts", records=accounts, source="bench")
    engine.dispose()
    out = subprocess.run(
        [sys.executable, "-m", "bench.sql_source_bench", "--child", service, warehouse],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"SQL source: {result['landed']:,} daily-usage rows pulled from PostgreSQL into PostgreSQL in "
        f"{result['seconds']}s ({result['landed'] / result['seconds']:,.0f} rows/s), "
        f"peak RSS {result['peak_rss_mib']} MiB"
    )


if __name__ == "__main__":
    main()
