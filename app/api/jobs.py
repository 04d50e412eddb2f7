"""Job runs: what the scheduler (and `flask jobs run`) did, when, and how it ended."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from app.auth import READ, access
from app.db import get_session
from app.job_runs import list_job_runs
from app.schemas.jobs import JobRunPageSchema, JobRunQuerySchema

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs", description="Scheduled jobs and their runs")


@bp.get("/runs")
@access(*READ)
@bp.arguments(JobRunQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, JobRunPageSchema)
def runs(page: int, per_page: int, job: str | None = None, status: str | None = None) -> dict[str, Any]:
    """Job runs, newest first: job, status, start, end, counts and error."""
    session = get_session()
    with session.begin():
        items, total = list_job_runs(session, job=job, status=status, page=page, per_page=per_page)
    return {"items": items, "page": page, "per_page": per_page, "total": total}
