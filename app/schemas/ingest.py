"""Schemas for pushed records, one per data kind; each record is validated on its own."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from app.models import (
    AccountStatus,
    ContactRole,
    FeedbackKind,
    GoalStatus,
    OutcomeKind,
    TicketPriority,
    TicketStatus,
)
from app.schemas import MAX_INT, ApiSchema, PageSchema, PaginationQuerySchema

#: Dates up to one day ahead of UTC are accepted: a customer's "today" may already be tomorrow in UTC.
FUTURE_SLACK = dt.timedelta(days=1)
FEEDBACK_RANGES = {
    FeedbackKind.NPS: (0.0, 10.0),
    FeedbackKind.CSAT: (1.0, 5.0),
    FeedbackKind.CSM_SENTIMENT: (1.0, 5.0),
}


#: Product signal names: what usage records' ``signals`` and account events may be called.
SIGNAL_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}\Z"


def _not_future_day(value: dt.date) -> None:
    if value > dt.datetime.now(dt.UTC).date() + FUTURE_SLACK:
        raise ValidationError("Must not be in the future.")


def _not_future_time(value: dt.datetime) -> None:
    if value > dt.datetime.now(dt.UTC) + FUTURE_SLACK:
        raise ValidationError("Must not be in the future.")


def _external_id(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=128), **kwargs)


NON_NEGATIVE = validate.Range(min=0)


class AccountRecordSchema(ApiSchema):
    external_id = _external_id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    owner = fields.String(allow_none=True, validate=validate.Length(max=255))
    segment = fields.String(allow_none=True, validate=validate.Length(max=64))
    arr = fields.Float(load_default=0.0, validate=NON_NEGATIVE, allow_nan=False)
    contract_start = fields.Date(required=True)
    renewal_date = fields.Date(allow_none=True)
    seats_purchased = fields.Integer(load_default=0, strict=True, validate=NON_NEGATIVE)
    status = fields.Enum(AccountStatus, by_value=True, load_default=AccountStatus.ACTIVE)

    @validates_schema
    def _renewal_after_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("renewal_date") and data["renewal_date"] < data["contract_start"]:
            raise ValidationError("Must not be before contract_start.", "renewal_date")


class _AccountRecordSchema(ApiSchema):
    """A record that belongs to an account, named by the account's external id."""

    account = _external_id(required=True, metadata={"description": "The account's external id."})


class ContactRecordSchema(_AccountRecordSchema):
    external_id = _external_id(required=True)
    name = fields.String(allow_none=True, validate=validate.Length(max=255))
    email = fields.Email(allow_none=True)
    role = fields.Enum(ContactRole, by_value=True, required=True)
    added_on = fields.Date(required=True, validate=_not_future_day)
    removed_on = fields.Date(allow_none=True, validate=_not_future_day)

    @validates_schema
    def _removed_after_added(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("removed_on") and data["removed_on"] < data["added_on"]:
            raise ValidationError("Must not be before added_on.", "removed_on")


class UsageRecordSchema(_AccountRecordSchema):
    day = fields.Date(required=True, validate=_not_future_day)
    active_users = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)
    logins = fields.Integer(load_default=0, strict=True, validate=NON_NEGATIVE)
    key_feature_uses = fields.Integer(load_default=0, strict=True, validate=NON_NEGATIVE)
    signals = fields.Dict(
        keys=fields.String(validate=validate.Regexp(SIGNAL_NAME_PATTERN, error="Not a signal name.")),
        values=fields.Integer(strict=True, validate=validate.Range(min=1)),
        load_default=dict,
        metadata={"description": 'Named product signals that day, e.g. {"data_export": 2}.'},
    )


class LicenseRecordSchema(_AccountRecordSchema):
    day = fields.Date(required=True, validate=_not_future_day)
    seats_purchased = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)
    seats_assigned = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)
    seats_active = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)


