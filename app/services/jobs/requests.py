"""Requested jobs: work an API call queues instead of doing it in the request, and the worker that
runs it (the rescore after an activation, suggested weights, churn-model training).

``request_job`` adds a row in the caller's transaction (an outbox: an activation and its rescore
land together or not at all). A worker claims one due row in a short transaction of its own
(``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)`` on PostgreSQL, so workers
in several processes never claim the same row; SQLite's single writer serializes the same
statement), stamping a lease (``locked_until``, renewed by a thread while the job runs) and
counting the attempt. It runs the job in one transaction that also records the outcome, so the
work and its ``succeeded`` land together; a job that raises is rolled back whole and recorded
``failed``, or queued again with a delay while attempts are left. A ``running`` row whose lease
passed belongs to a worker that died: the next claim takes it again (or fails it when that was
the last attempt). A worker that lost its lease rolls its work back rather than overwrite the
outcome of the worker that took the row over.

Like the alert dispatcher, the worker commits (each claim must be visible to other workers before
the work starts); ``request_job`` and the queries never do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.errors import DomainError, NotFound
from app.models import JobKind, JobRequest, JobRequestStatus, JobRun, JobStatus, LatestScore
from app.pipeline.run import ScoringRunSummary, run_scoring
from app.services.alerts.settings import AlertSettings
from app.services.audit import record
from app.services.churn_state import TRAIN_JOB
from app.services.common import page_of
from app.services.jobs.results import churn_model_result, run_summary_result, suggestions_result

logger = logging.getLogger(__name__)

#: Attempts per request; a job that raised on the last one (or whose worker died) is ``failed``.
MAX_ATTEMPTS = 3
#: How long a claim lasts without renewal: a dead worker's request is claimed again after this.
LEASE = dt.timedelta(minutes=5)
#: How often a running job's lease is renewed (well inside ``LEASE``: a renewal may wait for a lock).
RENEW_SECONDS = 30.0
#: The delay before a failed attempt is tried again, times the attempts made.
RETRY_DELAY = dt.timedelta(seconds=30)
#: Kinds where a new request while one is still queued returns the queued one: it has not started,
#: so when it runs it does what the new one would (a rescore uses the config active then).
COALESCED = frozenset({JobKind.RESCORE})
#: The ``job_runs`` job each kind is recorded as (kinds not listed are not recorded there).
JOB_NAMES: Mapping[JobKind, str] = {JobKind.RESCORE: "score", JobKind.TRAIN_CHURN_MODEL: TRAIN_JOB}
#: The key of the PostgreSQL advisory lock every scoring run of the portfolio takes ("hsSC").
SCORING_LOCK_KEY = 0x6873_5343
_LEASE_EXPIRED = "The worker running the previous attempt stopped before finishing (its lease expired)."


# --- one scoring run at a time -------------------------------------------------------------------


def lock_scoring_runs(session: Session) -> None:
    """Wait until no other scoring run of the portfolio is in progress, then hold that until the
    caller's transaction ends. Call it first in the transaction of the run: the daily job, a pull's
    run, ``flask score run`` and a rescore each replace the latest scores, and two at once would
    either fail on the history's primary key or interleave their latest scores.

    PostgreSQL: a transaction-level advisory lock (released at commit or rollback, and when the
    connection dies). SQLite: a write statement that changes nothing takes the database's single
    write lock now rather than at the run's first write; a second run waits up to the busy timeout
    (30 s) and then fails with "database is locked", recorded like any failure.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(SCORING_LOCK_KEY)))
    else:
        session.execute(
            sa.update(JobRequest)
            .where(sa.false())
            .values(id=JobRequest.id)
            .execution_options(synchronize_session=False)
        )


def rescore_portfolio(
    session: Session, *, today: dt.date, alert_settings: AlertSettings | None = None
) -> ScoringRunSummary:
    """Score every account with the active config as of the latest scored day (``today`` when
    nothing is scored yet), after any scoring run in progress; in the caller's transaction. The
    rescore replaces that day's history rows and every latest score."""
    lock_scoring_runs(session)
    as_of = session.scalar(sa.select(sa.func.max(LatestScore.day))) or today
    return run_scoring(session, as_of=as_of, alert_settings=alert_settings, today=max(as_of, today))


# --- asking for a job ----------------------------------------------------------------------------


