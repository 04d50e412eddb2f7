"""Alert dispatch speed: ``python -m bench.alerts_bench`` (``make bench-alerts``).

The alerts issue's goals: one dispatcher sends at least 200 alerts a second to a local HTTP
server, and from the commit of a risk event to the Slack request leaving takes under 5 seconds
at the 99th percentile with the default dispatcher interval. On PostgreSQL, in a scratch
database of its own (``hs_bench_alerts``, dropped and recreated, dropped again at the end):

1. **Throughput.** ``--alerts`` (5,000) pending alerts to a Slack channel (``channel:team`` in a
   stored routing version, its ``url`` a receiver on 127.0.0.1 answering 200 at once), each with
   a realistic payload (a poor-health account, two events, a play with three tasks, three
   drivers; an acknowledge link signed at send time) and a unique account name. One
   ``Dispatcher.run_once()`` after another (default settings: batches of 100) until a pass
   claims nothing: alerts/s. Then the same to email (``csm`` recipients, one address each)
   against a local SMTP server (aiosmtpd, no TLS). Each receiver runs in a process of its own
   (so it does not share this process's GIL with the dispatcher) and reports every request;
   every alert must arrive exactly once and every row be ``sent``.
2. **Latency commit -> request.** The real scheduler (``flask scheduler run``, default
   ``ALERT_DISPATCH_SECONDS``) runs against the same database with ``SLACK_WEBHOOK_URL`` at the
   HTTP receiver. This process scores a small portfolio (``--accounts``, license-only config:
   score = 100 x utilization) one day after another; on each day one account drops from 50 %
   to 30 % utilization (``any_into_poor``, a high-severity risk event) and is renamed to a
   name unique to the sample, in the same transaction as the scoring run. The routing sends
   risk events to ``channel:team`` at once (cooldown 0 h, a budget no run reaches). The time
   after ``commit()`` returns, against the time the receiver read that alert's request. After
   each arrival the next sample waits a random 0-``interval`` s, so commits fall at random
   points of the dispatcher's cycle. ``--samples`` (100) measured, after ``--warmup`` (2).

``--profile`` runs the Slack throughput once more under cProfile and prints where the time goes.
Prints a summary table; results go to ``bench/results/alerts.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/hs_bench_alerts"
TOKEN = re.compile(rb"bench-[a-z]+-\d+")
DAY0 = dt.date(2026, 1, 1)


# --- receivers: a process each, one line per request on stdout ("<time.time()> <token>") ---------------


async def _serve_http() -> None:
    """A minimal HTTP/1.1 server: reads each request, notes when its body was in, answers 200."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, close = 0, head.startswith(b"HTTP/1.0")
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection":
                        close = value.strip().lower() == b"close"
                body = await reader.readexactly(length) if length else b""
                at = time.time()
                found = TOKEN.search(body)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                    + (b"Connection: close\r\n" if close else b"")
                    + b"\r\nok"
                )
                await writer.drain()
                sys.stdout.write(f"{at:.6f} {found.group().decode() if found else '-'}\n")
                sys.stdout.flush()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


class _SmtpHandler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        for rcpt in envelope.rcpt_tos:
            found = TOKEN.search(rcpt.encode())
            sys.stdout.write(f"{at:.6f} {found.group().decode() if found else '-'}\n")
        sys.stdout.flush()
        return "250 Message accepted for delivery"


def _serve_smtp() -> None:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd checks its port by connecting to it: no port 0
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(_SmtpHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"PORT {port}", flush=True)
    try:
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        controller.stop()


