"""Requested jobs against a real database (SQLite and PostgreSQL): queued in the caller's
transaction, coalesced, claimed under a lease, retried, failed, reclaimed after a worker died,
never run twice by two workers, scoring runs one at a time, the CLI, and suggestions equal to what
the synchronous code returned."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import Session, sessionmaker

from app.demo.seed import seed_demo
from app.models import (
    Account,
    JobKind,
    JobRequest,
    JobRequestStatus,
    JobRun,
    JobStatus,
    LatestScore,
    ScoringConfigVersion,
)
from app.pipeline.run import run_scoring
from app.schemas.analysis import SuggestionsSchema
from app.services.alerts.settings import AlertSettings
from app.services.analysis import TooFewOutcomes
from app.services.jobs import requests as job_requests
from app.services.jobs.registry import score_today
from app.services.jobs.requests import (
    MAX_ATTEMPTS,
    RETRY_DELAY,
    Claimed,
    Executed,
    ExecutionContext,
    JobRequestWorker,
    claim,
    lock_scoring_runs,
    request_job,
    request_learning_job,
)
from app.services.scoring_config.versions import activate_version, create_version
from app.services.suggestions import suggest_config
from scoring.model import default_config_dict
from tests import factories as f

pytestmark = [pytest.mark.e2e, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)
T0 = dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def worker(factory: sessionmaker[Session], name: str = "w1", **options: Any) -> JobRequestWorker:
    return JobRequestWorker(factory, alert_settings=AlertSettings(), worker=name, **options)


def new_version(session: Session, **changes: Any) -> int:
    data = default_config_dict()
    data.update(changes)
    return int(create_version(session, {"config": data, "comment": "test"}, actor="ann")["version"])


def queue(factory: sessionmaker[Session], kind: JobKind = JobKind.SUGGESTIONS, **params: Any) -> int:
    with factory.begin() as session:
        return request_job(session, kind, params, "ann").id


def request(factory: sessionmaker[Session], request_id: int) -> JobRequest:
    with factory.begin() as session:
        return session.get_one(JobRequest, request_id)


def succeed(session: Session, claimed: Claimed, context: ExecutionContext) -> Executed:
    return Executed(result={"ran": claimed.id}, summary="fine")


# --- queueing -------------------------------------------------------------------------------------


def test_an_activation_and_its_rescore_request_land_together_or_not_at_all(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        version = new_version(session, neutral_score=55)
    with factory() as session:
        session.begin()
        answer = activate_version(session, version, actor="ann")
        assert answer["rescore"].status is JobRequestStatus.QUEUED
        session.rollback()  # the activation's transaction fails after the request was added
    with factory.begin() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(JobRequest)) == 0
        assert session.scalar(sa.select(ScoringConfigVersion.version).where(ScoringConfigVersion.active)) == 1
    with factory.begin() as session:
        answer = activate_version(session, version, actor="ann")
    with factory.begin() as session:
        [queued] = session.scalars(sa.select(JobRequest)).all()
        assert queued.id == answer["rescore"].id and queued.kind is JobKind.RESCORE
        assert queued.status is JobRequestStatus.QUEUED and queued.requested_by == "ann"
        assert queued.params == {"activations": [{"version": version, "by": "ann"}]}
        assert session.scalar(sa.select(ScoringConfigVersion.version).where(ScoringConfigVersion.active)) == version


def test_a_rescore_is_coalesced_while_queued_but_not_once_running(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        v2, v3 = new_version(session, neutral_score=55), new_version(session, neutral_score=60)
    with factory.begin() as session:
        first = activate_version(session, v2, actor="ann")["rescore"].id
    with factory.begin() as session:
        second = activate_version(session, v3, actor="bob")["rescore"].id
    assert second == first
    assert request(factory, first).params == {
        "activations": [{"version": v2, "by": "ann"}, {"version": v3, "by": "bob"}]
    }
    with factory.begin() as session:
        assert claim(session, worker="w1", now=T0) is not None  # running: it may have read v3 already
    with factory.begin() as session:
        third = activate_version(session, v2, actor="ann")["rescore"].id
    assert third != first and request(factory, third).status is JobRequestStatus.QUEUED
    # Other kinds are never coalesced.
    assert queue(factory) != queue(factory)


# --- running --------------------------------------------------------------------------------------


def test_the_worker_runs_a_rescore_with_the_new_version_recorded_as_a_scoring_run(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        account = f.make_account(session)
        f.add_usage(session, account, AS_OF - dt.timedelta(days=60), AS_OF, active_users=8, logins=12)
        f.add_license(session, account, AS_OF, purchased=10, assigned=10, active=9)
        run_scoring(session, as_of=AS_OF)
        strict = new_version(session, bands={"good": 99.9, "poor": 99})
    with factory.begin() as session:
        request_id = activate_version(session, strict, actor="ann")["rescore"].id

    [outcome] = worker(factory).run_due()

    assert outcome.status is JobRequestStatus.SUCCEEDED and outcome.request_id == request_id
    assert outcome.one_line().startswith(f"Job request {request_id} (rescore) succeeded: Scored 1 accounts")
    with factory.begin() as session:
        assert session.get_one(LatestScore, account.id).config_version == strict
        done = session.get_one(JobRequest, request_id)
        assert (done.status, done.attempts, done.error, done.locked_by) == (JobRequestStatus.SUCCEEDED, 1, None, None)
        assert done.result is not None and done.result["as_of"] == AS_OF.isoformat()
        assert done.result["config_version"] == strict and done.result["by_band"]["poor"] == 1
        assert done.finished_at is not None and done.started_at is not None
        run = session.get_one(JobRun, done.job_run_id)
        assert run.job == "score" and run.status is JobStatus.SUCCEEDED and run.counts["config_version"] == strict
        assert run.params["as_of"] == AS_OF.isoformat() and run.params["job_request"] == request_id
        assert run.params["trigger"] == f"activation of version {strict} by ann" and run.params["runner"] == "w1"
    assert worker(factory).run_once() is None  # nothing left


def test_a_failing_job_is_tried_again_then_failed_and_the_worker_carries_on(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(session: Session, claimed: Claimed, context: ExecutionContext) -> Executed:
        session.add(Account(external_id="half-done", name="Half done", contract_start=AS_OF))
        session.flush()  # written in the job's transaction, then the job raises
        raise RuntimeError("boom")

    monkeypatch.setitem(job_requests.EXECUTORS, JobKind.RESCORE, boom)
    clock = Clock()
    failing = queue(factory, JobKind.RESCORE, activations=[])
    w = worker(factory, clock=clock)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        outcome = w.run_once()
        assert outcome is not None and outcome.request_id == failing and outcome.attempts == attempt
        assert outcome.error == "RuntimeError: boom"
        row = request(factory, failing)
        assert row.attempts == attempt and row.error == "RuntimeError: boom" and row.locked_by is None
        if attempt < MAX_ATTEMPTS:
            assert outcome.status is JobRequestStatus.QUEUED and row.status is JobRequestStatus.QUEUED
            assert "queued again: RuntimeError: boom" in outcome.one_line()
            assert w.run_once() is None  # not due before its delay
            clock.advance(seconds=RETRY_DELAY.total_seconds() * attempt + 1)
    assert outcome.status is JobRequestStatus.FAILED and row.status is JobRequestStatus.FAILED
    assert row.finished_at is not None and row.result is None
    assert outcome.one_line() == f"Job request {failing} (rescore) failed on attempt 3 of 3: RuntimeError: boom"
    with factory.begin() as session:
        # Nothing half done: each attempt's writes were rolled back with it.
        assert session.scalar(sa.select(sa.func.count()).select_from(Account)) == 0
        runs = session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()
        assert [(r.job, r.status, r.error) for r in runs] == [("score", JobStatus.FAILED, "RuntimeError: boom")] * 3
        assert session.get_one(JobRequest, failing).job_run_id == runs[-1].id
    # The worker is still there for the next request.
    monkeypatch.setitem(job_requests.EXECUTORS, JobKind.SUGGESTIONS, succeed)
    fine = queue(factory)
    outcome = w.run_once()
    assert outcome is not None and outcome.request_id == fine and outcome.status is JobRequestStatus.SUCCEEDED
    assert request(factory, fine).result == {"ran": fine}


def test_bad_input_fails_at_once_without_retries(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_few(session: Session, claimed: Claimed, context: ExecutionContext) -> Executed:
        raise TooFewOutcomes("Too few outcomes to learn from: 3 churned and 40 not churned observations.")

    monkeypatch.setitem(job_requests.EXECUTORS, JobKind.SUGGESTIONS, too_few)
    request_id = queue(factory)
    outcome = worker(factory).run_once()
    assert outcome is not None and outcome.status is JobRequestStatus.FAILED and outcome.attempts == 1
    row = request(factory, request_id)
    assert row.status is JobRequestStatus.FAILED and row.attempts == 1
    assert row.error == "Too few outcomes to learn from: 3 churned and 40 not churned observations."


def test_a_dead_workers_request_is_claimed_again_and_fails_after_the_last_attempt(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = job_requests.LEASE
    taken: list[Claimed | None] = []

    def writer(session: Session, claimed: Claimed, context: ExecutionContext) -> Executed:
        if context.worker == "a":  # a stalls past its lease: b takes the request over meanwhile
            with factory.begin() as other:
                taken.append(claim(other, worker="b", now=T0 + lease + dt.timedelta(seconds=1)))
        session.add(Account(external_id=f"by-{context.worker}", name=context.worker, contract_start=AS_OF))
        session.flush()
        return Executed(result={"by": context.worker})

    monkeypatch.setitem(job_requests.EXECUTORS, JobKind.TRAIN_CHURN_MODEL, writer)
    request_id = queue(factory, JobKind.TRAIN_CHURN_MODEL, as_of="2026-06-30")
    with factory.begin() as session:
        first = claim(session, worker="a", now=T0)
    assert first is not None and first.attempts == 1
    with factory.begin() as session:
        assert claim(session, worker="b", now=T0 + lease - dt.timedelta(seconds=1)) is None  # a holds it
    # a finishes after b took over: a's work is rolled back, and b's outcome is b's to record.
    lost = worker(factory, "a").run(first)
    assert lost.status is None and "Another worker took the request over" in (lost.error or "")
    [second] = taken
    assert second is not None and second.id == request_id and second.attempts == 2
    row = request(factory, request_id)
    assert row.status is JobRequestStatus.RUNNING and row.locked_by == "b" and "lease expired" in (row.error or "")
    done = worker(factory, "b").run(second)
    assert done.status is JobRequestStatus.SUCCEEDED
    with factory.begin() as session:
        assert session.scalars(sa.select(Account.name)).all() == ["b"]
        assert session.get_one(JobRequest, request_id).result == {"by": "b"}
        runs = session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()
        assert [(r.params["runner"], r.status) for r in runs] == [("a", JobStatus.FAILED), ("b", JobStatus.SUCCEEDED)]

    # A request whose worker dies on every attempt ends failed, its job runs too.
    dying = queue(factory, JobKind.TRAIN_CHURN_MODEL, as_of="2026-06-30")
    now = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        now += lease + dt.timedelta(seconds=1)
        with factory.begin() as session:
            claimed = claim(session, worker=f"dies-{attempt}", now=now)
        assert claimed is not None and claimed.id == dying and claimed.attempts == attempt
    with factory.begin() as session:
        assert claim(session, worker="late", now=now + lease + dt.timedelta(seconds=1)) is None
    row = request(factory, dying)
    assert row.status is JobRequestStatus.FAILED and row.attempts == MAX_ATTEMPTS and row.finished_at is not None
    assert row.error is not None and row.error.endswith(f"That was the last of {MAX_ATTEMPTS} attempts.")


def test_the_lease_is_renewed_while_a_long_job_runs(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Claimed | None] = []

    def long_job(session: Session, claimed: Claimed, context: ExecutionContext) -> Executed:
        time.sleep(2.5)  # longer than the lease: only renewals keep it
        with factory.begin() as other:
            seen.append(claim(other, worker="thief", now=dt.datetime.now(dt.UTC), lease=dt.timedelta(seconds=1)))
        return Executed(result={})

    monkeypatch.setitem(job_requests.EXECUTORS, JobKind.SUGGESTIONS, long_job)
    request_id = queue(factory)
    outcome = worker(factory, lease=dt.timedelta(seconds=1), renew_seconds=0.1).run_once()
    assert seen == [None]
    assert outcome is not None and outcome.status is JobRequestStatus.SUCCEEDED
    assert request(factory, request_id).attempts == 1


def test_two_workers_never_run_the_same_request_twice(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[str, int]] = []
    lock = threading.Lock()

    def record(session: Session, claimed: Claimed, context: ExecutionContext) -> Executed:
        time.sleep(0.01)
        with lock:
            ran.append((context.worker, claimed.id))
        return Executed(result={"by": context.worker})

    monkeypatch.setitem(job_requests.EXECUTORS, JobKind.SUGGESTIONS, record)
    ids = [queue(factory) for _ in range(30)]
    workers = [worker(factory, name) for name in ("w1", "w2")]
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def drain(w: JobRequestWorker) -> None:
        barrier.wait()
        try:
            w.run_due()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(request_id for _, request_id in ran) == ids  # each exactly once
    with factory.begin() as session:
        rows = session.scalars(sa.select(JobRequest)).all()
    assert {r.status for r in rows} == {JobRequestStatus.SUCCEEDED} and {r.attempts for r in rows} == {1}
    assert all(r.result == {"by": by} for r in rows for by, i in ran if i == r.id)


# --- one scoring run at a time --------------------------------------------------------------------


@pytest.mark.parametrize("run", ["rescore", "daily"])
def test_a_scoring_run_waits_for_the_one_in_progress(factory: sessionmaker[Session], run: str) -> None:
    with factory.begin() as session:
        account = f.make_account(session)
        f.add_usage(session, account, AS_OF - dt.timedelta(days=30), AS_OF, active_users=5, logins=5)
        run_scoring(session, as_of=AS_OF)
    claimed = None
    if run == "rescore":
        with factory.begin() as session:
            request_job(session, JobKind.RESCORE, {"activations": []}, "ann")
        with factory.begin() as session:
            claimed = claim(session, worker="w1", now=dt.datetime.now(dt.UTC))
        assert claimed is not None
    finished = threading.Event()

    def second_run() -> None:
        if claimed is not None:
            worker(factory).run(claimed)
        else:
            with factory.begin() as session:
                score_today(session, dt.datetime.combine(AS_OF, dt.time(2), dt.UTC))
        finished.set()

    holder = factory()
    holder.begin()
    lock_scoring_runs(holder)  # a scoring run in progress
    thread = threading.Thread(target=second_run)
    thread.start()
    try:
        assert not finished.wait(1.0), "the second run did not wait for the first"
    finally:
        holder.commit()
        holder.close()
    thread.join(timeout=30)
    assert finished.is_set()
    with factory.begin() as session:
        assert session.get_one(LatestScore, account.id).day == AS_OF
        if claimed is not None:
            assert session.get_one(JobRequest, claimed.id).status is JobRequestStatus.SUCCEEDED


# --- the CLI --------------------------------------------------------------------------------------


def test_cli_runs_what_is_due_and_says_so(
    runner: FlaskCliRunner, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    idle = runner.invoke(args=["jobs", "work"])
    assert idle.exit_code == 0 and idle.output == "No job requests are due.\n"
    monkeypatch.setitem(job_requests.EXECUTORS, JobKind.SUGGESTIONS, succeed)
    first, second = queue(factory), queue(factory)
    once = runner.invoke(args=["jobs", "work", "--once"])
    assert once.exit_code == 0, once.output
    assert once.output == f"Job request {first} (suggestions) succeeded: fine\n"
    with factory.begin() as session:
        rescore = activate_version(session, new_version(session, neutral_score=55), actor="ann")["rescore"].id
    rest = runner.invoke(args=["jobs", "work"])
    assert rest.exit_code == 0, rest.output
    lines = rest.output.splitlines()
    assert lines[0] == f"Job request {second} (suggestions) succeeded: fine"
    assert lines[1].startswith(f"Job request {rescore} (rescore) succeeded: Scored 0 accounts as of")
    assert request(factory, rescore).job_run_id is not None


def test_cli_exits_non_zero_when_a_request_failed(
    runner: FlaskCliRunner, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(session: Session, claimed: Claimed, context: ExecutionContext) -> Executed:
        raise RuntimeError("the warehouse is down")

    monkeypatch.setitem(job_requests.EXECUTORS, JobKind.SUGGESTIONS, boom)
    request_id = queue(factory)
    failed = runner.invoke(args=["jobs", "work"])
    assert failed.exit_code == 1
    assert failed.output.splitlines() == [
        f"Job request {request_id} (suggestions) failed on attempt 1 of 3, queued again: "
        "RuntimeError: the warehouse is down",
        "Error: 1 of 1 job request(s) did not succeed (see above).",
    ]
    both = runner.invoke(args=["jobs", "work", "--loop", "--once"])
    assert both.exit_code == 2 and "Use --loop or --once, not both." in both.output


# --- suggestions, as they were --------------------------------------------------------------------


def test_suggestions_result_is_what_the_synchronous_code_returned(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        seed_demo(session, accounts=250, days=300, as_of=AS_OF, seed=3)
    options = {"as_of": AS_OF, "horizon_days": 90, "periodic_months": 6, "min_per_class": 10}
    with factory.begin() as session:
        request_id = request_learning_job(session, JobKind.SUGGESTIONS, options, "ann").id
    [outcome] = worker(factory).run_due()
    assert outcome.status is JobRequestStatus.SUCCEEDED, outcome
    with factory.begin() as session:
        expected: dict[str, Any] = SuggestionsSchema().dump(suggest_config(session, **options))
    stored = request(factory, request_id).result
    assert stored is not None

    def without_timings(body: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in body.items() if key != "seconds"}

    assert without_timings(stored) == without_timings(expected)
    assert list(stored) == list(expected)  # the body's key order too
    assert set(stored["seconds"]) == {"data", "fit"}


def test_learning_requests_are_refused_at_once_when_the_outcomes_rule_them_out(
    factory: sessionmaker[Session],
) -> None:
    options: dict[str, Any] = {
        "as_of": AS_OF,
        "horizon_days": 90,
        "periodic_months": 0,
        "min_per_class": 30,
    }
    with factory.begin() as session, pytest.raises(TooFewOutcomes) as refused:
        request_learning_job(session, JobKind.TRAIN_CHURN_MODEL, options, "ann")
    assert refused.value.message == (
        "Too few outcomes to learn from: 0 churned and 0 not churned observations at most (0 churn and 0 other "
        "outcomes up to 2026-06-30, 0 monthly dates); at least 30 of each are needed."
    )
    assert refused.value.errors == {"outcomes": [refused.value.message]}
    with factory.begin() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(JobRequest)) == 0
