"""What a record of each kind must hold: one schema per data kind, each record validated on its
own. Pushed records (``POST /api/v1/ingest/<kind>``) and pulled ones (``app.sources``) go through
the same rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from app.models import (
    AccountStatus,
    BillingTerm,
    ContactRole,
    FeedbackKind,
    GoalStatus,
    OutcomeKind,
    TicketPriority,
    TicketStatus,
)
from app.validation import StrictSchema

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


#: The longest external id a record may name (an account's, a contact's, a ticket's...).
MAX_EXTERNAL_ID = 128


def _external_id(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=MAX_EXTERNAL_ID), **kwargs)


NON_NEGATIVE = validate.Range(min=0)


class AccountRecordSchema(StrictSchema):
    external_id = _external_id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    owner = fields.String(allow_none=True, validate=validate.Length(max=255))
    segment = fields.String(allow_none=True, validate=validate.Length(max=64))
    arr = fields.Float(load_default=0.0, validate=NON_NEGATIVE, allow_nan=False)
    contract_start = fields.Date(required=True)
    renewal_date = fields.Date(allow_none=True)
    seats_purchased = fields.Integer(load_default=0, strict=True, validate=NON_NEGATIVE)
    billing_term = fields.Enum(
        BillingTerm,
        by_value=True,
        allow_none=True,
        metadata={"description": "How often the contract renews: monthly, quarterly, annual or multi_year."},
    )
    plan = fields.String(allow_none=True, validate=validate.Length(max=64))
    status = fields.Enum(AccountStatus, by_value=True, load_default=AccountStatus.ACTIVE)
    effective_on = fields.Date(
        allow_none=True,
        validate=_not_future_day,
        metadata={
            "description": "The day these values took effect (default: the day they are ingested). "
            "Renewal date, billing term, seats, plan, owner, ARR, segment and contract start are "
            "kept as dated history, so a past day is scored with the values in force that day."
        },
    )

    @validates_schema
    def _renewal_after_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("renewal_date") and data["renewal_date"] < data["contract_start"]:
            raise ValidationError("Must not be before contract_start.", "renewal_date")


class _AccountRecordSchema(StrictSchema):
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
