"""Schemas for job runs and job requests."""

from __future__ import annotations

from typing import Any

from flask import url_for
from marshmallow import fields

from app.models import JobKind, JobRequest, JobRequestStatus, JobStatus
from app.schemas import ApiSchema, PageSchema, PaginationQuerySchema
from app.schemas.plays import UtcDateTime


class JobRunQuerySchema(PaginationQuerySchema):
    job = fields.String(metadata={"description": "Only runs of this job (for example score-daily)."})
    status = fields.Enum(JobStatus, by_value=True)


class JobRunSchema(ApiSchema):
    id = fields.Integer()
    job = fields.String()
    status = fields.Enum(JobStatus, by_value=True)
    params = fields.Dict()
    counts = fields.Dict()
    error = fields.String(allow_none=True)
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class JobRunPageSchema(PageSchema):
    items = fields.List(fields.Nested(JobRunSchema))


# --- job requests ---------------------------------------------------------------------------------


#: The header of a 202 that queued a job request, as documented (``@bp.response(202, ..., headers=LOCATION)``).
LOCATION = {
    "Location": {
        "description": "The job request to follow: /api/v1/jobs/requests/<id>.",
        "schema": {"type": "string"},
    }
}


def job_request_url(request_id: int) -> str:
    """Where a job request is followed: ``/api/v1/jobs/requests/<id>``."""
    return url_for("jobs.job_request", request_id=request_id)


class JobRequestQuerySchema(PaginationQuerySchema):
    kind = fields.Enum(JobKind, by_value=True, metadata={"description": "Only requests of this kind."})
    status = fields.Enum(JobRequestStatus, by_value=True)


class JobRequestRefSchema(ApiSchema):
    """A job request in brief: where to follow it."""

    id = fields.Integer()
    status = fields.Enum(
        JobRequestStatus,
        by_value=True,
        metadata={"description": "queued, running, succeeded or failed (queued again after a failed attempt)."},
    )
    url = fields.Function(
        lambda request: job_request_url(request.id),
        metadata={"type": "string", "description": "GET it to follow the request."},
    )


class JobRequestSummarySchema(JobRequestRefSchema):
    """A job request without its result (in lists)."""

    kind = fields.Enum(JobKind, by_value=True)
    params = fields.Dict(metadata={"description": "What the job was asked to do (a rescore: the activations)."})
    requested_by = fields.String()
    requested_at = UtcDateTime()
    attempts = fields.Integer(metadata={"description": "Attempts started (at most 3)."})
    started_at = UtcDateTime(allow_none=True, metadata={"description": "The latest attempt's start."})
    finished_at = UtcDateTime(allow_none=True)
    error = fields.String(
        allow_none=True, metadata={"description": "Why it failed (or why the last attempt failed, when queued again)."}
    )
    job_run_id = fields.Integer(
        allow_none=True, metadata={"description": "The latest attempt's job run (rescore, train-churn-model)."}
    )


class JobRequestSchema(JobRequestSummarySchema):
    result = fields.Method(
        "_result",
        metadata={
            "type": "object",
            "nullable": True,
            "description": "When succeeded: the job's answer (the body the endpoint that queued it used to "
            "return); null otherwise.",
        },
    )

    def _result(self, request: JobRequest) -> dict[str, Any] | None:
        return request.result if request.status is JobRequestStatus.SUCCEEDED else None


class JobRequestPageSchema(PageSchema):
    items = fields.List(
        fields.Nested(JobRequestSummarySchema),
        metadata={"description": "Without their results: GET one request for its result."},
    )
