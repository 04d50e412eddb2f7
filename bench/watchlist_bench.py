"""Watchlist speed: ``python -m bench.watchlist_bench`` (``make bench-watchlist``).

1. Builds a PostgreSQL database (``hs_bench_watchlist``, dropped and recreated) with the demo
   data of ``bench.run_bench.seed`` (100,000 accounts, 90 days of usage), scores the last day
   for real (latest scores, events, play runs and tasks from the default rules and plays), then
   writes 89 more days of *synthetic* score history in one ``INSERT ... SELECT`` from that day:
   each account's score drifts linearly back in time by a per-account slope (band recomputed from
   the default cut-offs), and the 7- and 30-day changes of the latest scores are set from that
   history. Scoring 90 real days would take 90 scoring runs (about 10 minutes); the watchlist
   never reads history, so synthetic rows test what matters (the table's size). It also adds 500
   live pins, 100 expired or removed ones, and 300 band overrides, then ``VACUUM ANALYZE``.
2. Creates an admin token, starts gunicorn (2 sync workers, the shipped ``gunicorn.conf.py``) on
   127.0.0.1 with the product's ``wsgi:app``, and loads ``GET /api/v1/watchlist`` (the default
   page: 50 rows, sort by ARR) with ``wrk`` (8 connections, 2 threads, 30 s, ``--latency``).
3. Starts the product a second time with its page cache off (``HS_WATCHLIST_CACHE_ENTRIES=0``: what
   every request costs when the data changes between any two, and on SQLite), loaded alike.
4. With ``--write-every S`` (1 s by default) the cached product is loaded once more while another
   connection pins or unpins the page's first account every S seconds (each worker then reads the
   page again once), and the last change must show on the page afterwards.
5. Starts the same gunicorn set-up on a *bare* Flask app (``create_bare_app`` below, never part
   of the product): one route, no auth, one plain SQL query returning the same 50 accounts (by id,
   joined to their latest score) as JSON; loads it with the same ``wrk`` command.

Prints each: requests/s, latency percentiles, errors (non-2xx and socket errors), and the ratios.
The goal (issue 6): no errors, p99 under 25 ms, watchlist at least 60 % of the bare req/s. The
ratio is taken like for like (the bare endpoint reads the database on every request, so the
product with its page cache off), per round, as median, min and max over the rounds (5 by
default); the cached page's ratio is printed beside it, and the p99 is the worst round's and the
median round's.
``--reuse`` skips step 1 when the database exists (from an earlier run; it is migrated to the
current schema). ``--rounds N`` keeps the servers up and alternates the loads N times, reporting
the round of median ratio (and every round): on a shared 2-core machine one 30 s load after the
other drifts by 20 % or more.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/hs_bench_watchlist"
HISTORY_DAYS = 90


# --- step 1: the database ------------------------------------------------------------------------------


def build_database(url: str, accounts: int, usage_days: int) -> dict[str, Any]:
    from app.db import make_engine
    from app.pipeline.run import run_scoring
    from bench.run_bench import AS_OF, fresh_database, seed

    timings: dict[str, Any] = {}
    start = time.perf_counter()
    url = fresh_database("postgresql", url, Path("/tmp"), accounts)
    timings["seed"] = seed(url, accounts, usage_days)
    engine = make_engine(url)
    clock = time.perf_counter()
    with sessionmaker(bind=engine).begin() as session:
        summary = run_scoring(session, as_of=AS_OF)
    timings["score_seconds"] = round(time.perf_counter() - clock, 1)
    timings["scored"] = summary.accounts_scored
    clock = time.perf_counter()
    with engine.begin() as conn:
        _synthetic_history(conn, AS_OF)
    timings["history_seconds"] = round(time.perf_counter() - clock, 1)
    with engine.begin() as conn:
        _pins_and_overrides(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
        timings["history_rows"] = conn.execute(sa.text("SELECT count(*) FROM health_scores")).scalar_one()
        timings["play_runs_open_watchlist"] = conn.execute(
            sa.text("SELECT count(*) FROM play_runs WHERE status = 'open' AND watchlist")
        ).scalar_one()
    engine.dispose()
    timings["total_seconds"] = round(time.perf_counter() - start, 1)
    return timings


def _synthetic_history(conn: sa.Connection, as_of: dt.date) -> None:
    """89 days before ``as_of`` from the scored day: score + slope * days back, clamped to 0-100."""
    slope = "((h.account_id * 37) % 11 - 5) * 0.3"
    score = f"LEAST(100.0, GREATEST(0.0, h.score + {slope} * g.n))"
    conn.execute(
        sa.text(
            f"""
            INSERT INTO health_scores
                (account_id, day, config_version, stage, score, band, completeness, measure_values)
            SELECT h.account_id, h.day - g.n, h.config_version, h.stage, {score},
                   CASE WHEN h.score IS NULL THEN NULL
                        WHEN {score} >= 70 THEN 'good' WHEN {score} < 40 THEN 'poor' ELSE 'average' END,
                   h.completeness, h.measure_values
            FROM health_scores h CROSS JOIN generate_series(1, :back) AS g(n)
            WHERE h.day = :day
            """
        ),
        {"day": as_of, "back": HISTORY_DAYS - 1},
    )
    conn.execute(
        sa.text(
            """
            UPDATE latest_scores l
            SET score_change_7d = l.score - w.score, score_change_30d = l.score - m.score
            FROM health_scores w, health_scores m
            WHERE w.account_id = l.account_id AND w.day = :week
              AND m.account_id = l.account_id AND m.day = :month
            """
        ),
        {"week": as_of - dt.timedelta(days=7), "month": as_of - dt.timedelta(days=30)},
    )


def _pins_and_overrides(conn: sa.Connection) -> None:
    now = dt.datetime.now(dt.UTC)
    conn.execute(
        sa.text(
            """
            INSERT INTO watchlist_pins (account_id, reason, author, created_at, expires_at, removed_at, removed_by)
            SELECT id, 'bench pin', 'bench', :now,
                   CASE WHEN id % 3 = 0 THEN :later END, NULL, NULL
            FROM accounts WHERE id % 200 = 7
            """
        ),
        {"now": now, "later": now + dt.timedelta(days=30)},
    )
    conn.execute(
        sa.text(
            """
            INSERT INTO watchlist_pins (account_id, reason, author, created_at, expires_at, removed_at, removed_by)
            SELECT id, 'bench ended pin', 'bench', :now, CASE WHEN id % 2 = 0 THEN :past END,
                   CASE WHEN id % 2 = 1 THEN :now END, CASE WHEN id % 2 = 1 THEN 'bench' END
            FROM accounts WHERE id % 1000 = 11
            """
        ),
        {"now": now, "past": now - dt.timedelta(days=1)},
    )
    conn.execute(
        sa.text(
            """
            INSERT INTO band_overrides (account_id, band, reason, author, created_at, expires_at)
            SELECT id, CASE WHEN id % 2 = 0 THEN 'good' ELSE 'poor' END, 'bench override', 'bench', :now, :later
            FROM accounts WHERE id % 333 = 5
            """
        ),
        {"now": now, "later": now + dt.timedelta(days=60)},
    )


#: The index the default sort needs (ARR, largest first): without it every page reads and sorts
#: all accounts (about 100 ms at 100k). Migration 0008 creates it; this keeps older bench databases usable.
ARR_INDEX = "CREATE INDEX IF NOT EXISTS ix_accounts_arr_id ON accounts (arr, id)"


def ensure_index(url: str) -> None:
    """A reused database brought to the current schema (migrations), with the sort's index."""
    from app import migrate
    from app.db import make_engine

    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(ARR_INDEX))
        conn.execute(sa.text("ANALYZE accounts"))
    engine.dispose()