class Receiver:
    """A receiver process (``--receiver http|smtp``) and what it has reported."""

    def __init__(self, kind: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.alerts_bench", "--receiver", kind],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()
        if not first or first[0] != "PORT":
            self.process.kill()
            raise RuntimeError(f"the {kind} receiver did not start")
        self.port = int(first[1])
        self.arrivals: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            at, token = line.split()
            with self._changed:
                self.arrivals.append((float(at), token))
                self._changed.notify_all()

    def url(self, path: str = "/services/T0/B0/bench") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        with self._changed:
            return bool(self._changed.wait_for(lambda: predicate(self.arrivals), timeout))

    def first_after(self, token: str, start: int, timeout: float) -> float | None:
        """The arrival time of the first ``token`` reported at or after position ``start``."""

        def find(arrivals: list[tuple[float, str]]) -> float | None:
            return next((at for at, t in arrivals[start:] if t == token), None)

        with self._changed:
            self._changed.wait_for(lambda: find(self.arrivals) is not None, timeout)
            return find(self.arrivals)

    def clear(self) -> None:
        with self._changed:
            self.arrivals.clear()

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the database -------------------------------------------------------------------------------------


def create_database(pg_url: str) -> str:
    from app import migrate
    from app.db import make_engine
    from bench.run_bench import fresh_database

    url = fresh_database("postgresql", pg_url, Path("/tmp"), 0)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def drop_database(url: str) -> None:
    parsed = sa.make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def store_routing(session: Session, **changes: Any) -> None:
    from alerts.routing import default_routing_data, load_routing
    from app.models import AlertRoutingVersion

    document = default_routing_data()
    document.update(changes)
    load_routing(document, allow_insecure=True)  # validated as the API would
    version = (session.scalar(sa.select(sa.func.max(AlertRoutingVersion.version))) or 0) + 1
    session.add(AlertRoutingVersion(version=version, document=document, author="bench"))


# --- 1. throughput ------------------------------------------------------------------------------------


def _payload(account_id: int, name: str) -> dict[str, Any]:
    from alerts.base import AccountAlert, AlertKind, DriverLine, EventLine, PlayLine, TaskLine

    return AccountAlert(
        kind=AlertKind.IMMEDIATE, account_id=account_id, account_name=name, stage="established", band="poor",
        score=31.5, change_7d=-22.0, arr=48_000.0, owner="ana@example.com", segment="mid-market",
        renewal_date="2026-09-30", account_url=f"https://health.example.com/api/v1/accounts/{account_id}",
        events=(
            EventLine(rule_id="any_into_poor", rule_name="Health moved into poor", kind="risk", severity="high",
                      day="2026-06-30", detail={"band": "poor", "previous_band": "average", "score": 31.5}),
            EventLine(rule_id="score_drop_7d", rule_name="Score dropped 15 points in 7 days", kind="risk",
                      severity="medium", day="2026-06-30", detail={"change_7d": -22.0}),
        ),
        plays=(
            PlayLine(play_id="poor-health-escalation", name="Poor health escalation", tasks=(
                TaskLine(title="Call the champion", type="call", due_on="2026-07-02", owner="ana"),
                TaskLine(title="Executive sponsor email", type="email", due_on="2026-07-03", owner="csm"),
                TaskLine(title="Escalate to the manager", type="escalation", due_on="2026-07-01", owner="manager"),
            )),
        ),
        drivers=(
            DriverLine(label="License utilization", contribution=-18.2),
            DriverLine(label="Active users (30 d)", contribution=-9.4),
            DriverLine(label="Open P1 tickets", contribution=-3.1),
        ),
    ).to_dict()  # fmt: skip


def queue_alerts(session: Session, n: int, *, channel: str, prefix: str) -> None:
    """``n`` pending alerts, each for a unique account name ``bench-<prefix>-NNNNN``: to
    ``channel:team`` (Slack) or, for email, to an address with that name."""
    from alerts.base import AlertKind, ChannelType
    from app.models import Account, Alert, AlertStatus

    account = Account(
        external_id=f"bench-{prefix}", name=f"bench {prefix}", owner="ana@example.com", segment="mid-market",
        arr=48_000.0, contract_start=dt.date(2025, 1, 1), renewal_date=dt.date(2026, 9, 30), seats_purchased=10,
    )  # fmt: skip
    session.add(account)
    session.flush()
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(n):
        name = f"bench-{prefix}-{i:05d}"
        email = channel == "email"
        rows.append(
            {
                "dedupe_key": f"acct:{account.id}:{prefix}{i}|{'csm' if email else 'channel:team'}",
                "kind": AlertKind.IMMEDIATE, "status": AlertStatus.PENDING,
                "channel": ChannelType.EMAIL if email else ChannelType.SLACK,
                "recipient": f"{name}@example.com" if email else "channel:team",
                "account_id": account.id, "day": now.date(), "severity": "high", "payload": _payload(account.id, name),
                "route_ids": [], "event_ids": [], "play_run_ids": [], "requires_ack": True,
                "next_attempt_at": now, "created_at": now,
            }
        )  # fmt: skip
    for start in range(0, n, 1000):
        session.execute(sa.insert(Alert), rows[start : start + 1000])


def drain(factory: sessionmaker[Session], settings: Any, worker: str) -> tuple[float, int, int]:
    """One dispatcher, ``run_once`` after ``run_once`` until a pass claims nothing: (seconds, sent, passes)."""
    from app.services.alerts.dispatch import Dispatcher

    dispatcher = Dispatcher(factory, settings, worker=worker)
    sent = passes = 0
    try:
        start = time.perf_counter()
        while True:
            counts = dispatcher.run_once()
            passes += 1
            sent += counts.sent
            if counts.claimed == 0:
                break
        seconds = time.perf_counter() - start
    finally:
        dispatcher.close()
    return seconds, sent, passes


def throughput(
    factory: sessionmaker[Session], receiver: Receiver, settings: Any, *, n: int, channel: str, prefix: str
) -> dict[str, Any]:
    from app.models import Alert, AlertStatus

    with factory.begin() as session:
        session.execute(sa.delete(Alert))
        queue_alerts(session, n, channel=channel, prefix=prefix)
    receiver.clear()
    seconds, sent, passes = drain(factory, settings, worker=f"bench-{prefix}")
    receiver.wait_for(lambda arrivals: len(arrivals) >= n, timeout=30)
    time.sleep(0.5)  # a late duplicate would show up here
    tokens = collections.Counter(token for _, token in receiver.arrivals)
    with factory() as session:
        statuses = {
            str(s): c for s, c in session.execute(sa.select(Alert.status, sa.func.count()).group_by(Alert.status))
        }
    expected = {f"bench-{prefix}-{i:05d}" for i in range(n)}
    missing = len(expected - set(tokens))
    twice = sum(1 for count in tokens.values() if count > 1)
    stray = sum(count for token, count in tokens.items() if token not in expected)
    return {
        "channel": channel,
        "alerts": n,
        "seconds": round(seconds, 3),
        "alerts_per_second": round(n / seconds, 1),
        "passes": passes,
        "sent": sent,
        "received": sum(tokens.values()),
        "missing": missing,
        "duplicates": twice,
        "stray": stray,
        "statuses": statuses,
        "exactly_once": missing == 0 and twice == 0 and stray == 0 and statuses == {str(AlertStatus.SENT): n},
    }


def profile_slack(factory: sessionmaker[Session], settings: Any, n: int) -> str:
    from app.models import Alert

    with factory.begin() as session:
        session.execute(sa.delete(Alert))
        queue_alerts(session, n, channel="slack", prefix="profile")
    profiler = cProfile.Profile()
    profiler.enable()
    seconds, sent, _ = drain(factory, settings, worker="bench-profile")
    profiler.disable()
    out = io.StringIO()
    out.write(f"cProfile of the Slack drain: {sent} alerts in {seconds:.2f} s (profiled)\n")
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


# --- 2. latency commit -> request ----------------------------------------------------------------------


def license_only_config() -> dict[str, Any]:
    """The default config (its rules included) scoring license utilization alone: score = 100 x utilization."""
    from scoring.model import default_config_dict

    config = default_config_dict()
    config["measures"] = [
        {"name": "license_utilization_ratio", "label": "", "group": "license",
         "direction": "higher_is_better", "thresholds": [0.0, 1.0]},
    ]  # fmt: skip
    config["weights"] = {stage: {"license_utilization_ratio": 1} for stage in config["weights"]}
    return config


def prepare_portfolio(factory: sessionmaker[Session], accounts: int, settings: Any) -> list[int]:
    """Accounts at 50 % utilization on DAY0 (average), scored; routing: risk to ``channel:team`` at once."""
    from app.models import Account, Alert, LicenseSnapshot, ScoringConfigVersion
    from app.pipeline.run import run_scoring
    from app.services.scoring_config.active import ensure_default_config

    with factory.begin() as session:
        session.execute(sa.delete(Alert))
        store_routing(
            session,
            channels={"team": {"type": "slack", "url_env": "SLACK_WEBHOOK_URL"}},
            routes=[
                {"id": "risk", "match": {"kinds": ["risk"]}, "notify": ["channel:team"], "mode": "immediate"},
                {"id": "everything-else", "match": {}, "notify": ["csm"], "mode": "digest"},
            ],
            cooldown_hours=0,
            budget_per_day=10_000,  # the most it allows; the runs queue a few hundred
        )
        ensure_default_config(session)
        session.execute(sa.update(ScoringConfigVersion).values(active=False))
        version = (session.scalar(sa.select(sa.func.max(ScoringConfigVersion.version))) or 0) + 1
        session.add(ScoringConfigVersion(version=version, config=license_only_config(), author="bench", active=True))
        ids = []
        for i in range(accounts):
            account = Account(
                external_id=f"bench-latency-{i}", name=f"bench-idle-{i:05d}", owner="ana@example.com",
                segment="mid-market", arr=48_000.0, contract_start=dt.date(2025, 1, 1),
                renewal_date=dt.date(2027, 1, 1), seats_purchased=10,
            )  # fmt: skip
            session.add(account)
            session.flush()
            ids.append(account.id)
        session.execute(
            sa.insert(LicenseSnapshot),
            [
                {"account_id": a, "day": DAY0, "seats_purchased": 10, "seats_assigned": 10, "seats_active": 5}
                for a in ids
            ],
        )
        run_scoring(session, as_of=DAY0, alert_settings=settings)
    return ids


def one_sample(factory: sessionmaker[Session], ids: list[int], number: int, settings: Any) -> tuple[str, float, int]:
    """Day DAY0 + number: one account into poor (30 %), the one before back to average (50 %),
    renamed to this sample's name; scored and committed. (name, time after commit, alerts queued)."""
    from app.models import Account, LicenseSnapshot
    from app.pipeline.run import run_scoring

    day = DAY0 + dt.timedelta(days=number)
    poor = ids[number % len(ids)]
    name = f"bench-sample-{number:05d}"
    with factory() as session:
        session.execute(
            sa.insert(LicenseSnapshot),
            [
                {"account_id": a, "day": day, "seats_purchased": 10, "seats_assigned": 10,
                 "seats_active": 3 if a == poor else 5}
                for a in ids
            ],
        )  # fmt: skip
        session.execute(sa.update(Account).where(Account.id == poor).values(name=name))
        summary = run_scoring(session, as_of=day, alert_settings=settings)
        session.commit()
        committed = time.time()
    return name, committed, summary.alerts.queued


def start_scheduler(url: str, slack_url: str, log: Path) -> subprocess.Popen[bytes]:
    from config import normalize_database_url

    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "HS_ENV": "development",
        "DATABASE_URL": normalize_database_url(url),
        "HS_ALERT_ALLOW_INSECURE_WEBHOOKS": "1",
        "HS_ALERT_WEBHOOK_HOSTS": "127.0.0.1",
        "SLACK_WEBHOOK_URL": slack_url,
    }
    env.pop("HS_ALERT_DISPATCH_SECONDS", None)  # the default interval
    env.pop("ALERT_DISPATCH_SECONDS", None)
    flask = Path(sys.executable).parent / "flask"
    with log.open("wb") as out:
        return subprocess.Popen([str(flask), "scheduler", "run"], cwd=ROOT, env=env, stdout=out, stderr=out)


