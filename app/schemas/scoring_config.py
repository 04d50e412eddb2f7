"""The scoring-config schema: the JSON form of a health model, loaded into a ``ScoringModel``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from app.field_errors import nest_error_paths
from app.schemas import ApiSchema
from scoring.bands import Band
from scoring.measures import (
    MAX_WINDOW_DAYS,
    MEASURE_NAME,
    PERS,
    TICKET_PRIORITIES,
    TRANSFORMS,
    Direction,
    Form,
    Mapping01,
    MeasureGroup,
    Missing,
)
from scoring.model import ScoringConfigError, ScoringModel, model_from_dict
from scoring.rules import (
    COMMON_FIELDS,
    CONTACT_ROLES,
    MAX_MIN_CHANGE,
    REQUIRED,
    TYPE_PARAMS,
    RuleKind,
    RuleType,
    Severity,
)
from scoring.stage import STAGES, BillingTerm


class JsonNumber(fields.Float):
    """A finite float that must arrive as a JSON number: ``"10"`` is a type error, not 10.0."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class TermStageSchema(ApiSchema):
    pre_renewal = fields.Boolean(metadata={"description": "false: accounts on this term are staged by tenure alone."})
    pre_renewal_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=3650))
    pre_renewal_share = JsonNumber(
        validate=validate.Range(min=0, max=1), metadata={"description": "The window as a share of the term (0-1)."}
    )


class StageRulesSchema(ApiSchema):
    onboarding_max_days = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=3650),
        metadata={"description": "Days after contract start an account stays onboarding without first value."},
    )
    pre_renewal_days = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=3650),
        metadata={"description": "An account whose renewal is this many days away or fewer is pre-renewal."},
    )
    first_value_signal = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "The product signal whose first occurrence ends onboarding."},
    )
    terms = fields.Dict(
        keys=fields.String(validate=validate.OneOf([t.value for t in BillingTerm])),
        values=fields.Nested(TermStageSchema),
        metadata={"description": "Per billing term, its own pre-renewal window (days, share of the term, or none)."},
    )


class BandsSchema(ApiSchema):
    """Fixed cut-offs (``good``, ``poor``) or target shares of the portfolio (``good_share``,
    ``poor_share``), calibrated on each scored day."""

    good = JsonNumber(validate=validate.Range(min=0, max=100), metadata={"description": "Good at >= this."})
    poor = JsonNumber(validate=validate.Range(min=0, max=100), metadata={"description": "Poor below this."})
    good_share = JsonNumber(
        validate=validate.Range(min=0, max=1, max_inclusive=False),
        metadata={"description": "The share of the portfolio that is good each day."},
    )
    poor_share = JsonNumber(
        validate=validate.Range(min=0, max=1, max_inclusive=False),
        metadata={"description": "The share of the portfolio that is poor each day."},
    )

    @validates_schema
    def _check_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        fixed = {"good", "poor"} & data.keys()
        shares = {"good_share", "poor_share"} & data.keys()
        if fixed and shares:
            raise ValidationError("Give fixed cut-offs (good, poor) or shares (good_share, poor_share), not both.")
        wanted = ("good_share", "poor_share") if shares else ("good", "poor")
        missing = {key: ["Missing data for required field."] for key in wanted if key not in data}
        if missing:
            raise ValidationError(missing)
        if not shares and data["poor"] >= data["good"]:
            raise ValidationError(f"Must be below the good cut-off ({data['good']:g}).", "poor")
        if shares and data["good_share"] + data["poor_share"] >= 1:
            raise ValidationError("good_share + poor_share must stay below 1.", "poor_share")


class MeasureSchema(ApiSchema):
    """One measure in the measure language (docs/scoring.md): a source and a computation, or the
    ratio of two measures; its direction, what no data means, and its mapping to 0-100."""

    name = fields.String(
        required=True,
        validate=validate.Regexp(MEASURE_NAME, error="A lowercase letter, then letters, digits or _ (64 at most)."),
    )
    label = fields.String(validate=validate.Length(max=200), metadata={"description": "Display name."})
    group = fields.String(required=True, validate=validate.OneOf([g.value for g in MeasureGroup]))
    direction = fields.String(required=True, validate=validate.OneOf([d.value for d in Direction]))
    source = fields.String(
        validate=validate.Length(min=1, max=80),
        metadata={
            "description": "usage.<field>, signal.<name>, license.<field>, tickets.<field>, feedback.<kind>, "
            "goals.<field> or account.<field> (GET /scoring/measures/catalog lists them)."
        },
    )
    aggregate = fields.String(
        validate=validate.OneOf(["sum", "count", "mean", "active_days", "latest", "max", "nps"]),
        metadata={"description": "Over the window; absent: the source's default."},
    )
    window_days = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_WINDOW_DAYS),
        metadata={"description": "The window ending on the scored day (day as_of - N + 1 counts, as_of - N not)."},
    )
    per = fields.String(validate=validate.OneOf(list(PERS)), metadata={"description": "Normalisation."})
    form = fields.String(validate=validate.OneOf([f.value for f in Form]))
    ratio = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(equal=2, error="A ratio names two measures: numerator and denominator."),
    )
    transform = fields.String(validate=validate.OneOf(list(TRANSFORMS)), allow_none=True)
    data_days = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_WINDOW_DAYS),
        allow_none=True,
        metadata={"description": "Data only with a source record within this many days (default: ever)."},
    )
    priority = fields.List(fields.String(validate=validate.OneOf(list(TICKET_PRIORITIES))))
    missing = fields.String(validate=validate.OneOf([m.value for m in Missing]))
    mapping = fields.String(validate=validate.OneOf([m.value for m in Mapping01]))
    thresholds = fields.List(
        JsonNumber(),
        validate=[
            validate.Length(min=2, error="At least two thresholds are needed."),
            validate.Length(max=50, error="At most 50 thresholds."),
        ],
        metadata={"description": "Strictly ascending raw values, scored evenly from 0 to 100 (or 100 to 0)."},
    )  # their order, and whether the measure needs them, are checked by the core (check_model)


