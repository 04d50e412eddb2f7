"""The scheduler against a real database: the lease, leader-only runs, two real processes, CLI and API."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from app.db import session_factory
from app.models import JobRun
from app.services.jobs.leases import acquire_lease, lease_holder, release_lease
from app.services.jobs.scheduler import LEASE_NAME, SchedulerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.db]

T0 = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(seconds=30)
ROOT = Path(__file__).resolve().parents[2]


def take(session: Session, holder: str, now: dt.datetime) -> bool:
    with session.begin():
        return acquire_lease(session, name="test", holder=holder, ttl=TTL, now=now)


def test_lease_is_held_renewed_refused_and_taken_over(db_session: Session) -> None:
    assert take(db_session, "a", T0)
    assert take(db_session, "a", T0 + dt.timedelta(seconds=20))  # renewal
    assert not take(db_session, "b", T0 + dt.timedelta(seconds=45))  # renewed at +20: live until +50
    with db_session.begin():
        assert lease_holder(db_session, name="test", now=T0 + dt.timedelta(seconds=45)) == "a"
    assert take(db_session, "b", T0 + dt.timedelta(seconds=51))  # expired: takeover
    assert not take(db_session, "a", T0 + dt.timedelta(seconds=52))
    with db_session.begin():
        release_lease(db_session, name="test", holder="a")  # not a's any more: no effect
        assert lease_holder(db_session, name="test", now=T0 + dt.timedelta(seconds=52)) == "b"
        release_lease(db_session, name="test", holder="b")
        assert lease_holder(db_session, name="test", now=T0 + dt.timedelta(seconds=52)) is None
    assert take(db_session, "a", T0 + dt.timedelta(seconds=53))


def runs(session: Session) -> list[JobRun]:
    with session.begin():
        return list(session.scalars(sa.select(JobRun).order_by(JobRun.id)))


def test_only_the_lease_holder_runs_a_triggered_job(app: Flask, db_session: Session) -> None:
    leader, standby = SchedulerProcess(app), SchedulerProcess(app)
    assert leader.heartbeat() and not standby.heartbeat()
    standby.run_scheduled("score-daily")
    assert runs(db_session) == []
    leader.run_scheduled("score-daily")
    [run] = runs(db_session)
    assert run.job == "score-daily" and run.status == "succeeded" and run.params["runner"] == leader.holder
    leader.release()
    assert standby.heartbeat()  # a clean shutdown hands over at once


def test_a_heartbeat_in_flight_at_shutdown_never_takes_the_lease_again(app: Flask, db_session: Session) -> None:
    # The flaky fail-over test: SIGTERM stops APScheduler without waiting, the main thread releases
    # the lease, and a heartbeat (or a leader-only job's lease check) still running in a worker
    # thread took it again before the process exited, so the lease was held after the exit.
    process = SchedulerProcess(app)
    assert process.heartbeat()
    process.release()
    assert not process.heartbeat()  # the late heartbeat
    process.run_scheduled("score-daily")  # a leader-only job checks the lease the same way
    assert runs(db_session) == []
    with app.app_context(), session_factory().begin() as session:
        assert lease_holder(session, name=LEASE_NAME, now=dt.datetime.now(dt.UTC)) is None


def test_a_new_leader_marks_the_runs_a_dead_leader_left_running_failed(app: Flask, db_session: Session) -> None:
    now = dt.datetime.now(dt.UTC)
    with db_session.begin():
        dead = JobRun(job="score-daily", params={"runner": "host:1:dead"}, status="running", started_at=now)
        cli = JobRun(job="score", params={"as_of": "2026-06-30"}, status="running", started_at=now)
        request = JobRun(job="score", params={"job_request": 1, "runner": "host:2:w"}, status="running", started_at=now)
        db_session.add_all([dead, cli, request])
    process = SchedulerProcess(app)
    assert process.heartbeat()
    db_session.expire_all()
    with db_session.begin():
        statuses = {run.id: (run.status, run.error) for run in db_session.scalars(sa.select(JobRun))}
    assert statuses[dead.id][0] == "failed" and "host:1:dead" in statuses[dead.id][1]
    assert "stopped before it finished" in statuses[dead.id][1]
    assert statuses[cli.id] == ("running", None)  # a CLI run has no lease to judge it by
    assert statuses[request.id] == ("running", None)  # job requests have leases of their own
    process.release()


def test_a_heartbeat_that_cannot_reach_the_database_stops_leading(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    process = SchedulerProcess(app)
    assert process.heartbeat()

    def unreachable(*_args: object, **_kwargs: object) -> bool:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr("app.services.jobs.scheduler.acquire_lease", unreachable)
    assert not process.heartbeat() and not process.leading


def _start_scheduler(database_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HS_SCORE_INTERVAL_SECONDS": "2",
        "HS_SCHEDULER_HEARTBEAT_SECONDS": "1",
        "HS_SCHEDULER_LEASE_SECONDS": "3",
        "FLASK_APP": "wsgi",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "scheduler", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def test_two_scheduler_processes_run_each_trigger_once_and_fail_over(
    app: Flask, database_url: str, db_session: Session
) -> None:
    first = _start_scheduler(database_url)
    second = _start_scheduler(database_url)
    processes = [first, second]
    try:
        assert _wait_for(lambda: len(runs(db_session)) >= 3, timeout=30), "no scheduled runs"
        before = runs(db_session)
        # One process leads: every run so far is by one holder, about one per 2 s trigger.
        assert len({run.params["runner"] for run in before}) == 1
        starts = [run.started_at for run in before]
        assert all((b - a).total_seconds() > 1.5 for a, b in itertools.pairwise(starts))
        leader_pid = int(before[0].params["runner"].split(":")[1])
        leader = next(p for p in processes if p.pid == leader_pid)
        leader.send_signal(signal.SIGKILL)  # no clean shutdown: the lease must expire
        leader.wait(timeout=10)
        killed_at = time.monotonic()
        assert _wait_for(
            lambda: any(run.params["runner"] != before[0].params["runner"] for run in runs(db_session)), timeout=20
        ), "the standby did not take over"
        assert time.monotonic() - killed_at < 60
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
    with app.app_context(), session_factory().begin() as session:
        assert lease_holder(session, name=LEASE_NAME, now=dt.datetime.now(dt.UTC)) is None  # released on SIGTERM


def test_jobs_cli_lists_and_runs(runner: FlaskCliRunner, db_session: Session) -> None:
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0 and listed.output.startswith("score-daily") and "never run" in listed.output
    ran = runner.invoke(args=["jobs", "run", "score-daily"])
    assert ran.exit_code == 0, ran.output
    assert ran.output.startswith("Scored 0 accounts as of")
    assert "last succeeded" in runner.invoke(args=["jobs", "list"]).output
    unknown = runner.invoke(args=["jobs", "run", "nope"])
    assert (
        unknown.exit_code == 2
        and "No job 'nope'; jobs: alerts-digest, alerts-dispatch, job-requests, score-daily" in unknown.output
    )


def test_job_runs_api(client: FlaskClient, runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["jobs", "run", "score-daily"]).exit_code == 0
    body = client.get("/api/v1/jobs/runs?job=score-daily").get_json()
    assert body["total"] == 1
    [run] = body["items"]
    assert run["status"] == "succeeded" and run["counts"]["accounts_scored"] == 0 and run["finished_at"]
    assert client.get("/api/v1/jobs/runs?status=failed").get_json()["total"] == 0
    bad = client.get("/api/v1/jobs/runs?status=exploded")
    assert bad.status_code == 422 and list(bad.get_json()["errors"]["query"]) == ["status"]
