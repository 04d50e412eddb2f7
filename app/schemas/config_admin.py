"""Schemas of the scoring-config admin API: versions, diffs, activation and the preview with backtest."""

from __future__ import annotations

from marshmallow import fields, validate

from app.schemas import ApiSchema, PageSchema
from app.schemas.jobs import JobRequestRefSchema
from app.schemas.plays import UtcDateTime
from app.schemas.scoring_config import ScoringConfigSchema
from scoring.stage import STAGES

#: The most changed accounts a preview lists (largest score change first).
MAX_PREVIEW_LIST = 5000


# --- input ----------------------------------------------------------------------------------------


class NewVersionSchema(ApiSchema):
    """``POST /scoring/config/versions``: a whole scoring config and why it changes."""

    config = fields.Nested(ScoringConfigSchema, required=True)
    comment = fields.String(
        load_default="",
        validate=validate.Length(max=2000),
        metadata={"description": "Why this version exists (shown in the version list and the audit log)."},
    )


class PatchQuerySchema(ApiSchema):
    """``PATCH /scoring/config``: why the new version exists."""

    comment = fields.String(
        load_default="",
        validate=validate.Length(max=2000),
        metadata={"description": "Shown in the version list and the audit log."},
    )


class PreviewSchema(ApiSchema):
    """``POST /scoring/config/preview``: a proposed config and the backtest horizon."""

    config = fields.Nested(ScoringConfigSchema, required=True)
    horizon_days = fields.Integer(
        load_default=90,
        strict=True,
        validate=validate.Range(min=1, max=730),
        metadata={"description": "Score the accounts this many days before each outcome."},
    )
    window_days = fields.Integer(
        load_default=14,
        strict=True,
        validate=validate.Range(min=0, max=90),
        metadata={"description": "Use the newest stored score up to this many days older than the horizon day."},
    )
    list_limit = fields.Integer(
        load_default=500,
        strict=True,
        validate=validate.Range(min=0, max=MAX_PREVIEW_LIST),
        metadata={"description": "At most this many changed accounts are listed, largest score change first."},
    )


# --- output ---------------------------------------------------------------------------------------


class VersionSummarySchema(ApiSchema):
    version = fields.Integer()
    author = fields.String()
    comment = fields.String()
    created_at = UtcDateTime()
    active = fields.Boolean()


class VersionSchema(VersionSummarySchema):
    warnings = fields.List(
        fields.String(), metadata={"description": "On creation: what the data says (signals with no data yet)."}
    )
    config = fields.Dict(metadata={"description": "The scoring config (see docs/scoring.md)."})


class ActiveVersionSchema(VersionSchema):
    rescore_pending = fields.Boolean(
        metadata={
            "description": "A rescore after an activation is queued or running: the latest scores may still be "
            "from the version active before (see GET /api/v1/jobs/requests?kind=rescore)."
        }
    )


class VersionPageSchema(PageSchema):
    items = fields.List(fields.Nested(VersionSummarySchema))


class ChangeSchema(ApiSchema):
    """One value that differs: ``from`` the first version ``to`` the second."""

    from_ = fields.Raw(data_key="from", attribute="from", allow_none=True)
    to = fields.Raw(allow_none=True)


class MeasureChangeSchema(ApiSchema):
    name = fields.String()
    changes = fields.Dict(
        keys=fields.String(), values=fields.Nested(ChangeSchema), metadata={"description": "Field to its change."}
    )


class MeasureDiffSchema(ApiSchema):
    added = fields.List(fields.String())
    removed = fields.List(fields.String())
    changed = fields.List(fields.Nested(MeasureChangeSchema))


class WeightChangeSchema(ApiSchema):
    measure = fields.String()
    weight_from = fields.Float(allow_none=True, metadata={"description": "null: the measure was not weighed."})
    weight_to = fields.Float(allow_none=True)
    share_from = fields.Float(metadata={"description": "The weight's share of the stage's total (0-1)."})
    share_to = fields.Float()
    share_change = fields.Float()


class RuleChangeSchema(ApiSchema):
    id = fields.String()
    changes = fields.Dict(keys=fields.String(), values=fields.Nested(ChangeSchema))


class RuleDiffSchema(ApiSchema):
    added = fields.List(fields.String())
    removed = fields.List(fields.String())
    changed = fields.List(fields.Nested(RuleChangeSchema))


class DiffSchema(ApiSchema):
    version_from = fields.Integer()
    version_to = fields.Integer()
    identical = fields.Boolean()
    bands = fields.Dict(keys=fields.String(), values=fields.Nested(ChangeSchema))
    neutral_score = fields.Nested(ChangeSchema, allow_none=True)
    stages = fields.Dict(
        keys=fields.String(), values=fields.Nested(ChangeSchema), metadata={"description": "Stage rules."}
    )
    measures = fields.Nested(MeasureDiffSchema)
    weights = fields.Dict(
        keys=fields.String(validate=validate.OneOf([s.value for s in STAGES])),
        values=fields.List(fields.Nested(WeightChangeSchema)),
        metadata={"description": "Per stage, the measures whose weight or normalized share changed."},
    )
    rules = fields.Nested(RuleDiffSchema)


class RunSummarySchema(ApiSchema):
    as_of = fields.Date()
    config_version = fields.Integer()
    accounts_scored = fields.Integer()
    accounts_without_score = fields.Integer()
    by_band = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_stage = fields.Dict(keys=fields.String(), values=fields.Integer())
    accounts_backfilled = fields.Integer()
    events = fields.Integer()
    events_by_rule = fields.Dict(keys=fields.String(), values=fields.Integer())
    play_runs = fields.Integer()
    play_runs_by_play = fields.Dict(keys=fields.String(), values=fields.Integer())
    tasks = fields.Integer()
    seconds = fields.Dict(keys=fields.String(), values=fields.Float(), metadata={"description": "Per step."})