def _stage_weights_field() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        values=JsonNumber(),
        required=True,
        metadata={"description": "Measure name to relative weight; only ratios within the stage matter."},
    )


#: One field per lifecycle stage, in ``scoring.stage.STAGES`` order: the stages have one definition.
StageWeightsSchema = type(
    "StageWeightsSchema",
    (ApiSchema,),
    {"__module__": __name__, **{stage.value: _stage_weights_field() for stage in STAGES}},
)


class RuleSchema(ApiSchema):
    """One event rule: common fields plus the parameters of its ``type`` (see docs/events.md)."""

    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=2000))
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in RuleKind]))
    severity = fields.String(required=True, validate=validate.OneOf([s.value for s in Severity]))
    type = fields.String(required=True, validate=validate.OneOf([t.value for t in RuleType]))
    stages = fields.List(
        fields.String(validate=validate.OneOf([s.value for s in STAGES])),
        metadata={"description": "Stages the rule applies to; empty or absent: every stage."},
    )
    fire_on_first_day = fields.Boolean(
        metadata={
            "description": "Fire on an account's first scored day too; by default that day records the rule's "
            "state without firing (no event, play, task or alert)."
        }
    )
    value = fields.String(metadata={"description": "threshold: measure or fact; change: usage column."})
    op = fields.String(validate=validate.OneOf(["above", "below"]))
    at = JsonNumber()
    clear_at = JsonNumber(metadata={"description": "threshold: value past which the rule re-arms (hysteresis)."})
    window_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=366))
    change_pct = JsonNumber(metadata={"description": "change: percent against the previous window; negative: a fall."})
    clear_pct = JsonNumber()
    min_change = JsonNumber(
        validate=validate.Range(min=0, max=MAX_MIN_CHANGE),
        metadata={"description": "change: the least absolute change in the column (a sum over the window) that fires."},
    )
    signal = fields.String(validate=validate.Length(min=1, max=64))
    min_count = fields.Integer(strict=True, validate=validate.Range(min=1))
    min_days = fields.Integer(strict=True, validate=validate.Range(min=1))
    absent = fields.Boolean()
    after_days = fields.Integer(strict=True, validate=validate.Range(min=1))
    without = fields.String(metadata={"description": "overdue: activity, signal:<name> or milestone:<rule id>."})
    points = JsonNumber()
    days = fields.Integer(strict=True, validate=validate.Range(min=1, max=366))
    band = fields.String(validate=validate.OneOf([b.value for b in Band]))
    change = fields.String(validate=validate.OneOf(["added", "removed"]))
    roles = fields.List(fields.String(validate=validate.OneOf(CONTACT_ROLES)))

    @validates_schema
    def _check_type_params(self, data: dict[str, Any], **kwargs: Any) -> None:
        rule_type = RuleType(data["type"])
        allowed = set(TYPE_PARAMS[rule_type])
        errors: dict[str, list[str]] = {}
        for key in REQUIRED[rule_type]:
            if key not in data:
                errors[key] = [f"Required for a {rule_type.value} rule."]
        for key in data:
            if key not in allowed and key not in COMMON_FIELDS:
                errors[key] = [f"Not a parameter of a {rule_type.value} rule."]
        if errors:
            raise ValidationError(errors)


MAX_MEASURES = 100


class ScoringConfigSchema(ApiSchema):
    """A whole scoring config. ``load`` returns a ``ScoringModel``; ``dump`` takes ``model.to_dict()``."""

    stages = fields.Nested(StageRulesSchema, required=True)
    bands = fields.Nested(BandsSchema, required=True)
    neutral_score = JsonNumber(
        required=True,
        validate=validate.Range(min=0, max=100),
        metadata={"description": "The score drivers are measured against."},
    )
    measures = fields.List(
        fields.Nested(MeasureSchema),
        required=True,
        validate=[
            validate.Length(min=1, error="At least one measure is needed."),
            validate.Length(max=MAX_MEASURES, error="At most {max} measures."),
        ],
    )
    weights = fields.Nested(StageWeightsSchema, required=True)
    rules = fields.List(
        fields.Nested(RuleSchema),
        metadata={"description": "Event rules (milestones and risks); absent: the default catalog."},
    )

    # The schema checks shape; meaning (unique measure names, thresholds in order, weights naming
    # defined measures, not negative, at least one positive per stage) is the core's
    # ``check_model``, reported here against the same fields. Marshmallow runs this only once
    # the shape is valid.

    @post_load
    def _make_model(self, data: dict[str, Any], **kwargs: Any) -> ScoringModel:
        try:
            return model_from_dict(data)
        except ScoringConfigError as exc:
            raise ValidationError(nest_error_paths(exc.errors)) from exc


def load_scoring_config(data: dict[str, Any]) -> ScoringModel:
    """Validate a scoring config's JSON form and build its model.

    Raises ``marshmallow.ValidationError`` with field-keyed messages for shape and meaning errors.
    """
    model: ScoringModel = ScoringConfigSchema().load(data)
    return model
