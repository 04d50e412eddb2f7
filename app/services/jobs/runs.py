"""Recording job runs: a row when a job starts, and its end, status, counts or error when it stops."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.models import JobRun, JobStatus
from app.services.common import page_of

logger = logging.getLogger(__name__)
T = TypeVar("T")


def run_recorded(
    factory: sessionmaker[Session],
    job: str,
    params: dict[str, Any],
    work: Callable[[Session], T],
    counts: Callable[[T], dict[str, Any]],
) -> T:
    """Run ``work`` in its own transaction, recorded in ``job_runs`` in separate transactions.

    The start row is committed first, so a crash leaves a visible ``running`` row; a failure
    rolls the work back, records the error and re-raises.
    """
    with factory.begin() as session:
        run = JobRun(job=job, params=params, status=JobStatus.RUNNING)
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        with factory.begin() as session:
            result = work(session)
    except Exception as exc:
        with factory.begin() as session:
            failed = session.get_one(JobRun, run_id)
            failed.status = JobStatus.FAILED
            failed.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
            failed.finished_at = utcnow()
        logger.exception("job %s failed", job, extra={"job_id": job, "job_run_id": run_id})
        raise
    with factory.begin() as session:
        finished = session.get_one(JobRun, run_id)
        finished.status = JobStatus.SUCCEEDED
        finished.counts = counts(result)
        finished.finished_at = utcnow()
    logger.info("job %s succeeded", job, extra={"job_id": job, "job_run_id": run_id})
    return result


def last_runs(session: Session) -> dict[str, JobRun]:
    """The most recent run of each job."""
    newest = sa.select(JobRun.job, sa.func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery()
    runs = session.scalars(sa.select(JobRun).join(newest, JobRun.id == newest.c.id))
    return {run.job: run for run in runs}


def list_job_runs(
    session: Session, *, job: str | None, status: str | None, page: int, per_page: int
) -> tuple[list[JobRun], int]:
    """One page of job runs, newest first."""
    query = sa.select(JobRun)
    if job is not None:
        query = query.where(JobRun.job == job)
    if status is not None:
        query = query.where(JobRun.status == status)
    statement, total = page_of(session, query, order_by=(JobRun.id.desc(),), page=page, per_page=per_page)
    return list(session.scalars(statement)), total


#: The reason recorded on a run whose scheduler stopped before finishing it.
ORPHANED = "The scheduler running it ({runner}) stopped before it finished: its lease passed to {leader}."


def fail_orphaned_runs(session: Session, *, leader: str, now: dt.datetime) -> list[int]:
    """Mark failed, with the reason, every ``running`` run that a scheduler process other than
    ``leader`` (the lease holder now) started: that process lost its lease, so it died or was cut
    off, and its row would otherwise say ``running`` forever. Runs of job requests (they have
    leases of their own, see ``app.services.jobs.requests``) and of the CLI are left alone.
    Returns the ids marked; never commits."""
    running = session.execute(sa.select(JobRun.id, JobRun.params).where(JobRun.status == JobStatus.RUNNING)).all()
    orphaned = {
        run_id: str(params.get("runner"))
        for run_id, params in running
        if isinstance(params, dict)
        and params.get("runner") not in {None, "cli", leader}
        and "job_request" not in params
    }
    for run_id, runner in orphaned.items():
        session.execute(
            sa.update(JobRun)
            .where(JobRun.id == run_id, JobRun.status == JobStatus.RUNNING)
            .values(status=JobStatus.FAILED, error=ORPHANED.format(runner=runner, leader=leader), finished_at=now)
        )
    if orphaned:
        logger.warning("marked %d orphaned job runs failed: %s", len(orphaned), sorted(orphaned))
    return sorted(orphaned)