def create_token(url: str) -> str:
    from app.auth import create_token as make
    from app.db import make_engine
    from app.models import Role

    engine = make_engine(url)
    with sessionmaker(bind=engine).begin() as session:
        _, token = make(session, f"bench-{time.time_ns()}", Role.ADMIN, description="watchlist bench")
    engine.dispose()
    return token


# --- step 3: the bare endpoint (a separate WSGI app, only in this benchmark) -------------------------------

BARE_SQL = """
SELECT a.id, a.name, a.owner, a.segment, a.arr, a.renewal_date, l.score, l.band, l.stage,
       l.completeness, l.score_change_7d, l.score_change_30d, l.config_version, l.measure_values
FROM accounts a JOIN latest_scores l ON l.account_id = a.id
WHERE a.id = ANY(:ids)
ORDER BY a.arr DESC, a.id
"""


def create_bare_app() -> Any:
    """gunicorn 'bench.watchlist_bench:create_bare_app()': the 50 rows of ``HS_BENCH_IDS`` by one plain query."""
    from flask import Flask, jsonify

    from app.db import make_engine
    from config import normalize_database_url

    app = Flask("bare")
    engine = make_engine(normalize_database_url(os.environ["DATABASE_URL"]))
    ids = [int(i) for i in os.environ["HS_BENCH_IDS"].split(",")]
    statement = sa.text(BARE_SQL)

    @app.get("/bare")
    def bare() -> Any:
        with engine.connect() as conn:
            rows = conn.execute(statement, {"ids": ids}).mappings().all()
        return jsonify({"items": [dict(row) for row in rows]})

    return app


