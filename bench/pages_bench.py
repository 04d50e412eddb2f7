"""Page speed: ``python -m bench.pages_bench`` (``make bench-pages``).

1. Builds a PostgreSQL database (``hs_bench_pages``, dropped and recreated) with the demo
   portfolio (``flask demo seed``: 500 accounts, a year of raw data) and scores every day of the
   last ``--history-days`` (365: the account page's year of history is real scoring runs), with the
   demo's people (``flask demo users --password``).
2. Starts gunicorn (2 sync workers, the shipped ``gunicorn.conf.py``) on 127.0.0.1 with the
   product's ``wsgi:app``; signs in the admin through the real form (CSRF and all) for a session
   cookie, and makes an admin API token.
3. Loads with ``wrk`` (8 connections, 2 threads, ``--duration`` s, ``--latency``) one after the
   other, in ``--rounds`` alternated rounds (each page back to back with the JSON endpoint serving
   its data, the pair's order swapped every other round): the watchlist page ``/watchlist`` and
   ``/api/v1/watchlist``; the account page ``/accounts/<id>`` (a year of history) and
   ``/api/v1/accounts/<id>?history_days=365``. Reports each figure's median, min and max over the
   rounds, the worst round's p99, each round's page/JSON ratio and the load average.
4. Measures what the account page transfers: its HTML and every asset it loads, gzip-compressed
   (level 6, what a reverse proxy in front would send) and raw; and that each of them is of this
   origin.

Prints each figure and writes ``bench/results/pages.json``. The goals (issue 16): both pages p99
under 100 ms at 8 connections and at least 0.8x the requests/s of their JSON endpoint; the account
page under 150 KB compressed, nothing from another origin.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.cookiejar
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.watchlist_bench import _ms, start_gunicorn, stop

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/hs_bench_pages"
PASSWORD = "bench-pages-password"


def flask(url: str, *args: str) -> None:
    from config import normalize_database_url

    env = {**os.environ, "HS_DATABASE_URL": normalize_database_url(url), "HS_LOG_LEVEL": "WARNING", "FLASK_APP": "wsgi"}
    subprocess.run([str(Path(sys.executable).parent / "flask"), *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def build_database(url: str, accounts: int, history_days: int) -> float:
    start = time.perf_counter()
    admin = sa.make_url(url).set(database="postgres")
    engine = sa.create_engine(admin.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        name = sa.make_url(url).database
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    flask(url, "db", "upgrade")
    flask(url, "demo", "seed", "--accounts", str(accounts), "--days", "365")
    flask(url, "demo", "users", "--password", PASSWORD)
    flask(url, "score", "run", "--days", str(history_days))
    return time.perf_counter() - start


def sign_in(base: str) -> str:
    """The session cookie of admin@example.com, signed in through the form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/sign-in", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode({"email": "admin@example.com", "password": PASSWORD, "csrf_token": token})
    opener.open(base + "/sign-in", data=form.encode(), timeout=30).read()
    cookie = next(c for c in jar if c.name == "hs_session")
    return f"hs_session={cookie.value}"


def api_token(url: str) -> str:
    from app.auth import create_token
    from app.db import make_engine
    from app.models import Role
    from config import normalize_database_url

    engine = make_engine(normalize_database_url(url))
    with sa.orm.sessionmaker(bind=engine).begin() as session:
        _, token = create_token(session, f"bench-{time.time_ns()}", Role.ADMIN, description="pages bench")
    engine.dispose()
    return token


