"""Schemas for the accounts endpoints: query strings in, accounts with health out."""

from __future__ import annotations

from marshmallow import fields, validate

from app.models import AccountStatus, BillingTerm
from app.schemas import ApiSchema, PageSchema, PaginationQuerySchema, scope_field
from app.schemas.watchlist import OverrideSummarySchema
from scoring.health import Band
from scoring.measures import Direction, MeasureGroup
from scoring.stage import LifecycleStage

#: The orders of the account list (``app.services.accounts`` maps each to its SQL ordering).
ACCOUNT_SORTS = ("name", "score", "-score", "arr", "-arr", "renewal_date")


class AccountListQuerySchema(PaginationQuerySchema):
    owner = fields.String(metadata={"description": "Only accounts owned by this CSM."})
    scope = scope_field()
    segment = fields.String()
    status = fields.Enum(AccountStatus, by_value=True)
    stage = fields.Enum(LifecycleStage, by_value=True)
    band = fields.Enum(Band, by_value=True)
    sort = fields.String(
        load_default="name",
        validate=validate.OneOf(sorted(ACCOUNT_SORTS)),
        metadata={"description": "Order: name, score, -score, arr, -arr, renewal_date."},
    )


class AccountDetailQuerySchema(ApiSchema):
    history_days = fields.Integer(
        load_default=90, validate=validate.Range(min=1, max=3660), metadata={"description": "Days of score history."}
    )


class DriverSchema(ApiSchema):
    measure = fields.String()
    label = fields.String()
    group = fields.Enum(MeasureGroup, by_value=True)
    direction = fields.Enum(Direction, by_value=True)
    raw_value = fields.Float(allow_none=True)
    score = fields.Float(allow_none=True, metadata={"description": "The measure's 0-100 score; null: no data."})
    weight = fields.Float(metadata={"description": "Share of the weight that has data (0-1)."})
    contribution = fields.Float(
        allow_none=True, metadata={"description": "Signed points relative to the neutral score."}
    )


class HealthSchema(ApiSchema):
    day = fields.Date()
    score = fields.Float(allow_none=True, metadata={"description": "0-100; null when no measure has data."})
    band = fields.Enum(Band, by_value=True, allow_none=True)
    stage = fields.Enum(LifecycleStage, by_value=True)
    completeness = fields.Float(metadata={"description": "Share of the stage's weight backed by data (0-1)."})
    score_change_7d = fields.Float(allow_none=True)
    score_change_30d = fields.Float(allow_none=True)
    config_version = fields.Integer()


class HealthWithDriversSchema(HealthSchema):
    drivers = fields.List(fields.Nested(DriverSchema))


class HistoryPointSchema(ApiSchema):
    day = fields.Date()
    score = fields.Float(allow_none=True)
    band = fields.Enum(Band, by_value=True, allow_none=True)
    stage = fields.Enum(LifecycleStage, by_value=True)
    completeness = fields.Float()
    config_version = fields.Integer()
    churn_probability = fields.Float(
        allow_none=True, metadata={"description": "The churn model's probability that day (null: no model then)."}
    )
    expected_arr_at_risk = fields.Float(allow_none=True, metadata={"description": "churn_probability x ARR."})
    churn_model_version = fields.Integer(allow_none=True)


class AccountSchema(ApiSchema):
    id = fields.Integer()
    external_id = fields.String()
    name = fields.String()
    owner = fields.String(allow_none=True)
    segment = fields.String(allow_none=True)
    arr = fields.Float()
    contract_start = fields.Date()
    renewal_date = fields.Date(allow_none=True)
    seats_purchased = fields.Integer()
    billing_term = fields.Enum(BillingTerm, by_value=True, allow_none=True)
    plan = fields.String(allow_none=True)
    status = fields.Enum(AccountStatus, by_value=True)
    health = fields.Nested(HealthSchema, allow_none=True)


class ChurnReasonSchema(ApiSchema):
    """One reason behind an account's churn probability: a measure (its value and whether it had
    data together) or the lifecycle stage, and how far it moves the calibrated log-odds of churn."""

    feature = fields.String(metadata={"description": "A measure's name, or 'stage'."})
    value = fields.Float(
        allow_none=True, metadata={"description": "The measure's raw value (null: no data, or the stage)."}
    )
    contribution = fields.Float(
        metadata={"description": "Change in the log-odds of churn against a typical account (positive: more risk)."}
    )
    effect = fields.String(metadata={"description": "raises_risk or lowers_risk."})


class AccountDetailSchema(AccountSchema):
    health = fields.Nested(HealthWithDriversSchema, allow_none=True)
    override = fields.Nested(
        OverrideSummarySchema, allow_none=True, metadata={"description": "The live band override."}
    )
    effective_band = fields.Enum(
        Band,
        by_value=True,
        allow_none=True,
        metadata={"description": "The live override's band, else the computed band."},
    )
    history = fields.List(fields.Nested(HistoryPointSchema))
    churn_probability = fields.Float(
        allow_none=True,
        metadata={"description": "Chance of churning within the churn model's horizon (0-1); null: see the note."},
    )
    expected_arr_at_risk = fields.Float(allow_none=True, metadata={"description": "churn_probability x ARR."})
    churn_model_version = fields.Integer(allow_none=True)
    churn_reasons = fields.List(
        fields.Nested(ChurnReasonSchema),
        allow_none=True,
        metadata={
            "description": "The churn model's top reasons for this probability, largest first (null: no probability). "
            "docs/learning.md says how they are computed."
        },
    )
    churn_probability_note = fields.String(allow_none=True, metadata={"description": "Why the probability is null."})


class AccountPageSchema(PageSchema):
    items = fields.List(fields.Nested(AccountSchema))
