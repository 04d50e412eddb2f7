"""Schemas for job runs."""

from __future__ import annotations

from marshmallow import fields

from app.models import JobStatus
from app.schemas import ApiSchema, PageSchema, PaginationQuerySchema


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