def latency(
    factory: sessionmaker[Session], url: str, receiver: Receiver, settings: Any, *, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    from config import Config

    interval = float(Config.ALERT_DISPATCH_SECONDS)  # the scheduler runs with the default
    ids = prepare_portfolio(factory, args.accounts, settings)
    receiver.clear()
    scheduler = start_scheduler(url, receiver.url(), log)
    rng = random.Random(args.seed)
    samples: list[float] = []
    missed: list[str] = []
    queued_total = 0
    try:
        time.sleep(3)  # let it start; the warm-up samples absorb the rest
        for number in range(1, args.warmup + args.samples + 1):
            if scheduler.poll() is not None:
                raise RuntimeError(f"the scheduler exited ({scheduler.returncode}); see {log}")
            start = len(receiver.arrivals)
            name, committed, queued = one_sample(factory, ids, number, settings)
            queued_total += queued
            arrived = receiver.first_after(name, start, timeout=30)
            if number > args.warmup:
                if arrived is None:
                    missed.append(name)
                else:
                    samples.append(arrived - committed)
            time.sleep(rng.uniform(0, interval))
    finally:
        stop_process(scheduler)
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]

    return {
        "interval_seconds": interval,
        "samples": len(samples),
        "missed": missed,
        "queued_per_sample": round(queued_total / (args.warmup + args.samples), 2),
        "p50": round(pct(50), 3),
        "p95": round(pct(95), 3),
        "p99": round(pct(99), 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
        "mean": round(statistics.fmean(ordered), 3),
        "all": [round(s, 4) for s in samples],
    }


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=5000, help="Alerts queued per throughput run.")
    parser.add_argument("--samples", type=int, default=100, help="Latency samples measured.")
    parser.add_argument("--warmup", type=int, default=2, help="Latency samples run first and not counted.")
    parser.add_argument("--accounts", type=int, default=10, help="Portfolio size of the latency runs.")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--pg-url", default=DEFAULT_URL, help="A database the benchmark may drop and recreate.")
    parser.add_argument("--skip", choices=["throughput", "latency"], action="append", default=[])
    parser.add_argument("--profile", action="store_true", help="Also run the Slack drain under cProfile.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    parser.add_argument("--receiver", choices=["http", "smtp"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver == "http":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_http())
        return
    if args.receiver == "smtp":
        _serve_smtp()
        return

    from alerts.email import SmtpSettings
    from app.db import make_engine
    from app.services.alerts.settings import AlertSettings

    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "args": {k: v for k, v in vars(args).items() if k != "receiver"},
        "load_before": load,
    }
    url = create_database(args.pg_url)
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    http = Receiver("http")
    try:
        smtp = Receiver("smtp")
    except Exception:
        http.stop()
        raise
    try:
        settings = AlertSettings(
            public_base_url="https://health.example.com",
            secret_key="bench-secret",
            smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, security="none", sender="alerts@example.com"),
            webhook_hosts=(),
            allow_insecure_webhooks=True,
        )
        if "throughput" not in args.skip:
            with factory.begin() as session:
                store_routing(session, channels={"team": {"type": "slack", "url": http.url()}})
            report["slack"] = throughput(factory, http, settings, n=args.alerts, channel="slack", prefix="slack")
            print(json.dumps({k: v for k, v in report["slack"].items()}), flush=True)
            report["email"] = throughput(factory, smtp, settings, n=args.alerts, channel="email", prefix="email")
            print(json.dumps({k: v for k, v in report["email"].items()}), flush=True)
            if args.profile:
                print(profile_slack(factory, settings, args.alerts), flush=True)
        if "latency" not in args.skip:
            with tempfile.TemporaryDirectory(prefix="hs-bench-alerts-") as tmp:
                log = Path(tmp) / "scheduler.log"
                try:
                    report["latency"] = latency(factory, url, http, settings, args=args, log=log)
                except Exception:
                    print(log.read_text()[-4000:] if log.exists() else "(no scheduler log)", file=sys.stderr)
                    raise
                dispatched = [line for line in log.read_text().splitlines() if "alerts dispatched" in line]
                report["latency"]["scheduler_dispatch_log_lines"] = len(dispatched)
    finally:
        http.stop()
        smtp.stop()
        engine.dispose()
        if not args.keep:
            drop_database(url)
    report["load_after"] = os.getloadavg()
    print_summary(report, args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "alerts.json").write_text(json.dumps(report, indent=2))
    print(f"written to {RESULTS / 'alerts.json'}")