class ActivationSchema(VersionSchema):
    """The version now active, and the rescore its activation queued."""

    version_from = fields.Integer(allow_none=True, metadata={"description": "The version active before."})
    version_to = fields.Integer()
    rescore = fields.Nested(
        JobRequestRefSchema,
        metadata={
            "description": "The rescore of the portfolio with the new version, queued (or one already queued, "
            "which now covers this activation too). Its result is the scoring run's summary."
        },
    )


class BandMoveSchema(ApiSchema):
    band_from = fields.String(allow_none=True, metadata={"description": "null: no score."})
    band_to = fields.String(allow_none=True)
    accounts = fields.Integer()


class StageBandChangesSchema(ApiSchema):
    stage = fields.String()
    accounts = fields.Integer()
    changed = fields.Integer()
    moves = fields.List(fields.Nested(BandMoveSchema))


class ChangedAccountSchema(ApiSchema):
    account_id = fields.Integer()
    name = fields.String(allow_none=True)
    stage = fields.String()
    score_active = fields.Float(allow_none=True)
    score_proposed = fields.Float(allow_none=True)
    band_active = fields.String(allow_none=True)
    band_proposed = fields.String(allow_none=True)
    band_stored = fields.String(allow_none=True, metadata={"description": "The band stored with the latest score."})


class BandSharesSchema(ApiSchema):
    good = fields.Float(allow_none=True)
    average = fields.Float(allow_none=True)
    poor = fields.Float(allow_none=True)


class BandSharesBeforeAfterSchema(ApiSchema):
    active = fields.Nested(BandSharesSchema, metadata={"description": "Shares of the scored accounts, active config."})
    proposed = fields.Nested(BandSharesSchema, metadata={"description": "The same under the proposed config."})


class BandChangesSchema(ApiSchema):
    accounts = fields.Integer(metadata={"description": "Accounts with a latest score."})
    band_shares = fields.Nested(BandSharesBeforeAfterSchema)
    changed = fields.Integer(metadata={"description": "Accounts whose band differs."})
    mean_abs_score_change = fields.Float(allow_none=True)
    by_stage = fields.List(fields.Nested(StageBandChangesSchema))
    accounts_changed = fields.List(fields.Nested(ChangedAccountSchema))
    list_limit = fields.Integer()
    list_capped = fields.Boolean(metadata={"description": "True when more accounts changed band than listed."})


class MetricsSchema(ApiSchema):
    config_version = fields.Integer(allow_none=True, metadata={"description": "null for the proposed config."})
    auc = fields.Float(allow_none=True, metadata={"description": "ROC AUC of (100 - score) against churn."})
    auc_note = fields.String(allow_none=True, metadata={"description": "Why the AUC is null."})
    churned_in_poor_share = fields.Float(allow_none=True)
    renewed_in_poor_share = fields.Float(allow_none=True)
    mean_score_churned = fields.Float(allow_none=True)
    mean_score_renewed = fields.Float(allow_none=True)


class OutcomeCountsSchema(ApiSchema):
    considered = fields.Integer(metadata={"description": "Every outcome on record."})
    used = fields.Integer()
    churned = fields.Integer()
    renewed = fields.Integer(metadata={"description": "Renewed and expanded outcomes."})
    skipped = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "Reason to count."})


class BacktestSchema(ApiSchema):
    horizon_days = fields.Integer()
    window_days = fields.Integer()
    outcomes = fields.Nested(OutcomeCountsSchema)
    active = fields.Nested(MetricsSchema)
    proposed = fields.Nested(MetricsSchema)


class PreviewResultSchema(ApiSchema):
    active_version = fields.Integer(allow_none=True, metadata={"description": "null before any version exists."})
    notes = fields.List(fields.String(), metadata={"description": "What the preview cannot show."})
    band_changes = fields.Nested(BandChangesSchema)
    backtest = fields.Nested(BacktestSchema)
    seconds = fields.Float()


# --- the measure catalog -------------------------------------------------------------------------


class CatalogSourceSchema(ApiSchema):
    source = fields.String(metadata={"description": "What a measure's source field names."})
    family = fields.String()
    aggregates = fields.List(fields.String(), metadata={"description": "Allowed aggregates; the first is the default."})
    windowed = fields.Boolean(metadata={"description": "Whether a measure on it needs window_days."})
    daily = fields.Boolean(metadata={"description": "A daily series: mean per day, change and days_since apply."})
    description = fields.String()
    records = fields.Integer()
    accounts = fields.Integer(metadata={"description": "Accounts with at least one record."})
    first_day = fields.String(allow_none=True)
    last_day = fields.String(allow_none=True)


class CatalogSignalSchema(CatalogSourceSchema):
    signal = fields.String()
    events = fields.Integer(metadata={"description": "Events counted over all days."})


class CatalogOptionsSchema(ApiSchema):
    per = fields.List(fields.String())
    form = fields.List(fields.String())
    transform = fields.List(fields.String())
    missing = fields.List(fields.String())
    mapping = fields.List(fields.String())


class MeasureCatalogSchema(ApiSchema):
    accounts = fields.Integer()
    sources = fields.List(fields.Nested(CatalogSourceSchema))
    signals = fields.List(fields.Nested(CatalogSignalSchema))
    options = fields.Nested(CatalogOptionsSchema)
