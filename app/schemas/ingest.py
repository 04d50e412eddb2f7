"""Schemas of the push API: its query, its answers, and the quarantine of pulled records. What a
record of each kind must hold is ``app.records.schemas``."""

from __future__ import annotations

from marshmallow import fields, validate

from app.schemas import ApiSchema, PageSchema, PaginationQuerySchema


class RejectedRecordSchema(ApiSchema):
    index = fields.Integer(metadata={"description": "Position of the record in the posted array."})
    errors = fields.Dict(metadata={"description": "Field-level messages."})


class IngestResultSchema(ApiSchema):
    kind = fields.String()
    received = fields.Integer()
    landed = fields.Integer(metadata={"description": "Records inserted or updated."})
    rejected = fields.List(fields.Nested(RejectedRecordSchema))


class QuarantineFilterSchema(ApiSchema):
    source = fields.String(metadata={"description": "Only records pulled from this source."})
    kind = fields.String(metadata={"description": "Only records of this kind."})


class QuarantineQuerySchema(PaginationQuerySchema, QuarantineFilterSchema):
    pass


class QuarantinedRecordSchema(ApiSchema):
    id = fields.Integer()
    source = fields.String()
    kind = fields.String()
    payload = fields.Dict(metadata={"description": 'The record as pulled ({"raw": ...} when it could not be parsed).'})
    errors = fields.Dict(metadata={"description": "Why it was rejected, field by field."})
    quarantined_at = fields.DateTime()
    retried_at = fields.DateTime(allow_none=True)
    retries = fields.Integer()


class QuarantinePageSchema(PageSchema):
    items = fields.List(fields.Nested(QuarantinedRecordSchema))


class RetryResultSchema(ApiSchema):
    retried = fields.Integer()
    landed = fields.Integer()
    still_rejected = fields.Integer()


class IngestQuerySchema(ApiSchema):
    source = fields.String(
        load_default="api",
        validate=validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{0,63}$", error="Not a source name."),
        metadata={"description": "Where the records come from: part of their natural key (source + external id)."},
    )


class SegmentResultSchema(ApiSchema):
    received = fields.Integer()
    landed = fields.Integer(metadata={"description": "Calls applied."})
    ignored = fields.Integer(metadata={"description": "Valid calls with nothing to apply (page, screen, no groupId)."})
    duplicates = fields.Integer(metadata={"description": "Calls already applied (same messageId)."})
    rejected = fields.List(fields.Nested(RejectedRecordSchema))
