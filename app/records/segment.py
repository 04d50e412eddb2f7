"""Segment-spec calls (identify, group, track) as CS trackers send them; extra Segment fields are ignored.
The push API's Segment endpoint validates each call with these, one by one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from app.validation import SafeTextSchema

SEGMENT_TYPES = ("identify", "group", "track", "page", "screen", "alias")


class SegmentContextSchema(SafeTextSchema):
    class Meta:
        unknown = EXCLUDE  # Segment's context carries library, ip, locale...: none of our business

    groupId = fields.String(validate=validate.Length(min=1, max=128))


class SegmentCallSchema(SafeTextSchema):
    """One call of the Segment spec. Only what the service uses is read; the rest is left out."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(SEGMENT_TYPES))
    messageId = fields.String(validate=validate.Length(min=1, max=255))
    timestamp = fields.AwareDateTime(default_timezone=dt.UTC)
    userId = fields.String(validate=validate.Length(min=1, max=255))
    anonymousId = fields.String(validate=validate.Length(min=1, max=255))
    groupId = fields.String(validate=validate.Length(min=1, max=128))
    event = fields.String(validate=validate.Length(min=1, max=200))
    traits = fields.Dict(keys=fields.String(), load_default=dict)
    properties = fields.Dict(keys=fields.String(), load_default=dict)
    context = fields.Nested(SegmentContextSchema, load_default=dict)

    @validates_schema
    def _required_by_type(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        if data["type"] == "group" and not data.get("groupId"):
            errors["groupId"] = ["A group call needs groupId."]
        if data["type"] == "track" and not data.get("event"):
            errors["event"] = ["A track call needs event."]
        if data["type"] in {"identify", "track"} and not (data.get("userId") or data.get("anonymousId")):
            errors["userId"] = ["Needs userId or anonymousId."]
        if errors:
            raise ValidationError(errors)


class GroupTraitsSchema(SafeTextSchema):
    """The group traits that update an account (Segment's reserved names and common aliases)."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(validate=validate.Length(min=1, max=255))
    plan = fields.String(validate=validate.Length(max=64))
    industry = fields.String()
    seats = fields.Integer(strict=True, validate=validate.Range(min=0))
    employees = fields.Integer(strict=True, validate=validate.Range(min=0))
    arr = fields.Float(validate=validate.Range(min=0), allow_nan=False)
    renewal_date = fields.Date()
    contract_start = fields.Date()
    owner = fields.String(validate=validate.Length(max=255))
