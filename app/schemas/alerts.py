"""Alerts: the outbox as seen by people (list, one alert, retry, acknowledge) and the routing document."""

from __future__ import annotations

import datetime as dt

from marshmallow import fields, validate

from alerts.base import AlertKind, ChannelType
from app.models import AlertStatus
from app.schemas import MAX_INT, ApiSchema, PageSchema, PaginationQuerySchema, scope_field
from app.schemas.plays import UtcDateTime


class AlertQuerySchema(PaginationQuerySchema):
    status = fields.String(validate=validate.OneOf([s.value for s in AlertStatus]))
    kind = fields.String(validate=validate.OneOf([k.value for k in AlertKind]))
    channel = fields.String(validate=validate.OneOf([c.value for c in ChannelType]))
    account = fields.Integer(validate=validate.Range(min=1, max=MAX_INT), metadata={"description": "An account id."})
    recipient = fields.String(validate=validate.Length(min=1, max=255))
    digest = fields.Integer(
        validate=validate.Range(min=1, max=MAX_INT),
        metadata={"description": "The id of a digest: the held alerts it carried (its link to the full list)."},
    )
    since = fields.AwareDateTime(
        default_timezone=dt.UTC, metadata={"description": "Created at or after this time (ISO 8601; UTC if no offset)."}
    )
    scope = scope_field()


class AlertSchema(ApiSchema):
    id = fields.Integer()
    dedupe_key = fields.String()
    kind = fields.String()
    status = fields.String(
        metadata={"description": "pending (queued or retrying), sent, dead (gave up), held (over the daily "
                  "budget, waiting for the digest), digested (carried by a digest)"}
    )  # fmt: skip
    channel = fields.String()
    delivered_via = fields.String(allow_none=True, metadata={"description": "log when the channel is not configured"})
    recipient = fields.String()
    recipient_user = fields.String(allow_none=True)
    account_id = fields.Integer(allow_none=True)
    account_name = fields.String(allow_none=True)
    day = fields.Date()
    severity = fields.String(allow_none=True)
    route_ids = fields.List(fields.String(), metadata={"description": "The routes that matched the account's events."})
    event_ids = fields.List(fields.Integer())
    play_run_ids = fields.List(fields.Integer())
    requires_ack = fields.Boolean()
    acknowledged_at = UtcDateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    escalated_at = UtcDateTime(allow_none=True)
    escalation_of = fields.Integer(allow_none=True)
    digest_id = fields.Integer(allow_none=True)
    attempts = fields.Integer()
    max_attempts = fields.Integer()
    next_attempt_at = UtcDateTime()
    last_error = fields.String(allow_none=True)
    sent_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    message = fields.Dict(metadata={"description": "The message as queued (what every channel renders)."})


class AlertPageSchema(PageSchema):
    items = fields.List(fields.Nested(AlertSchema))


class RoutingSchema(ApiSchema):
    version = fields.Integer(metadata={"description": "0: the defaults file, never edited."})
    document = fields.Dict(metadata={"description": "The routing document (see docs/alerts.md)."})
    author = fields.String(allow_none=True)
    comment = fields.String(allow_none=True)
    created_at = UtcDateTime(allow_none=True)


class RoutingUpdateSchema(ApiSchema):
    version = fields.Integer(
        required=True,
        validate=validate.Range(min=0),
        metadata={"description": "The version this change is based on (the current one); 409 otherwise."},
    )
    document = fields.Dict(required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=2000))


class AckSchema(ApiSchema):
    pass