def request_job(session: Session, kind: JobKind, params: Mapping[str, Any], actor: str) -> JobRequest:
    """Queue a ``kind`` job with ``params`` (JSON) for ``actor``, in the caller's transaction
    (flushed, so it has its id). For a coalesced kind (rescore) a request still queued is returned
    instead, with the new request's list parameters added to its own (a rescore's activations).

    The queued row is read ``FOR UPDATE`` on PostgreSQL: a worker cannot claim it (and start with
    the config active before the caller's change) until the caller's transaction ends.
    """
    if kind in COALESCED:
        queued = session.scalar(
            sa.select(JobRequest)
            .where(JobRequest.kind == kind, JobRequest.status == JobRequestStatus.QUEUED)
            .order_by(JobRequest.id)
            .limit(1)
            .with_for_update()
        )
        if queued is not None:
            merged = dict(queued.params)
            for key, value in params.items():
                before = merged.get(key)
                merged[key] = [*before, *value] if isinstance(before, list) and isinstance(value, list) else value
            queued.params = merged
            session.flush()
            return queued
    request = JobRequest(
        kind=kind,
        params=dict(params),
        requested_by=actor,
        requested_at=utcnow(),
        status=JobRequestStatus.QUEUED,
        attempts=0,
    )
    session.add(request)
    session.flush()
    return request


def request_learning_job(session: Session, kind: JobKind, options: Mapping[str, Any], actor: str) -> JobRequest:
    """Queue suggestions or a churn-model training with the loaded options (``as_of``, a date,
    ``horizon_days``, ``periodic_months``, 0 for none, ``min_per_class``). ``TooFewOutcomes`` (422)
    at once when the outcomes on record could never be enough.

    A request of the same kind with the same options that is still queued or running is returned
    instead of queuing a second one (it will answer the same question), so repeated clicks or a
    client retrying never pile up work. Audited (``job_request.create`` or ``job_request.join``).
    """
    from app.services.analysis import check_enough_outcomes, check_history  # scikit-learn, on demand

    check_history(session, as_of=options["as_of"], horizon_days=options["horizon_days"])
    check_enough_outcomes(
        session,
        as_of=options["as_of"],
        periodic_months=options["periodic_months"],
        min_per_class=options["min_per_class"],
    )
    params = {**options, "as_of": options["as_of"].isoformat()}
    pending = session.scalars(
        sa.select(JobRequest)
        .where(JobRequest.kind == kind, JobRequest.status.in_([JobRequestStatus.QUEUED, JobRequestStatus.RUNNING]))
        .order_by(JobRequest.id)
    )
    joined = next((request for request in pending if request.params == params), None)
    request = joined if joined is not None else request_job(session, kind, params, actor)
    action = "job_request.join" if joined is not None else "job_request.create"
    record(session, actor=actor, action=action, target=f"job_request:{request.id}", details={"kind": kind.value})
    return request


def is_rescore_pending(session: Session) -> bool:
    """Whether a rescore is queued or running: the latest scores may be from the previous config."""
    pending = sa.select(JobRequest.id).where(
        JobRequest.kind == JobKind.RESCORE,
        JobRequest.status.in_([JobRequestStatus.QUEUED, JobRequestStatus.RUNNING]),
    )
    return session.scalar(pending.limit(1)) is not None


def get_job_request(session: Session, request_id: int) -> JobRequest:
    request = session.get(JobRequest, request_id)
    if request is None:
        raise NotFound(f"No job request {request_id}.")
    return request


def list_job_requests(
    session: Session, *, kind: JobKind | None, status: JobRequestStatus | None, page: int, per_page: int
) -> tuple[list[JobRequest], int]:
    """One page of job requests, newest first."""
    query = sa.select(JobRequest)
    if kind is not None:
        query = query.where(JobRequest.kind == kind)
    if status is not None:
        query = query.where(JobRequest.status == status)
    statement, total = page_of(session, query, order_by=(JobRequest.id.desc(),), page=page, per_page=per_page)
    return list(session.scalars(statement)), total


# --- claiming ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A request a worker holds: what to run, and the attempt this is (1-based)."""

    id: int
    kind: JobKind
    params: dict[str, Any]
    requested_by: str
    attempts: int