def print_summary(report: dict[str, Any], args: argparse.Namespace) -> None:
    print()
    print("| figure | result | goal |")
    print("|---|---|---|")
    for key, label in (("slack", "Slack (HTTP 200 at once)"), ("email", "email (SMTP, no TLS)")):
        if key in report:
            r = report[key]
            once = (
                "every alert once"
                if r["exactly_once"]
                else f"NOT once: {r['missing']} missing, {r['duplicates']} twice"
            )
            goal = ">= 200 alerts/s" if key == "slack" else "-"
            print(f"| one dispatcher, {label}, {r['alerts']:,} alerts | **{r['alerts_per_second']:.0f} alerts/s** "
                  f"({r['seconds']:.1f} s, {once}) | {goal} |")  # fmt: skip
    if "latency" in report:
        r = report["latency"]
        print(f"| commit -> Slack request, {r['samples']} samples (interval {r['interval_seconds']:.0f} s) | "
              f"p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s, **p99 {r['p99']:.2f} s**, max {r['max']:.2f} s"
              f"{', missed ' + str(len(r['missed'])) if r['missed'] else ''} | p99 < 5 s |")  # fmt: skip
    before, after = report["load_before"], report["load_after"]
    print(f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
          f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")  # fmt: skip
    slack = report.get("slack")
    lat = report.get("latency")
    verdicts = []
    if slack:
        verdicts.append(
            f"throughput {'MET' if slack['alerts_per_second'] >= 200 and slack['exactly_once'] else 'NOT MET'}"
        )
    if lat:
        verdicts.append(f"latency {'MET' if lat['p99'] < 5 and not lat['missed'] else 'NOT MET'}")
    print(", ".join(verdicts))
    print(f"reproduce: .venv/bin/python -m bench.alerts_bench --alerts {args.alerts} --samples {args.samples} "
          f"--pg-url {args.pg_url}")  # fmt: skip


if __name__ == "__main__":
    main()
