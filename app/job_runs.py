"""Recording job runs: a row when a job starts, and its end, status, counts or error when it stops."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.models import JobRun, JobStatus

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
