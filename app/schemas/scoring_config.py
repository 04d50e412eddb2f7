"""The scoring-config schema: the JSON form of a health model, loaded into a ``ScoringModel``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from app.field_errors import nest_error_paths
from app.schemas import ApiSchema
from scoring.bands import Band
from scoring.measures import MEASURE_CATALOG, Direction, MeasureGroup
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
from scoring.stage import STAGES


class JsonNumber(fields.Float):
    """A finite float that must arrive as a JSON number: ``"10"`` is a type error, not 10.0."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class StageRulesSchema(ApiSchema):
    onboarding_max_days = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0),
        metadata={"description": "Days after contract start an account stays onboarding without first value."},
    )
    pre_renewal_days = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0),
        metadata={"description": "An account whose renewal is this many days away or fewer is pre-renewal."},
    )
    first_value_signal = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The product signal whose first occurrence ends onboarding."},
    )


class BandsSchema(ApiSchema):
    good = JsonNumber(
        required=True, validate=validate.Range(min=0, max=100), metadata={"description": "Good at >= this."}
    )
    poor = JsonNumber(
        required=True, validate=validate.Range(min=0, max=100), metadata={"description": "Poor below this."}
    )

    @validates_schema
    def _check_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["poor"] >= data["good"]:
            raise ValidationError(f"Must be below the good cut-off ({data['good']:g}).", "poor")


class MeasureSchema(ApiSchema):
    name = fields.String(
        required=True,
        validate=validate.OneOf(sorted(MEASURE_CATALOG), error="Unknown measure {input!r}; known: {choices}."),
    )
    label = fields.String(metadata={"description": "Display name; the measure name when empty."})
    group = fields.String(required=True, validate=validate.OneOf([g.value for g in MeasureGroup]))
    direction = fields.String(required=True, validate=validate.OneOf([d.value for d in Direction]))
    thresholds = fields.List(
        JsonNumber(),
        required=True,
        validate=validate.Length(min=2, error="At least two thresholds are needed."),
        metadata={"description": "Strictly ascending raw values, scored evenly from 0 to 100 (or 100 to 0)."},
    )  # their order is checked by the core (scoring.model.check_model)


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
        validate=validate.Length(min=1, error="At least one measure is needed."),
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
