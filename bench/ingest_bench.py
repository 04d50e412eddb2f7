"""Push-API throughput: ``python -m bench.ingest_bench`` (``make bench-ingest``).

Starts gunicorn (2 sync workers) on 127.0.0.1 against a fresh PostgreSQL database, creates the
accounts, then posts pre-encoded batches of daily-usage records to ``POST /api/v1/ingest/usage``
from two client connections and reports records per second end to end (first as inserts, then
the same batches again as updates).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.run_bench import fresh_database

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


HEADERS = {"Content-Type": "application/json"}


def post_all(port: int, bodies: list[bytes]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    landed = 0
    for body in bodies:
        connection.request("POST", "/api/v1/ingest/usage", body=body, headers=HEADERS)
        response = connection.getresponse()
        payload = json.loads(response.read())
        if response.status != 200 or payload["rejected"]:
            raise RuntimeError(f"batch refused: {response.status} {str(payload)[:300]}")
        landed += payload["landed"]
    connection.close()
    return landed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--batches", type=int, default=200, help="Batches of --batch-size records.")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/hs_bench_ingest")
    args = parser.parse_args()

    url = fresh_database("postgresql", args.pg_url, Path("/tmp"), 0)
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "HS_LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    created = subprocess.run(
        [sys.executable, "-m", "flask", "tokens", "create", "--user", "bench", "--role", "ingest"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    HEADERS["Authorization"] = f"Bearer {created.stdout.strip().splitlines()[-1]}"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        accounts = [
            {
                "external_id": f"acct-{i:06d}",
                "name": f"Account {i}",
                "contract_start": "2025-01-01",
                "seats_purchased": 50,
            }
            for i in range(args.accounts)
        ]
        for start in range(0, len(accounts), 5_000):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request(
                "POST", "/api/v1/ingest/accounts", body=json.dumps(accounts[start : start + 5_000]),
                headers=HEADERS,
            )  # fmt: skip
            assert connection.getresponse().status == 200
            connection.close()
        # Distinct (account, day) keys: batch b holds the next batch-size pairs.
        first_day = dt.date(2026, 1, 1)
        bodies = []
        for b in range(args.batches):
            records = []
            for k in range(args.batch_size):
                n = b * args.batch_size + k
                day = first_day + dt.timedelta(days=n // args.accounts % 300)
                records.append(
                    {"account": f"acct-{n % args.accounts:06d}", "day": day.isoformat(),
                     "active_users": n % 40, "logins": n % 70, "key_feature_uses": n % 9}
                )  # fmt: skip
            bodies.append(json.dumps(records).encode())
        shares = [bodies[i :: args.clients] for i in range(args.clients)]
        for label in ("insert", "update"):
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                landed = sum(pool.map(lambda share: post_all(port, share), shares))
            seconds = time.perf_counter() - start
            print(
                f"{label}: {landed:,} usage records in {seconds:.2f}s = {landed / seconds:,.0f} records/s "
                f"(batches of {args.batch_size}, {args.clients} clients, gunicorn 2 workers, PostgreSQL)",
                flush=True,
            )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
