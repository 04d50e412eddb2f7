"""Schemas for the play-effectiveness report: the period in, treated against controls out."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from app.schemas import ApiSchema


class EffectivenessQuerySchema(ApiSchema):
    since = fields.Date(metadata={"description": "Only runs started on or after this day."})
    until = fields.Date(metadata={"description": "Only runs started on or before this day."})

    @validates_schema
    def _period(self, data: dict[str, Any], **_kwargs: Any) -> None:
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since > until:
            raise ValidationError("Must be on or after since.", field_name="until")


class PlayRefSchema(ApiSchema):
    id = fields.String()
    name = fields.String()


class TreatedChangeSchema(ApiSchema):
    n = fields.Integer(metadata={"description": "Runs with a score on the start day and h days later."})
    mean_change = fields.Float(allow_none=True, metadata={"description": "Mean score change in points."})
    not_measurable = fields.Integer(metadata={"description": "Runs without a score h days later (yet)."})
    unmatched = fields.Integer(
        metadata={"description": "Measured runs whose cell has no measured control; left out of the difference."}
    )


class ControlChangeSchema(ApiSchema):
    n = fields.Integer(metadata={"description": "Control observations (account, cell day) in the matched cells."})
    mean_change = fields.Float(
        allow_none=True, metadata={"description": "Per-cell control means weighted by the treated runs per cell."}
    )
    cells = fields.Integer(metadata={"description": "(day, stage, band) cells with both treated and controls."})


class HorizonSchema(ApiSchema):
    days = fields.Integer()
    treated = fields.Nested(TreatedChangeSchema)
    control = fields.Nested(ControlChangeSchema)
    difference = fields.Float(
        allow_none=True, metadata={"description": "Treated mean (matched cells) minus standardised control mean."}
    )
    reason = fields.String(allow_none=True, metadata={"description": "Why the difference is null."})


class TreatedRenewalSchema(ApiSchema):
    n_outcomes = fields.Integer(metadata={"description": "Runs whose account has an outcome after the run day."})
    renewed = fields.Integer(metadata={"description": "Of those, first outcome renewed or expanded."})
    rate = fields.Float(allow_none=True)
    no_outcome = fields.Integer(metadata={"description": "Runs whose account has no outcome after the run day yet."})


class ControlRenewalSchema(ApiSchema):
    n_outcomes = fields.Integer()
    renewed = fields.Integer()
    rate = fields.Float(allow_none=True, metadata={"description": "Standardised to the treated mix of cells."})
    crude_rate = fields.Float(allow_none=True, metadata={"description": "renewed / n_outcomes, unweighted."})


class RenewalSchema(ApiSchema):
    treated = fields.Nested(TreatedRenewalSchema)
    control = fields.Nested(ControlRenewalSchema)
    difference = fields.Float(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why the rates are null."})


class EffectivenessSchema(ApiSchema):
    play = fields.Nested(PlayRefSchema)
    since = fields.Date(allow_none=True)
    until = fields.Date(allow_none=True)
    runs = fields.Integer(metadata={"description": "Runs of the play started in the period (the treated cohort)."})
    control_window_days = fields.Integer(
        metadata={"description": "Controls had no run of this play within this many days of the cell day."}
    )
    horizons = fields.List(fields.Nested(HorizonSchema), metadata={"description": "Score change at 30 and 90 days."})
    renewal = fields.Nested(RenewalSchema)
    notes = fields.List(fields.String())
