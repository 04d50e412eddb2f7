"""Dispatchers under faults: two sharing one outbox on PostgreSQL deliver every alert exactly once;
a dispatcher process killed between claiming and sending leaves rows that return after their
lease. Real processes, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import AccountAlert, AlertKind, ChannelType
from alerts.routing import default_routing_data
from app.db import make_engine
from app.models import Alert, AlertRoutingVersion, AlertStatus, SchedulerLease
from app.services.alerts.dispatch import Dispatcher
from app.services.alerts.settings import AlertSettings
from tests import factories as f
from tests.support.servers import ScriptedHTTPServer, hang, ok

pytestmark = [pytest.mark.e2e, pytest.mark.db]

ROOT = Path(__file__).resolve().parents[2]


def webhook_routing(session: Session, url: str) -> None:
    """Route everything to a signed JSON webhook (it carries each alert's Idempotency-Key)."""
    document = default_routing_data()
    document["channels"]["hook"] = {"type": "webhook", "url": url, "secret_env": "HOOK_SECRET"}
    session.add(AlertRoutingVersion(version=1, document=document, author="test"))
    session.commit()


def queue(session: Session, n: int) -> None:
    acct = f.make_account(session, name="Acme")
    session.commit()
    payload = AccountAlert(
        kind=AlertKind.IMMEDIATE, account_id=acct.id, account_name="Acme", stage="established", band="poor",
        score=30.0, change_7d=-20.0, arr=1000.0, owner=None, segment=None, renewal_date=None,
        account_url="https://x/api/v1/accounts/1",
    ).to_dict()  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    session.execute(
        sa.insert(Alert),
        [
            {
                "dedupe_key": f"load:{i}", "kind": AlertKind.IMMEDIATE, "status": AlertStatus.PENDING,
                "channel": ChannelType.WEBHOOK, "recipient": "channel:hook", "account_id": acct.id,
                "day": now.date(), "payload": payload, "route_ids": [], "event_ids": [], "play_run_ids": [],
                "next_attempt_at": now, "created_at": now,
            }
            for i in range(n)
        ],
    )  # fmt: skip
    session.commit()


def flask_process(database_url: str, *command: str, **env: str) -> subprocess.Popen[bytes]:
    """``flask <command>`` in a process of its own on the test database, webhooks to 127.0.0.1 allowed."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", *command],
        cwd=ROOT,
        env={
            **os.environ,
            "FLASK_APP": "wsgi",
            "HS_ENV": "development",
            "DATABASE_URL": database_url,
            "HS_ALERT_ALLOW_INSECURE_WEBHOOKS": "1",
            "HS_ALERT_WEBHOOK_HOSTS": "127.0.0.1",
            "HOOK_SECRET": "s3cret",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def settings(**overrides: object) -> AlertSettings:
    values: dict[str, object] = {
        "webhook_hosts": (),
        "allow_insecure_webhooks": True,
        "http_timeout": 2.0,
        "env": {"HOOK_SECRET": "s3cret"},
        **overrides,
    }
    return AlertSettings(**values)  # type: ignore[arg-type]


def test_two_dispatchers_deliver_every_alert_exactly_once(db_session: Session, database_url: str, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is what lets dispatchers share the work: PostgreSQL")
    with ScriptedHTTPServer(default=ok()) as server:
        webhook_routing(db_session, server.url_for("/hook"))
        queue(db_session, 1200)
        counts: dict[str, int] = {}

        def work(name: str) -> None:
            engine = make_engine(database_url)
            dispatcher = Dispatcher(
                sessionmaker(bind=engine, expire_on_commit=False), settings(batch_size=50), worker=name
            )
            sent = 0
            try:
                while True:
                    done = dispatcher.run_once()
                    sent += done.sent
                    if done.claimed == 0:
                        break
            finally:
                dispatcher.close()
                engine.dispose()
            counts[name] = sent

        threads = [threading.Thread(target=work, args=(name,)) for name in ("A", "B")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        keys = collections.Counter(r.header("Idempotency-Key") for r in server.requests)
    assert len(keys) == 1200 and max(keys.values()) == 1  # every alert once, none twice
    assert counts["A"] + counts["B"] == 1200 and counts["A"] > 0 and counts["B"] > 0  # both did work
    db_session.expire_all()
    statuses = dict(db_session.execute(sa.select(Alert.status, sa.func.count()).group_by(Alert.status)).all())
    assert statuses == {AlertStatus.SENT: 1200}


def test_a_dispatcher_killed_between_claim_and_send_loses_nothing(db_session: Session, database_url: str) -> None:
    with ScriptedHTTPServer() as server:
        webhook_routing(db_session, server.url_for("/hook"))
        queue(db_session, 5)
        server.script(hang(30))  # the first send hangs: the process is killed while it waits
        process = flask_process(database_url, "alerts", "dispatch", HS_ALERT_LEASE_SECONDS="30")
        try:
            deadline = time.monotonic() + 30
            while not server.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.requests, "the dispatcher never sent"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        db_session.expire_all()
        claimed = list(db_session.scalars(sa.select(Alert).where(Alert.locked_by.is_not(None))))
        assert len(claimed) == 5 and all(a.status is AlertStatus.PENDING for a in claimed)

        now = dt.datetime.now(dt.UTC)
        factory = sessionmaker(bind=db_session.get_bind(), expire_on_commit=False)
        early = Dispatcher(factory, settings(), worker="next", clock=lambda: now + dt.timedelta(seconds=5))
        later = Dispatcher(factory, settings(), worker="next", clock=lambda: now + dt.timedelta(seconds=31))
        try:
            assert early.run_once().claimed == 0  # still leased to the dead process
            counts = later.run_once()
        finally:
            early.close()
            later.close()
        assert counts.sent == 5
        db_session.expire_all()
        rows = list(db_session.scalars(sa.select(Alert)))
        assert all(r.status is AlertStatus.SENT and r.attempts == 2 for r in rows)
        delivered = [r.header("Idempotency-Key") for r in server.requests[1:]]
        assert sorted(delivered) == sorted(f"load:{i}" for i in range(5))


def test_the_scheduler_process_dispatches_what_is_committed(db_session: Session, database_url: str) -> None:
    """Every scheduler process sends due alerts every ALERT_DISPATCH_SECONDS, leader or not."""
    with ScriptedHTTPServer(default=ok()) as server:
        webhook_routing(db_session, server.url_for("/hook"))
        process = flask_process(database_url, "scheduler", "run", HS_ALERT_DISPATCH_SECONDS="1")
        try:
            # The scheduler is up once it holds its lease (its start-up took 1 to 9 s on a busy
            # machine, which a fixed sleep counted against the dispatch interval below).
            up_by = time.monotonic() + 60
            while time.monotonic() < up_by and process.poll() is None:
                held = db_session.scalar(sa.select(sa.func.count()).select_from(SchedulerLease))
                db_session.rollback()
                if held:
                    break
                time.sleep(0.1)
            queue(db_session, 3)
            committed = time.monotonic()
            deadline = committed + 20
            while len(server.requests) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            elapsed = time.monotonic() - committed
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        assert len(server.requests) == 3, "the scheduler did not dispatch"
        assert elapsed < 10  # one dispatch interval, plus start-up jitter on a busy machine
        assert all(r.header("X-HS-Signature") for r in server.requests)
