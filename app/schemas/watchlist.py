"""Schemas of the watchlist, pins, band overrides and score-change attribution."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from app.schemas import ApiSchema, scope_field
from app.schemas.plays import UtcDateTime
from scoring.bands import Band
from scoring.stage import LifecycleStage

#: The orders of the watchlist (``app.services.watchlist.listing`` maps each to its SQL key).
SORT_NAMES = ("arr_at_risk", "score", "change", "expected_arr_at_risk", "days_to_renewal")
#: How far ahead a band override may expire.
MAX_OVERRIDE_DAYS = 180

_REASON = validate.Length(min=1, max=2000)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _in_future(value: dt.datetime) -> None:
    if value <= dt.datetime.now(dt.UTC):
        raise ValidationError("Must be in the future.")


def _moment(**kwargs: Any) -> fields.AwareDateTime:
    """An ISO datetime; without an offset it is read as UTC."""
    return fields.AwareDateTime(default_timezone=dt.UTC, **kwargs)


# --- the watchlist ------------------------------------------------------------------------------------


class WatchlistQuerySchema(ApiSchema):
    """The watchlist's query. Loads are remembered by the query string's items: the same few
    queries arrive over and over, and a load is a pure function of them (marshmallow's load was
    ~0.25 ms of a cached page's ~1.7 ms). Only successful loads are kept; callers get a copy."""

    _MEMO_MAX = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._memo: dict[tuple[Any, ...], dict[str, Any]] = {}

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None, unknown: Any = None) -> Any:
        raw: Any = getattr(data, "data", None)  # webargs' MultiDictProxy over the request's args
        if many or partial or not hasattr(raw, "items"):
            return super().load(data, many=many, partial=partial, unknown=unknown)
        key = (unknown, tuple(raw.items(multi=True)) if hasattr(raw, "getlist") else tuple(raw.items()))
        loaded = self._memo.get(key)
        if loaded is None:
            loaded = super().load(data, unknown=unknown)
            if len(self._memo) >= self._MEMO_MAX:
                self._memo.clear()
            self._memo[key] = loaded
        return dict(loaded)

    owner = fields.String(metadata={"description": "Only accounts owned by this CSM (lifts the default book)."})
    team = fields.String(
        metadata={"description": "A manager's name: accounts owned by the manager and their CSMs (lifts the book)."}
    )
    scope = scope_field()
    segment = fields.String()
    stage = fields.Enum(LifecycleStage, by_value=True)
    band = fields.Enum(Band, by_value=True, metadata={"description": "The effective band (override, else computed)."})
    name = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={"description": "Part of the account's name, any case (a search)."},
    )
    renewal_within_days = fields.Integer(
        validate=validate.Range(min=0, max=3660),
        metadata={"description": "Renewal date at most this many days from today (passed renewals included)."},
    )
    sort = fields.String(
        load_default="arr_at_risk",
        validate=validate.OneOf(SORT_NAMES),
        metadata={
            "description": "arr_at_risk: ARR, largest first (default); score: lowest first; change: 7-day change, "
            "largest fall first; days_to_renewal: soonest first; expected_arr_at_risk: churn probability x ARR, "
            "largest first. Ties by account id; missing values last."
        },
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(
        validate=validate.Length(min=1, max=500),
        metadata={"description": "next_cursor of the previous page, with the same sort and filters."},
    )


class OverrideSummarySchema(ApiSchema):
    band = fields.Enum(Band, by_value=True)
    reason = fields.String()
    author = fields.String()
    created_at = UtcDateTime()
    expires_at = UtcDateTime()


class PinSummarySchema(ApiSchema):
    reason = fields.String()
    author = fields.String()
    created_at = UtcDateTime()
    expires_at = UtcDateTime(allow_none=True)


class NegativeDriverSchema(ApiSchema):
    measure = fields.String()
    label = fields.String()
    contribution = fields.Float(metadata={"description": "Points below the neutral score (negative)."})


class OpenPlayRunSchema(ApiSchema):
    id = fields.Integer()
    play_id = fields.String()
    play_name = fields.String()
    started_on = fields.Date()
    open_tasks = fields.Integer()


class WatchlistRowSchema(ApiSchema):
    account_id = fields.Integer()
    name = fields.String()
    owner = fields.String(allow_none=True)
    segment = fields.String(allow_none=True)
    score = fields.Float(allow_none=True)
    band = fields.Enum(Band, by_value=True, allow_none=True, metadata={"description": "The computed band."})
    override = fields.Nested(OverrideSummarySchema, allow_none=True)
    effective_band = fields.Enum(
        Band,
        by_value=True,
        allow_none=True,
        metadata={"description": "The live override's band, else the computed band."},
    )
    change_7d = fields.Float(allow_none=True)
    change_30d = fields.Float(allow_none=True)
    stage = fields.Enum(LifecycleStage, by_value=True, allow_none=True)
    renewal_date = fields.Date(allow_none=True)
    days_to_renewal = fields.Integer(allow_none=True)
    arr = fields.Float()
    completeness = fields.Float(allow_none=True)
    drivers = fields.List(
        fields.Nested(NegativeDriverSchema), metadata={"description": "The (up to) three most negative drivers."}
    )
    play_runs = fields.List(fields.Nested(OpenPlayRunSchema), metadata={"description": "Open play runs."})
    pin = fields.Nested(PinSummarySchema, allow_none=True)
    reasons = fields.List(
        fields.String(),
        metadata={"description": "Why the account is listed: poor_band, falling_trend, play:<play id>, pinned."},
    )
    churn_probability = fields.Float(
        allow_none=True, metadata={"description": "From the newest churn model (0-1); null: see the note."}
    )
    expected_arr_at_risk = fields.Float(allow_none=True, metadata={"description": "churn_probability x ARR."})
    churn_probability_note = fields.String(allow_none=True, metadata={"description": "Why the probability is null."})


class WatchlistPageSchema(ApiSchema):
    items = fields.List(fields.Nested(WatchlistRowSchema))
    sort = fields.String()
    limit = fields.Integer()
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page."})


# --- pins ---------------------------------------------------------------------------------------------


class PinInSchema(ApiSchema):
    reason = fields.String(required=True, validate=[_REASON, _not_blank])
    expires_at = _moment(
        allow_none=True, validate=_in_future, metadata={"description": "Optional; the pin ends by itself then."}
    )


class PinSchema(ApiSchema):
    id = fields.Integer()
    account_id = fields.Integer()
    reason = fields.String()
    author = fields.String()
    created_at = UtcDateTime()
    expires_at = UtcDateTime(allow_none=True)
    removed_at = UtcDateTime(allow_none=True)
    removed_by = fields.String(allow_none=True)


# --- overrides ----------------------------------------------------------------------------------------


class OverrideInSchema(ApiSchema):
    band = fields.Enum(Band, by_value=True, required=True)
    reason = fields.String(required=True, validate=[_REASON, _not_blank])
    expires_at = _moment(
        required=True,
        metadata={
            "description": f"When the override reverts by itself: in the future, at most {MAX_OVERRIDE_DAYS} days."
        },
    )

    @validates("expires_at")
    def _expiry(self, value: dt.datetime, **_: Any) -> None:
        now = dt.datetime.now(dt.UTC)
        if value <= now:
            raise ValidationError("Must be in the future.")
        if value > now + dt.timedelta(days=MAX_OVERRIDE_DAYS):
            raise ValidationError(f"Must be at most {MAX_OVERRIDE_DAYS} days from now.")


class OverrideSchema(OverrideSummarySchema):
    id = fields.Integer()
    account_id = fields.Integer()
    state = fields.String(validate=validate.OneOf(["live", "expired", "revoked"]))
    revoked_at = UtcDateTime(allow_none=True)
    revoked_by = fields.String(allow_none=True)


class OverrideListSchema(ApiSchema):
    items = fields.List(fields.Nested(OverrideSchema), metadata={"description": "Newest first."})


# --- score change -------------------------------------------------------------------------------------


class ScoreChangeQuerySchema(ApiSchema):
    start = fields.Date(required=True, data_key="from", metadata={"description": "YYYY-MM-DD"})
    end = fields.Date(required=True, data_key="to", metadata={"description": "YYYY-MM-DD"})

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if "start" in data and "end" in data and data["start"] > data["end"]:
            raise ValidationError("'from' must not be after 'to'.", field_name="from")


class ScoredDaySchema(ApiSchema):
    day = fields.Date()
    score = fields.Float()
    band = fields.Enum(Band, by_value=True, allow_none=True)
    stage = fields.Enum(LifecycleStage, by_value=True)
    completeness = fields.Float()
    config_version = fields.Integer()


class MeasureEffectSchema(ApiSchema):
    measure = fields.String()
    label = fields.String()
    from_value = fields.Float(allow_none=True)
    to_value = fields.Float(allow_none=True)
    from_score = fields.Float(allow_none=True, metadata={"description": "0-100 under the from day's config."})
    to_score = fields.Float(allow_none=True, metadata={"description": "0-100 under the to day's config."})
    from_contribution = fields.Float(metadata={"description": "Points vs the neutral score on the from day."})
    to_contribution = fields.Float()
    data_effect = fields.Float(metadata={"description": "(to-data, from-config) - (from-data, from-config)."})
    config_effect = fields.Float(metadata={"description": "(to-data, to-config) - (to-data, from-config)."})
    total = fields.Float()


class ScoreChangeSchema(ApiSchema):
    account_id = fields.Integer()
    start = fields.Nested(ScoredDaySchema, data_key="from")
    end = fields.Nested(ScoredDaySchema, data_key="to")
    change = fields.Float(
        metadata={
            "description": "to_score - from_score = data_effect + config_effect (recomputed from the stored "
            "values; the stored scores in from/to are rounded to 4 decimals)."
        }
    )
    from_score = fields.Float(metadata={"description": "The from day's score, recomputed unrounded."})
    to_score = fields.Float(metadata={"description": "The to day's score, recomputed unrounded."})
    data_effect = fields.Float()
    config_effect = fields.Float(metadata={"description": "Includes neutral_effect."})
    neutral_effect = fields.Float(metadata={"description": "The change of the configs' neutral score."})
    measures = fields.List(fields.Nested(MeasureEffectSchema))