# --- step 2 and 3: gunicorn and wrk -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The settings production runs with (see README): both apps get them, so the comparison is fair.
GUNICORN_CONF = ROOT / "gunicorn.conf.py"


def start_gunicorn(target: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "-w", "2", "-k", "sync",
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", target],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError(f"gunicorn {target} did not start") from None
            time.sleep(0.2)


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def get_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(url: str, token: str | None, *, duration: int, connections: int, threads: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if token:
        args[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "latency_ms": {
            p: _ms(value) for p, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, flags=re.MULTILINE)
        },
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
        "socket_errors": sum(int(n) for n in m.groups())
        if (m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out))
        else 0,
    }
    result["errors"] = result["non_2xx"] + result["socket_errors"]
    return result


def load_both(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both servers up at once (an idle one costs nothing); ``args.rounds`` rounds of the watchlist
    load then the bare load, so a drift of the machine's load hits both alike. The result is the
    round of median ratio, with every round's figures."""
    from config import normalize_database_url

    token = create_token(url)
    env = {**os.environ, "DATABASE_URL": normalize_database_url(url), "HS_LOG_LEVEL": "WARNING"}
    wrk_options = {"duration": args.duration, "connections": args.connections, "threads": args.threads}
    servers = []
    try:
        server, port = start_gunicorn("wsgi:app", env)
        servers.append(server)
        page = get_json(f"http://127.0.0.1:{port}/api/v1/watchlist", token)
        ids = [item["account_id"] for item in page["items"]]
        bare_server, bare_port = start_gunicorn(
            "bench.watchlist_bench:create_bare_app()", {**env, "HS_BENCH_IDS": ",".join(map(str, ids))}
        )
        servers.append(bare_server)
        bare_rows = get_json(f"http://127.0.0.1:{bare_port}/bare")["items"]
        if [row["id"] for row in bare_rows] != ids:
            raise RuntimeError("the bare endpoint does not return the watchlist's rows")
        # The product with its page cache off: what every request costs when the data changes
        # between any two of them (the first read after a write, or SQLite).
        cold_server, cold_port = start_gunicorn("wsgi:app", {**env, "HS_WATCHLIST_CACHE_ENTRIES": "0"})
        servers.append(cold_server)
        if [i["account_id"] for i in get_json(f"http://127.0.0.1:{cold_port}/api/v1/watchlist", token)["items"]] != ids:
            raise RuntimeError("the uncached watchlist does not return the cached one's rows")
        rounds = []
        for number in range(args.rounds):
            watch = run_wrk(f"http://127.0.0.1:{port}/api/v1/watchlist", token, **wrk_options)
            cold = run_wrk(f"http://127.0.0.1:{cold_port}/api/v1/watchlist", token, **wrk_options)
            bare = run_wrk(f"http://127.0.0.1:{bare_port}/bare", None, **wrk_options)
            ratio = watch["requests_per_second"] / bare["requests_per_second"]
            cold_ratio = cold["requests_per_second"] / bare["requests_per_second"]
            this = {"watchlist": watch, "uncached": cold, "bare": bare, "ratio": ratio, "uncached_ratio": cold_ratio}
            if args.write_every > 0:
                with PinToggler(url, ids[0], args.write_every) as writes:
                    this["with_writes"] = run_wrk(f"http://127.0.0.1:{port}/api/v1/watchlist", token, **wrk_options)
                this["with_writes"]["writes"] = writes.count
                items = get_json(f"http://127.0.0.1:{port}/api/v1/watchlist", token)["items"]
                shown = any(i["account_id"] == ids[0] and "pinned" in i["reasons"] for i in items)
                if shown != writes.pinned:
                    raise RuntimeError("the cached page missed the last write")
            rounds.append(this)
            if args.rounds > 1:
                print(f"round {number + 1}: {_line('watchlist', watch)}", flush=True)
                if "with_writes" in this:
                    print(f"round {number + 1}: {_line('writes', this['with_writes'])}", flush=True)
                print(f"round {number + 1}: {_line('uncached', cold)}  ratio {cold_ratio:.2f}", flush=True)
                print(f"round {number + 1}: {_line('bare', bare)}  ratio {ratio:.2f}", flush=True)
    finally:
        for server in servers:
            stop(server)
    median = sorted(rounds, key=lambda r: r["ratio"])[(len(rounds) - 1) // 2]
    return {"rows": len(ids), **median, "rounds": rounds}


class PinToggler:
    """While the load runs: every ``every`` seconds pin the page's first account, or end its pin,
    from another connection (a real write to a table the page reads: each worker's cached page
    is dropped and read again)."""

    def __init__(self, url: str, account_id: int, every: float) -> None:
        from app.db import make_engine

        self.engine = make_engine(url)
        self.account_id, self.every = account_id, every
        self.count, self.pinned = 0, False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PinToggler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()
        self.engine.dispose()

    def _run(self) -> None:
        end = sa.text(
            "UPDATE watchlist_pins SET removed_at = :now, removed_by = 'bench' "
            "WHERE account_id = :id AND removed_at IS NULL"
        )
        pin = sa.text(
            "INSERT INTO watchlist_pins (account_id, reason, author, created_at) "
            "VALUES (:id, 'bench toggle', 'bench', :now)"
        )
        with self.engine.begin() as conn:  # start from no open pin
            conn.execute(end, {"id": self.account_id, "now": dt.datetime.now(dt.UTC)})
        while not self.done.wait(self.every):
            with self.engine.begin() as conn:
                params = {"id": self.account_id, "now": dt.datetime.now(dt.UTC)}
                conn.execute(end, params)
                if not self.pinned:
                    conn.execute(pin, params)
            self.pinned = not self.pinned
            self.count += 1


def _line(name: str, r: dict[str, Any]) -> str:
    latency = ", ".join(f"p{p} {v:.2f} ms" for p, v in r["latency_ms"].items())
    return (
        f"{name:10} {r['requests_per_second']:8.1f} req/s  {r['requests']:6d} requests  {latency}  errors {r['errors']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--usage-days", type=int, default=90)
    parser.add_argument("--pg-url", default=DEFAULT_URL, help="A database the benchmark may drop and recreate.")
    parser.add_argument("--reuse", action="store_true", help="Reuse the database of an earlier run.")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--duration", type=int, default=30, help="Seconds of load per endpoint.")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--write-every",
        type=float,
        default=1.0,
        help="A fourth load of the cached watchlist while a pin is toggled this often (seconds; 0: none).",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="Alternate the loads this many times (ratios need at least 5)."
    )
    args = parser.parse_args()
    if not args.reuse:
        print("build:", json.dumps(build_database(args.pg_url, args.accounts, args.usage_days)), flush=True)
    if args.build_only:
        return
    ensure_index(args.pg_url)
    result = load_both(args.pg_url, args)
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, gunicorn 2 sync workers, "
          f"PostgreSQL, {result['rows']} rows per page"
          + (f", median of {args.rounds} rounds:" if args.rounds > 1 else ":"))  # fmt: skip
    print(_line("watchlist", result["watchlist"]))
    if "with_writes" in result:
        print(_line("writes", result["with_writes"]) + f"  ({result['with_writes']['writes']} pin changes)")
    print(_line("uncached", result["uncached"]) + f"  ratio {result['uncached_ratio']:.2f}")
    print(_line("bare", result["bare"]))
    # Like for like: the bare endpoint reads the database on every request, so the product is
    # compared with it with its page cache off; the cached page's ratio is reported beside it.
    rounds = result["rounds"]
    like = sorted(r["uncached_ratio"] for r in rounds)
    cached = sorted(r["ratio"] for r in rounds)
    p99 = sorted(r["watchlist"]["latency_ms"]["99"] for r in rounds)
    errors = sum(r["watchlist"]["errors"] for r in rounds)
    result["summary"] = {
        "uncached_over_bare": {"median": statistics.median(like), "min": like[0], "max": like[-1]},
        "cached_over_bare": {"median": statistics.median(cached), "min": cached[0], "max": cached[-1]},
        "cached_p99_ms": {"median": statistics.median(p99), "worst_round": p99[-1]},
    }
    goal = errors == 0 and p99[-1] < 25 and statistics.median(like) >= 0.6
    print(f"like for like (cache off) / bare = {statistics.median(like):.2f} ({like[0]:.2f}-{like[-1]:.2f}) "
          f"over {len(rounds)} rounds (goal >= 0.60); with the page cache {statistics.median(cached):.2f} "
          f"({cached[0]:.2f}-{cached[-1]:.2f}); cached p99 median {statistics.median(p99):.2f} ms, worst round "
          f"{p99[-1]:.2f} ms (goal < 25), errors {errors} (goal 0): {'MET' if goal else 'NOT MET'}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "watchlist.json").write_text(
        json.dumps(
            {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "args": vars(args), **result}, indent=2
        )
    )


if __name__ == "__main__":
    main()
