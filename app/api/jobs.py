"""Job runs: what the scheduler (and `flask jobs run`) did, when, and how it ended; and job
requests: the work an API call queued (a rescore after an activation, suggestions, churn-model
training), followed until its result is there."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from app.auth import ADMIN, READ, access
from app.db import get_session
from app.models import JobKind, JobRequest, JobRequestStatus
from app.schemas.jobs import (
    JobRequestPageSchema,
    JobRequestQuerySchema,
    JobRequestSchema,
    JobRunPageSchema,
    JobRunQuerySchema,
)
from app.schemas.plays import NoQuerySchema
from app.services.jobs.requests import get_job_request, list_job_requests
from app.services.jobs.runs import list_job_runs

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs", description="Scheduled jobs, their runs and job requests")

#: Who may read job requests: the roles of the endpoints that queue them (activation, suggestions
#: and training are admin-only, and a request's result is what those answer). A kind queued by a
#: wider role would need a per-kind check here; tests/api/test_job_requests_api.py holds them equal.
REQUEST_READERS = ADMIN


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


@bp.get("/requests")
@access(*REQUEST_READERS)
@bp.arguments(JobRequestQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, JobRequestPageSchema)
def job_requests(
    page: int, per_page: int, kind: JobKind | None = None, status: JobRequestStatus | None = None
) -> dict[str, Any]:
    """Job requests, newest first, without their results: kind, status, who asked and when,
    attempts, start, end, error."""
    session = get_session()
    with session.begin():
        items, total = list_job_requests(session, kind=kind, status=status, page=page, per_page=per_page)
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/requests/<int:request_id>")
@access(*REQUEST_READERS)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, JobRequestSchema)
@bp.alt_response(404, description="No such job request")
def job_request(_query: dict[str, Any], request_id: int) -> JobRequest:
    """One job request: its status (queued, running, succeeded, failed), attempts, start, end and
    error, and its result once it succeeded. Poll it after a 202 (its URL is the Location)."""
    session = get_session()
    with session.begin():
        return get_job_request(session, request_id)