def wrk(url: str, header: str, *, duration: int) -> dict[str, Any]:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")
    out = subprocess.run([binary, "-t2", "-c8", f"-d{duration}s", "--latency", "-H", header, url],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "latency_ms": {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, flags=re.MULTILINE)},
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def transfer(base: str, path: str, cookie: str) -> dict[str, Any]:
    """The page and every asset it loads: bytes raw and gzip-compressed, and any foreign origin."""

    def fetch(target: str) -> bytes:
        request = urllib.request.Request(base + target, headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    html = fetch(path)
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html.decode())
    foreign = [a for a in assets if not a.startswith("/") or a.startswith("//")]
    files = {path: html} | {a: fetch(a) for a in assets if a not in foreign}
    return {
        "files": {name: {"raw": len(body), "gzip": len(gzip.compress(body, 6))} for name, body in files.items()},
        "raw_bytes": sum(len(b) for b in files.values()),
        "gzip_bytes": sum(len(gzip.compress(b, 6)) for b in files.values()),
        "foreign": foreign,
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def summarize(rounds: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Per load: req/s and p99 over the rounds (median, min, max; the worst round's p99 is the max);
    per page: its ratio to its JSON endpoint in each round (median, min, max)."""
    summary: dict[str, Any] = {}
    for name in names:
        summary[name] = {
            "requests_per_second": _spread([r[name]["requests_per_second"] for r in rounds]),
            "p99_ms": _spread([r[name]["latency_ms"].get("99", 0.0) for r in rounds]),
            "errors": sum(r[name]["errors"] for r in rounds),
        }
    for page, json_ in (("watchlist_page", "watchlist_json"), ("account_page", "account_json")):
        ratios = [r[page]["requests_per_second"] / r[json_]["requests_per_second"] for r in rounds]
        summary[f"{page}_ratio"] = _spread(ratios)
    summary["load_average_1m"] = _spread([r["load_average"][0] for r in rounds])
    return summary


def report(summary: dict[str, Any]) -> list[str]:
    lines = [f"over {len(summary)} figures; median [min-max] of the rounds:"]
    for name in ("watchlist_page", "watchlist_json", "account_page", "account_json"):
        rps, p99 = summary[name]["requests_per_second"], summary[name]["p99_ms"]
        lines.append(f"  {name:15} {rps['median']:8.1f} req/s [{rps['min']:.1f}-{rps['max']:.1f}]  "
                     f"p99 {p99['median']:6.1f} ms [{p99['min']:.1f}-{p99['max']:.1f}] (worst round {p99['max']:.1f})  "
                     f"errors {summary[name]['errors']}")  # fmt: skip
    for page in ("watchlist_page", "account_page"):
        r = summary[f"{page}_ratio"]
        lines.append(f"  {page} / its JSON: {r['median']:.2f}x [{r['min']:.2f}-{r['max']:.2f}]")
    la = summary["load_average_1m"]
    lines.append(f"  load average (1 min) at the rounds' ends: {la['median']:.2f} [{la['min']:.2f}-{la['max']:.2f}]")
    lines[0] = "summary, median [min-max] over the rounds:"
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("HS_BENCH_PAGES_URL", DEFAULT_URL))
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--history-days", type=int, default=365)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk load")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds (at least 5 for a figure)")
    parser.add_argument("--reuse", action="store_true", help="keep the database of an earlier run")
    args = parser.parse_args()
    from config import normalize_database_url

    results: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "args": vars(args)}
    if not args.reuse:
        results["build_seconds"] = round(build_database(args.url, args.accounts, args.history_days), 1)
        print(f"database built in {results['build_seconds']} s")
    env = {**os.environ, "DATABASE_URL": normalize_database_url(args.url), "HS_LOG_LEVEL": "WARNING"}
    server, port = start_gunicorn("wsgi:app", env)
    try:
        base = f"http://127.0.0.1:{port}"
        cookie, token = sign_in(base), api_token(args.url)
        top = urllib.request.Request(base + "/api/v1/watchlist?limit=1", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(top, timeout=30) as response:
            account = json.loads(response.read())["items"][0]["account_id"]
        loads = {
            "watchlist_page": (f"{base}/watchlist", f"Cookie: {cookie}"),
            "watchlist_json": (f"{base}/api/v1/watchlist", f"Authorization: Bearer {token}"),
            "account_page": (f"{base}/accounts/{account}", f"Cookie: {cookie}"),
            "account_json": (f"{base}/api/v1/accounts/{account}?history_days=365", f"Authorization: Bearer {token}"),
        }
        rounds: list[dict[str, Any]] = []
        for number in range(1, args.rounds + 1):
            # Alternated: each round runs every load once, the page and its JSON back to back (the
            # pair's order swapped every other round), so a busy spell on the shared machine falls on
            # both sides of a ratio.
            order = list(loads) if number % 2 else ["watchlist_json", "watchlist_page", "account_json", "account_page"]
            one = {name: wrk(*loads[name], duration=args.duration) for name in order}
            one["load_average"] = os.getloadavg()
            rounds.append(one)
            print(f"round {number}: load average {' '.join(f'{x:.2f}' for x in one['load_average'])}")
            for name in loads:
                r = one[name]
                print(f"  {name:15} {r['requests_per_second']:8.1f} req/s  p50 {r['latency_ms'].get('50', 0):6.1f} ms  "
                      f"p99 {r['latency_ms'].get('99', 0):6.1f} ms  errors {r['errors']}")  # fmt: skip
        results["rounds"] = rounds
        results["summary"] = summarize(rounds, list(loads))
        for line in report(results["summary"]):
            print(line)
        results["account_transfer"] = transfer(base, f"/accounts/{account}", cookie)
        t = results["account_transfer"]
        print(f"account page transfer: {t['gzip_bytes'] / 1024:.1f} KB gzip ({t['raw_bytes'] / 1024:.1f} KB raw), "
              f"foreign origins: {t['foreign'] or 'none'}")  # fmt: skip
    finally:
        stop(server)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pages.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
