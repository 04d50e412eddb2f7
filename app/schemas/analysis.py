"""Schemas of learning from outcomes: suggested weights, the churn model and event lift."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from app.schemas import ApiSchema
from app.schemas.plays import UtcDateTime


class _LearningRequestSchema(ApiSchema):
    horizon_days = fields.Integer(
        load_default=90,
        strict=True,
        validate=validate.Range(min=7, max=730),
        metadata={"description": "Days between an observation and the churn it should foresee."},
    )
    periodic = fields.Boolean(
        load_default=True,
        metadata={"description": "Add monthly observations of every customer (churned within the horizon or not)."},
    )
    periodic_months = fields.Integer(
        load_default=12,
        strict=True,
        validate=validate.Range(min=1, max=60),
        metadata={"description": "How many monthly observation dates, the last one horizon_days before as_of."},
    )
    min_per_class = fields.Integer(
        load_default=30,
        strict=True,
        validate=validate.Range(min=1, max=100_000),
        metadata={"description": "Fewer churned or not-churned observations than this in a stage: pooled fit."},
    )
    as_of = fields.Date(
        load_default=None,
        validate=validate.Range(min=dt.date(1990, 1, 1), max=dt.date(2999, 12, 31)),
        metadata={"description": "Learn from outcomes up to this day (default: today, UTC)."},
    )


# --- input ----------------------------------------------------------------------------------------


class SuggestionsRequestSchema(_LearningRequestSchema):
    """``POST /scoring/suggestions``: how to build the observations (every field optional)."""


class ChurnModelTrainSchema(_LearningRequestSchema):
    """``POST /analysis/churn-model/train``: how to build the observations (every field optional)."""


class EventLiftQuerySchema(ApiSchema):
    window_days = fields.Integer(
        load_default=90,
        validate=validate.Range(min=1, max=730),
        metadata={"description": "An event counts for an outcome when it fired this many days before it, or fewer."},
    )


_DAYS = validate.Range(min=dt.date(1990, 1, 1), max=dt.date(2999, 12, 31))


class PredictionsQuerySchema(ApiSchema):
    """``GET /analysis/predictions``: which stored predictions to judge, and against what."""

    start = fields.Date(
        data_key="from", load_default=None, validate=_DAYS, metadata={"description": "First scored day (inclusive)."}
    )
    end = fields.Date(
        data_key="to", load_default=None, validate=_DAYS, metadata={"description": "Last scored day (inclusive)."}
    )
    horizon_days = fields.Integer(
        load_default=90,
        validate=validate.Range(min=1, max=730),
        metadata={"description": "A prediction counts as churned when the account churned within this many days."},
    )
    as_of = fields.Date(
        load_default=None,
        validate=_DAYS,
        metadata={"description": "Outcomes known up to this day (default: today, UTC); open horizons are left out."},
    )
    out_of_sample = fields.Boolean(
        load_default=False,
        metadata={"description": "Only predictions made on or after the training day of the model that made them."},
    )

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise ValidationError("Must not be before from.", "to")


# --- output ---------------------------------------------------------------------------------------


class IntervalSchema(ApiSchema):
    value = fields.Float(allow_none=True)
    low = fields.Float(allow_none=True, metadata={"description": "2.5th percentile of the bootstrap draws."})
    high = fields.Float(allow_none=True, metadata={"description": "97.5th percentile of the bootstrap draws."})


class ComparisonSchema(ApiSchema):
    observations = fields.Integer(metadata={"description": "Pooled walk-forward test observations."})
    churned = fields.Integer()
    accounts = fields.Integer()
    draws = fields.Integer(metadata={"description": "Bootstrap draws, each resampling accounts."})
    auc = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(IntervalSchema),
        metadata={"description": "ROC AUC per method: proposal, active, best_single, reference_lr."},
    )
    reference = fields.String(allow_none=True)
    difference_vs_reference = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(IntervalSchema),
        metadata={"description": "Each method's AUC minus the reference's, over the same draws (paired)."},
    )


class VerdictSchema(ApiSchema):
    improvement = fields.Boolean(
        metadata={"description": "The proposal's AUC beats the active config's beyond its interval."}
    )
    worse = fields.Boolean(
        metadata={"description": "The proposal's AUC is below the active config's beyond its interval."}
    )
    message = fields.String()


class WalkForwardSchema(ApiSchema):
    folds = fields.List(fields.Dict(), metadata={"description": "Each fold's window, counts, and why it was skipped."})
    comparison = fields.Nested(ComparisonSchema, allow_none=True)
    top_decile_lift = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True))
    verdict = fields.Nested(VerdictSchema, allow_none=True)
    messages = fields.List(fields.String())


class ProposedMeasureSchema(ApiSchema):
    measure = fields.Dict(
        metadata={"description": "The measure as the config holds it (direction, thresholds fitted)."}
    )
    reason = fields.String()
    weights = fields.Dict(keys=fields.String(), values=fields.Float(), metadata={"description": "Per stage."})


class RiskDecileSchema(ApiSchema):
    decile = fields.Integer(metadata={"description": "1: the riskiest tenth."})
    observations = fields.Integer()
    churned = fields.Integer()
    churn_rate = fields.Float()
    low = fields.Float(metadata={"description": "Wilson 95 % interval of the churn rate."})
    high = fields.Float()


class SignalSchema(ApiSchema):
    measure = fields.String()
    label = fields.String()
    definition = fields.Dict(metadata={"description": "Source, aggregate, window, per, form, transform..."})
    direction = fields.String(metadata={"description": "Learned on the training observations."})
    coverage = fields.Float(metadata={"description": "Share of the observations with data."})
    train_auc = fields.Float()
    test_auc = fields.Nested(IntervalSchema, allow_none=True)
    top_decile_lift = fields.Float(allow_none=True)
    deciles = fields.List(fields.Nested(RiskDecileSchema))
    group = fields.Integer(metadata={"description": "Correlation group: candidates measuring the same thing."})
    chosen = fields.Boolean(metadata={"description": "The proposal uses it."})


class NewVersionBodySchema(ApiSchema):
    config = fields.Dict(metadata={"description": "The whole proposed scoring config."})
    comment = fields.String()


class SuggestionsSchema(ApiSchema):
    as_of = fields.Date()
    horizon_days = fields.Integer()
    periodic_months = fields.Integer()
    active_version = fields.Integer()
    data = fields.Dict(metadata={"description": "Observations, churned, accounts, candidates, cached..."})
    measures = fields.List(fields.Nested(ProposedMeasureSchema), metadata={"description": "What the proposal uses."})
    bands = fields.Dict(metadata={"description": "The proposal's band cut-offs."})
    messages = fields.List(fields.String())
    validation = fields.Nested(
        WalkForwardSchema, metadata={"description": "Walk-forward: trained before each window, tested in it."}
    )
    signals = fields.List(fields.Nested(SignalSchema), metadata={"description": "Every candidate, best first."})
    new_version = fields.Nested(
        NewVersionBodySchema, metadata={"description": "The body for POST /api/v1/scoring/config/versions, as is."}
    )
    suggested_author = fields.String()
    seconds = fields.Dict(keys=fields.String(), values=fields.Float())


class SignalsSchema(ApiSchema):
    request_id = fields.Integer(metadata={"description": "The suggestions request that ranked them."})
    finished_at = UtcDateTime()
    as_of = fields.String()
    horizon_days = fields.Integer()
    observations = fields.Integer(allow_none=True)
    signals = fields.List(fields.Nested(SignalSchema))


class ChurnModelSchema(ApiSchema):
    version = fields.Integer()
    trained_at = UtcDateTime()
    trained_by = fields.String()
    horizon_days = fields.Integer()
    config_version = fields.Integer(metadata={"description": "The scoring config whose measure scores it learned."})
    measure_names = fields.List(fields.String())
    feature_names = fields.List(fields.String())
    params = fields.Dict()
    counts = fields.Dict()
    validation = fields.Dict(
        metadata={"description": "auc, brier, base_rate_brier, a reliability table, the split (later observations)."}
    )
    seconds = fields.Dict(keys=fields.String(), values=fields.Float())


class ChurnModelInfoSchema(ApiSchema):
    model = fields.Nested(ChurnModelSchema, allow_none=True, metadata={"description": "The newest; null before any."})
    versions = fields.Integer()
    note = fields.String(allow_none=True)


class RuleLiftSchema(ApiSchema):
    rule_id = fields.String()
    name = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    in_active_config = fields.Boolean()
    outcomes_with_event = fields.Integer()
    churned_with_event = fields.Integer()
    churn_rate_with_event = fields.Float(allow_none=True)
    lift = fields.Float(allow_none=True, metadata={"description": "Churn rate with the event over the overall rate."})
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)
    reading = fields.String(
        metadata={"description": "more_churn (interval above 1), less_churn (below 1), unclear, no_data."}
    )


class EventLiftSchema(ApiSchema):
    window_days = fields.Integer()
    outcomes_unscored = fields.Integer(
        metadata={"description": "Outcomes left out: their account was not scored in the window before them."}
    )
    note = fields.String(allow_none=True)
    outcomes = fields.Integer()
    churned = fields.Integer()
    churn_rate = fields.Float(allow_none=True)
    interval = fields.String()
    rules = fields.List(fields.Nested(RuleLiftSchema))


class DecileSchema(ApiSchema):
    decile = fields.Integer(metadata={"description": "1: the lowest predicted probabilities, 10: the highest."})
    count = fields.Integer()
    churned = fields.Integer()
    mean_probability = fields.Float()
    observed_rate = fields.Float(metadata={"description": "Share of the decile's predictions that churned."})
    min_probability = fields.Float()
    max_probability = fields.Float()


class PredictionModelCountSchema(ApiSchema):
    version = fields.Integer(allow_none=True)
    trained_as_of = fields.Date(allow_none=True)
    predictions = fields.Integer()
    out_of_sample = fields.Integer(metadata={"description": "Of them, made on or after the model's training day."})


class PredictionQualitySchema(ApiSchema):
    start = fields.Date(data_key="from", allow_none=True)
    end = fields.Date(data_key="to", allow_none=True)
    horizon_days = fields.Integer()
    as_of = fields.Date()
    out_of_sample = fields.Boolean()
    predictions = fields.Integer(metadata={"description": "Stored (account, day) predictions whose horizon closed."})
    churned = fields.Integer()
    censored = fields.Integer(metadata={"description": "Predictions in range left out: horizon still open."})
    base_rate = fields.Float(allow_none=True)
    mean_probability = fields.Float(allow_none=True)
    auc = fields.Float(allow_none=True, metadata={"description": "ROC AUC (ties within 0.0001 count half)."})
    brier = fields.Float(allow_none=True, metadata={"description": "Mean squared error of the probabilities."})
    deciles = fields.List(fields.Nested(DecileSchema))
    models = fields.List(fields.Nested(PredictionModelCountSchema))
    note = fields.String(allow_none=True)