class TicketRecordSchema(_AccountRecordSchema):
    external_id = _external_id(required=True)
    subject = fields.String(allow_none=True, validate=validate.Length(max=500))
    priority = fields.Enum(TicketPriority, by_value=True, required=True)
    status = fields.Enum(TicketStatus, by_value=True, required=True)
    opened_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC, validate=_not_future_time)
    closed_at = fields.AwareDateTime(allow_none=True, default_timezone=dt.UTC, validate=_not_future_time)
    sla_breached = fields.Boolean(load_default=False)

    @validates_schema
    def _closed_after_opened(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("closed_at") and data["closed_at"] < data["opened_at"]:
            raise ValidationError("Must not be before opened_at.", "closed_at")


class FeedbackRecordSchema(_AccountRecordSchema):
    external_id = _external_id(required=True)
    kind = fields.Enum(FeedbackKind, by_value=True, required=True)
    day = fields.Date(required=True, validate=_not_future_day)
    score = fields.Float(required=True, allow_nan=False)
    respondent = fields.String(allow_none=True, validate=validate.Length(max=255))
    comment = fields.String(allow_none=True, validate=validate.Length(max=10_000))

    @validates_schema
    def _score_in_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = FEEDBACK_RANGES[data["kind"]]
        if not low <= data["score"] <= high:
            raise ValidationError(f"A {data['kind'].value} score must be between {low:g} and {high:g}.", "score")
        if data["kind"] is FeedbackKind.NPS and not float(data["score"]).is_integer():
            raise ValidationError("An NPS score is a whole number from 0 to 10.", "score")


class GoalRecordSchema(_AccountRecordSchema):
    external_id = _external_id(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=500))
    status = fields.Enum(GoalStatus, by_value=True, required=True)
    created_on = fields.Date(required=True, validate=_not_future_day)
    due_on = fields.Date(allow_none=True)
    achieved_on = fields.Date(allow_none=True, validate=_not_future_day)

    @validates_schema
    def _achieved_has_a_date(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["status"] is GoalStatus.ACHIEVED and not data.get("achieved_on"):
            raise ValidationError("An achieved goal needs achieved_on.", "achieved_on")


class OutcomeRecordSchema(_AccountRecordSchema):
    external_id = _external_id(required=True)
    kind = fields.Enum(OutcomeKind, by_value=True, required=True)
    day = fields.Date(required=True, validate=_not_future_day)
    arr_change = fields.Float(allow_none=True, allow_nan=False)
    note = fields.String(allow_none=True, validate=validate.Length(max=10_000))


class AccountEventRecordSchema(_AccountRecordSchema):
    """A flat "account event" as trackers send them: it counts as a named product signal that day."""

    event = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_]{0,63}$", error="Use lowercase letters, digits and _ (a signal name)."
        ),
    )
    day = fields.Date(required=True, validate=_not_future_day)
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1))


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


# --- Fast paths --------------------------------------------------------------------------------------
# Daily kinds arrive by the hundred thousand. A fast loader accepts only records that are plainly
# valid (exact types, ISO dates, in range) and returns what the schema would have loaded; anything
# else returns None and goes through the schema, which gives the exact messages. So a fast loader
# never accepts what the schema refuses (tests/unit/test_ingest_fast.py checks that property).

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_SIGNAL_NAME = re.compile(SIGNAL_NAME_PATTERN)


def latest_accepted_day() -> dt.date:
    """The newest day a record may carry (today in UTC plus the slack)."""
    return dt.datetime.now(dt.UTC).date() + FUTURE_SLACK


def _day(value: Any, latest: dt.date) -> dt.date | None:
    if type(value) is dt.date:  # from a SQL source; the schema's Date field takes it as it is
        return value if value <= latest else None
    if type(value) is not str or not _ISO_DAY.match(value):
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return day if day <= latest else None


def _count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_INT


def _account(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= 128


_USAGE_FIELDS = frozenset({"account", "day", "active_users", "logins", "key_feature_uses", "signals"})
_LICENSE_FIELDS = frozenset({"account", "day", "seats_purchased", "seats_assigned", "seats_active"})


def fast_usage(record: Any, latest: dt.date) -> dict[str, Any] | None:
    """A plainly valid usage record as ``UsageRecordSchema`` loads it, or None."""
    if type(record) is not dict or not record.keys() <= _USAGE_FIELDS:
        return None
    account, active = record.get("account"), record.get("active_users")
    logins, key_uses = record.get("logins", 0), record.get("key_feature_uses", 0)
    day = _day(record.get("day"), latest)
    if day is None or not (_account(account) and _count(active) and _count(logins) and _count(key_uses)):
        return None
    if "signals" not in record:
        signals = {}
    elif type(signals := record["signals"]) is not dict or not all(
        type(name) is str and _SIGNAL_NAME.match(name) and type(count) is int and 1 <= count <= MAX_INT
        for name, count in signals.items()
    ):
        return None
    else:
        signals = dict(signals)
    return {
        "account": account,
        "day": day,
        "active_users": active,
        "logins": logins,
        "key_feature_uses": key_uses,
        "signals": signals,
    }


def fast_license(record: Any, latest: dt.date) -> dict[str, Any] | None:
    """A plainly valid license snapshot as ``LicenseRecordSchema`` loads it, or None."""
    if type(record) is not dict or record.keys() != _LICENSE_FIELDS:
        return None
    day = _day(record["day"], latest)
    seats = (record["seats_purchased"], record["seats_assigned"], record["seats_active"])
    if day is None or not _account(record["account"]) or not all(_count(v) for v in seats):
        return None
    return {
        "account": record["account"],
        "day": day,
        "seats_purchased": seats[0],
        "seats_assigned": seats[1],
        "seats_active": seats[2],
    }


FAST_LOADERS = {"usage": fast_usage, "licenses": fast_license}


class SegmentResultSchema(ApiSchema):
    received = fields.Integer()
    landed = fields.Integer(metadata={"description": "Calls applied."})
    ignored = fields.Integer(metadata={"description": "Valid calls with nothing to apply (page, screen, no groupId)."})
    duplicates = fields.Integer(metadata={"description": "Calls already applied (same messageId)."})
    rejected = fields.List(fields.Nested(RejectedRecordSchema))