def _skip_locked(query: sa.Select[Any], session: Session) -> sa.Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def _fail_runs(session: Session, run_ids: list[int], error: str) -> None:
    """Mark the ``job_runs`` rows of attempts whose worker died as failed (those still running)."""
    if run_ids:
        session.execute(
            sa.update(JobRun)
            .where(JobRun.id.in_(run_ids), JobRun.status == JobStatus.RUNNING)
            .values(status=JobStatus.FAILED, error=error, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def claim(session: Session, *, worker: str, now: dt.datetime, lease: dt.timedelta = LEASE) -> Claimed | None:
    """Claim the oldest due request for ``worker`` until ``now + lease`` and count the attempt;
    None when nothing is due (commit before running it, so other workers see the claim).

    Due: ``queued`` with no retry delay left, or ``running`` with its lease passed (its worker
    died). A dead worker's request on its last attempt is failed here instead.
    """
    expired = sa.and_(JobRequest.status == JobRequestStatus.RUNNING, JobRequest.locked_until < now)
    exhausted = session.execute(
        sa.update(JobRequest)
        .where(
            JobRequest.id.in_(
                _skip_locked(
                    sa.select(JobRequest.id).where(expired, JobRequest.attempts >= MAX_ATTEMPTS), session
                ).scalar_subquery()
            )
        )
        .values(
            status=JobRequestStatus.FAILED,
            error=f"{_LEASE_EXPIRED} That was the last of {MAX_ATTEMPTS} attempts.",
            finished_at=now,
            locked_until=None,
            locked_by=None,
        )
        .returning(JobRequest.id, JobRequest.job_run_id)
        .execution_options(synchronize_session=False)
    ).all()
    _fail_runs(session, [stale.job_run_id for stale in exhausted if stale.job_run_id is not None], _LEASE_EXPIRED)
    for stale in exhausted:
        logger.warning("job request %s failed: %s", stale.id, _LEASE_EXPIRED, extra={"job_id": "job-requests"})

    queued = sa.and_(
        JobRequest.status == JobRequestStatus.QUEUED,
        sa.or_(JobRequest.locked_until.is_(None), JobRequest.locked_until <= now),
    )
    due = (
        sa.select(JobRequest.id)
        .where(sa.or_(queued, sa.and_(expired, JobRequest.attempts < MAX_ATTEMPTS)))
        .order_by(JobRequest.requested_at, JobRequest.id)
        .limit(1)
    )
    row = session.execute(
        sa.update(JobRequest)
        .where(JobRequest.id == _skip_locked(due, session).scalar_subquery())
        .values(
            status=JobRequestStatus.RUNNING,
            attempts=JobRequest.attempts + 1,
            locked_until=now + lease,
            locked_by=worker,
            started_at=now,
            finished_at=None,
            # The SET clause reads the row as it was: say why a running row is claimed again.
            error=sa.case((expired, _LEASE_EXPIRED), else_=JobRequest.error),
        )
        .returning(
            JobRequest.id, JobRequest.kind, JobRequest.params, JobRequest.requested_by, JobRequest.attempts,
            JobRequest.job_run_id,
        )
        .execution_options(synchronize_session=False)
    ).first()  # fmt: skip
    if row is None:
        return None
    if row.attempts > 1 and row.job_run_id is not None:
        _fail_runs(session, [row.job_run_id], _LEASE_EXPIRED)  # a no-op when that attempt ended itself
    return Claimed(id=row.id, kind=row.kind, params=row.params, requested_by=row.requested_by, attempts=row.attempts)


def renew_lease(session: Session, request_id: int, *, worker: str, until: dt.datetime) -> bool:
    """Extend ``worker``'s lease on a running request; False when it is not ``worker``'s any more."""
    renewed = session.execute(
        sa.update(JobRequest)
        .where(
            JobRequest.id == request_id,
            JobRequest.locked_by == worker,
            JobRequest.status == JobRequestStatus.RUNNING,
        )
        .values(locked_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


# --- running -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    """What a job may need besides its request: the alert settings of a scoring run, today's date."""

    alert_settings: AlertSettings
    today: dt.date
    worker: str
    cache_dir: Path | None = None  # where learning keeps the day's observations (None: no cache)


@dataclass(frozen=True, slots=True)
class Executed:
    """What a job produced: the JSON stored as the request's ``result``, and for a job recorded
    in ``job_runs`` its counts and parameters learned while running (a rescore's day)."""

    result: dict[str, Any]
    counts: dict[str, Any] | None = None
    run_params: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


Executor = Callable[[Session, Claimed, ExecutionContext], Executed]


def execute_rescore(session: Session, request: Claimed, context: ExecutionContext) -> Executed:
    """The scoring run an activation asks for; its result is the run's summary as the activation
    answered it before it was asynchronous."""
    del request
    summary = rescore_portfolio(session, today=context.today, alert_settings=context.alert_settings)
    result = run_summary_result(summary.as_of, summary.counts())
    return Executed(
        result=result,
        counts=summary.counts(),
        run_params={"as_of": summary.as_of.isoformat()},
        summary=summary.one_line(),
    )


def _learning_options(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "as_of": dt.date.fromisoformat(params["as_of"]),
        "horizon_days": int(params["horizon_days"]),
        "periodic_months": int(params["periodic_months"]),
        "min_per_class": int(params["min_per_class"]),
    }


def execute_suggestions(session: Session, request: Claimed, context: ExecutionContext) -> Executed:
    """A suggested config (measure discovery, walk-forward validated); the result is the body of
    ``Suggestions`` in app/schemas/analysis.py. The day's observations are cached in ``cache_dir``."""
    from app.services.suggestions import suggest_config

    answer = suggest_config(
        session, **_learning_options(request.params), cache_dir=context.cache_dir, today=context.today
    )
    result = suggestions_result(answer)
    return Executed(result=result, summary=f"suggested config, {result['new_version']['comment']}")


def execute_train_churn_model(session: Session, request: Claimed, context: ExecutionContext) -> Executed:
    """Train and store a churn model for the requester; the result is the body the training
    endpoint answered when it was synchronous."""
    from app.services.analysis import TrainSummary, train_churn_model  # scikit-learn, on demand

    trained = train_churn_model(
        session, actor=request.requested_by, **_learning_options(request.params), cache_dir=context.cache_dir,
        today=context.today,
    )  # fmt: skip
    summary = TrainSummary(trained)
    result = churn_model_result(trained)
    return Executed(result=result, counts=summary.counts(), summary=summary.one_line())


#: What runs each kind (tests replace entries with ``monkeypatch.setitem``).
EXECUTORS: dict[JobKind, Executor] = {
    JobKind.RESCORE: execute_rescore,
    JobKind.SUGGESTIONS: execute_suggestions,
    JobKind.TRAIN_CHURN_MODEL: execute_train_churn_model,
}


@dataclass(frozen=True, slots=True)
class WorkOutcome:
    """How one attempt ended. ``status`` is the request's status after it: ``succeeded``,
    ``failed``, ``queued`` (to be tried again), or None when this worker no longer held the
    request (its lease passed to another worker) or could not record the outcome (the lease then
    runs out and the request is claimed again)."""

    request_id: int
    kind: JobKind
    status: JobRequestStatus | None
    attempts: int
    error: str | None = None
    summary: str = ""

    @property
    def failed(self) -> bool:
        return self.status is not JobRequestStatus.SUCCEEDED

    def one_line(self) -> str:
        head = f"Job request {self.request_id} ({self.kind.value})"
        if self.status is JobRequestStatus.SUCCEEDED:
            return f"{head} succeeded: {self.summary}"
        if self.status is JobRequestStatus.FAILED:
            return f"{head} failed on attempt {self.attempts} of {MAX_ATTEMPTS}: {self.error}"
        if self.status is JobRequestStatus.QUEUED:
            return f"{head} failed on attempt {self.attempts} of {MAX_ATTEMPTS}, queued again: {self.error}"
        return f"{head} was left to its lease: {self.error}"


class _LeaseLost(Exception):
    """The request is no longer this worker's: roll the work back."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.message[:4000]
    return "".join(traceback.format_exception_only(exc)).strip()[:4000]


class JobRequestWorker:
    """Runs requested jobs: ``run_once`` claims one due request and runs it; ``run_due`` keeps
    going until nothing is due. One per process (the scheduler's ``job-requests`` job and
    ``flask jobs work``); any number may run against one database."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        alert_settings: AlertSettings,
        worker: str,
        clock: Callable[[], dt.datetime] = utcnow,
        lease: dt.timedelta = LEASE,
        renew_seconds: float = RENEW_SECONDS,
        executors: Mapping[JobKind, Executor] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.factory = factory
        self.cache_dir = cache_dir
        self.alert_settings = alert_settings
        self.worker = worker
        self.clock = clock
        self.lease = lease
        self.renew_seconds = renew_seconds
        self.executors = EXECUTORS if executors is None else executors

    def run_once(self) -> WorkOutcome | None:
        """Claim the oldest due request and run it; None when nothing is due."""
        with self.factory.begin() as session:
            claimed = claim(session, worker=self.worker, now=self.clock(), lease=self.lease)
        return None if claimed is None else self.run(claimed)

    def run_due(self, *, max_seconds: float | None = None, limit: int | None = None) -> list[WorkOutcome]:
        """Run due requests one after another until none is due, ``limit`` have run, or
        ``max_seconds`` have passed (checked between requests: a long job is never cut short)."""
        started = time.monotonic()
        outcomes: list[WorkOutcome] = []
        while limit is None or len(outcomes) < limit:
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                break
            outcome = self.run_once()
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    def run(self, claimed: Claimed) -> WorkOutcome:
        """Run a claimed request and record how it ended; never raises for a job's failure."""
        context = ExecutionContext(
            alert_settings=self.alert_settings, today=self.clock().date(), worker=self.worker, cache_dir=self.cache_dir
        )
        run_id: int | None = None
        try:
            job = JOB_NAMES.get(claimed.kind)
            if job is not None:
                run_id = self._start_run(claimed, job)
            with self._renewing(claimed), self.factory.begin() as session:
                executed = self.executors[claimed.kind](session, claimed, context)
                self._succeed(session, claimed, executed, run_id)
        except _LeaseLost:
            error = "Another worker took the request over (this worker's lease had passed); its work was rolled back."
            self._record_lost(run_id, error)
            logger.warning("job request %s: %s", claimed.id, error, extra={"job_id": "job-requests"})
            return WorkOutcome(claimed.id, claimed.kind, None, claimed.attempts, error)
        except Exception as exc:  # noqa: BLE001 - any job's failure is recorded (and logged); the worker carries on
            return self._fail(claimed, exc, run_id)
        except BaseException:  # Ctrl-C, SystemExit: hand the request back untried, then stop
            self._hand_back(claimed, run_id)
            raise
        logger.info(
            "job request %s (%s) succeeded: %s",
            claimed.id,
            claimed.kind.value,
            executed.summary,
            extra={"job_id": "job-requests", "job_request_id": claimed.id},
        )
        succeeded = JobRequestStatus.SUCCEEDED
        return WorkOutcome(claimed.id, claimed.kind, succeeded, claimed.attempts, None, executed.summary)

    def _mine(self, request_id: int) -> sa.ColumnElement[bool]:
        return sa.and_(
            JobRequest.id == request_id,
            JobRequest.locked_by == self.worker,
            JobRequest.status == JobRequestStatus.RUNNING,
        )

    def _start_run(self, claimed: Claimed, job: str) -> int:
        """The attempt's ``job_runs`` row, committed first (a crash leaves a visible running row)."""
        params: dict[str, Any] = {"job_request": claimed.id, "requested_by": claimed.requested_by}
        if claimed.kind is JobKind.RESCORE:
            activations = claimed.params.get("activations") or []
            params["trigger"] = "; ".join(f"activation of version {a['version']} by {a['by']}" for a in activations)
        else:
            params.update(claimed.params)
        params["runner"] = self.worker
        with self.factory.begin() as session:
            run = JobRun(job=job, params=params, status=JobStatus.RUNNING)
            session.add(run)
            session.flush()
            linked = session.execute(
                sa.update(JobRequest)
                .where(self._mine(claimed.id))
                .values(job_run_id=run.id)
                .execution_options(synchronize_session=False)
            )
            if not linked.rowcount:  # type: ignore[attr-defined]
                raise _LeaseLost
            return run.id

    def _succeed(self, session: Session, claimed: Claimed, executed: Executed, run_id: int | None) -> None:
        """In the work's transaction: the request succeeded (and its job run), or ``_LeaseLost``."""
        updated = session.execute(
            sa.update(JobRequest)
            .where(self._mine(claimed.id))
            .values(
                status=JobRequestStatus.SUCCEEDED,
                result=executed.result,
                error=None,
                finished_at=self.clock(),
                locked_until=None,
                locked_by=None,
            )
            .execution_options(synchronize_session=False)
        )
        if not updated.rowcount:  # type: ignore[attr-defined]
            raise _LeaseLost
        if run_id is not None:
            run = session.get_one(JobRun, run_id)
            run.status = JobStatus.SUCCEEDED
            run.counts = executed.counts or {}
            run.params = {**run.params, **executed.run_params}
            run.finished_at = utcnow()

    def _fail(self, claimed: Claimed, exc: Exception, run_id: int | None) -> WorkOutcome:
        """Record a failed attempt: ``failed`` for bad input (a domain error) or on the last
        attempt, else ``queued`` again after a delay. The work was rolled back already."""
        error = _describe(exc)
        final = isinstance(exc, DomainError) or claimed.attempts >= MAX_ATTEMPTS
        now = self.clock()
        values: dict[str, Any] = (
            {"status": JobRequestStatus.FAILED, "finished_at": now, "locked_until": None}
            if final
            else {"status": JobRequestStatus.QUEUED, "locked_until": now + RETRY_DELAY * claimed.attempts}
        )
        extra = {"job_id": "job-requests", "job_request_id": claimed.id}
        if isinstance(exc, DomainError):
            logger.warning("job request %s (%s) failed: %s", claimed.id, claimed.kind.value, error, extra=extra)
        else:
            logger.error(
                "job request %s (%s) failed on attempt %d", claimed.id, claimed.kind.value, claimed.attempts,
                exc_info=exc, extra=extra,
            )  # fmt: skip
        try:
            with self.factory.begin() as session:
                self._fail_run(session, run_id, error)
                updated = session.execute(
                    sa.update(JobRequest)
                    .where(self._mine(claimed.id))
                    .values(error=error, locked_by=None, **values)
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # the database is unreachable: the lease runs out, the request returns
            logger.exception("job request %s: could not record its failure", claimed.id, extra=extra)
            return WorkOutcome(claimed.id, claimed.kind, None, claimed.attempts, error)
        status = values["status"] if updated.rowcount else None  # type: ignore[attr-defined]
        return WorkOutcome(claimed.id, claimed.kind, status, claimed.attempts, error)

    def _fail_run(self, session: Session, run_id: int | None, error: str) -> None:
        if run_id is not None:
            session.execute(
                sa.update(JobRun)
                .where(JobRun.id == run_id)
                .values(status=JobStatus.FAILED, error=error, finished_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def _record_lost(self, run_id: int | None, error: str) -> None:
        with contextlib.suppress(Exception), self.factory.begin() as session:
            self._fail_run(session, run_id, error)

    def _hand_back(self, claimed: Claimed, run_id: int | None) -> None:
        """Interrupted: queue the request again without spending the attempt (best effort)."""
        with contextlib.suppress(Exception), self.factory.begin() as session:
            self._fail_run(session, run_id, "Interrupted; the request was queued again.")
            session.execute(
                sa.update(JobRequest)
                .where(self._mine(claimed.id))
                .values(
                    status=JobRequestStatus.QUEUED,
                    attempts=JobRequest.attempts - 1,
                    locked_until=None,
                    locked_by=None,
                )
                .execution_options(synchronize_session=False)
            )

    @contextlib.contextmanager
    def _renewing(self, claimed: Claimed) -> Iterator[None]:
        """Renew the lease every ``renew_seconds`` from a thread while the job runs (its own
        connection and transactions), so a job may take longer than the lease. Not on a single
        shared connection (in-memory SQLite), where the thread would commit the job's transaction."""
        bind = self.factory.kw.get("bind")
        if self.renew_seconds <= 0 or isinstance(getattr(bind, "pool", None), sa.pool.StaticPool):
            yield
            return
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.renew_seconds):
                try:
                    with self.factory.begin() as session:
                        kept = renew_lease(session, claimed.id, worker=self.worker, until=self.clock() + self.lease)
                except Exception:  # a lock held too long, a lost connection: try again next time
                    logger.warning("job request %s: lease renewal failed", claimed.id, exc_info=True)
                    continue
                if not kept:
                    return

        thread = threading.Thread(target=renew, name=f"job-request-{claimed.id}-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
