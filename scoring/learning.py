"""Learning from outcomes: training sets, a time-and-group split, suggested weights and event lift,
over arrays (the churn model is ``scoring/churn.py``).

Pure: numpy and scikit-learn in, plain data out; no clock, no I/O, every seed passed in. The rows
come from ``app/services/analysis.py``, which computes each observation's measures from the raw
tables as of the observation date (see docs/learning.md for the leakage rules).

Vocabulary:

- an **observation** is one account on one date, with its measure scores (0-100, NaN: no data)
  and lifecycle stage as of that date;
- its **label** is whether the account churned within the horizon after the date, i.e. has a
  ``churned`` outcome dated in ``(date, date + horizon]``. A downgrade is not a churn.

Measure scores are already oriented by their configured direction (100 is good whichever way
the raw value runs), so a model of churn risk should give every measure score a *negative*
coefficient. A positive one means that, in these outcomes, accounts churned *more* as the measure
looked better: the measure is flagged and gets no weight. It is never flipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from scoring.model import ScoringModel
from scoring.stage import STAGES
from scoring.validation import Z_95, top_decile_lift, wilson_interval

#: Fewer observations than this of either class in a stage: that stage takes the pooled weights.
MIN_PER_CLASS = 30
#: The share of observations (the latest ones) the validation tests on.
TEST_FRACTION = 0.3
#: Inverse L2 regularization strength of every logistic regression (scikit-learn's ``C``).
L2_C = 1.0
#: Coefficients at or below this are "no signal", not a contradicting direction.
_COEF_EPS = 1e-9
_EPOCH = dt.date(1970, 1, 1)


class NotEnoughOutcomes(ValueError):
    """Too few observations of a class to learn anything; the message says how many there are."""


class ProbabilityModel(Protocol):
    """What the core needs of a fitted classifier (a scikit-learn estimator, or a fake)."""

    def predict_proba(self, X: Any) -> Any: ...


# --- training sets --------------------------------------------------------------------------------


def epoch_days(days: np.ndarray) -> np.ndarray:
    """``datetime64[D]`` days as int64 days since 1970-01-01."""
    return np.asarray(days, dtype="datetime64[D]").astype(np.int64)


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """Observations as row arrays: ``k`` rows over the ``m`` measures ``measure_names``.

    ``observed_on``: (k,) ``datetime64[D]``; ``account_id``: (k,) int64; ``stage``: (k,) stage
    codes into ``STAGES``; ``measure_scores``: (k, m) float64 0-100, NaN where the measure had
    no data on that date; ``label``: (k,) bool, churned within the horizon after the date;
    ``raw_values``: (k, m) the measures' raw values behind the scores (NaN: no data), or None when
    the rows were made from scores alone.
    """

    observed_on: np.ndarray
    account_id: np.ndarray
    stage: np.ndarray
    measure_scores: np.ndarray
    label: np.ndarray
    measure_names: tuple[str, ...]
    raw_values: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = self.label.shape[0]
        if self.measure_scores.shape != (k, len(self.measure_names)):
            raise ValueError(
                f"measure_scores must be ({k}, {len(self.measure_names)}), got {self.measure_scores.shape}"
            )
        if self.raw_values is not None and self.raw_values.shape != self.measure_scores.shape:
            raise ValueError("raw_values must have the shape of measure_scores")
        for name in ("observed_on", "account_id", "stage"):
            if getattr(self, name).shape != (k,):
                raise ValueError(f"{name} must have one entry per observation")
        if k and (self.stage.min() < 0 or self.stage.max() >= len(STAGES)):
            raise ValueError(f"stage codes must be in 0..{len(STAGES) - 1}")

    @property
    def size(self) -> int:
        return int(self.label.shape[0])

    def subset(self, rows: np.ndarray) -> TrainingSet:
        """The observations selected by a boolean mask or an index array."""
        return TrainingSet(
            self.observed_on[rows],
            self.account_id[rows],
            self.stage[rows],
            self.measure_scores[rows],
            self.label[rows],
            self.measure_names,
            None if self.raw_values is None else self.raw_values[rows],
        )

    def counts(self) -> dict[str, int]:
        churned = int(np.count_nonzero(self.label))
        return {
            "observations": self.size,
            "churned": churned,
            "not_churned": self.size - churned,
            "accounts": int(np.unique(self.account_id).size),
        }


def concat_training_sets(parts: Sequence[TrainingSet], measure_names: tuple[str, ...]) -> TrainingSet:
    """One training set from several (all over ``measure_names``); empty when ``parts`` is."""
    if not parts:
        return TrainingSet(
            np.empty(0, "datetime64[D]"),
            np.empty(0, np.int64),
            np.empty(0, np.int8),
            np.empty((0, len(measure_names))),
            np.empty(0, bool),
            measure_names,
        )
    return TrainingSet(
        np.concatenate([p.observed_on for p in parts]),
        np.concatenate([p.account_id for p in parts]),
        np.concatenate([p.stage for p in parts]),
        np.concatenate([p.measure_scores for p in parts]),
        np.concatenate([p.label for p in parts]),
        measure_names,
        None if any(p.raw_values is None for p in parts) else np.concatenate([p.raw_values for p in parts]),
    )


def outcome_observation_days(outcome_day: np.ndarray, horizon_days: int, snap_days: int = 7) -> np.ndarray:
    """The observation date of each outcome: ``horizon_days`` before it, moved back onto a grid of
    ``snap_days``-day steps (counted from 1970-01-01) so one set-based pass over the raw data serves
    every outcome of a step. Always on or before ``outcome - horizon``: snapping never looks later."""
    if snap_days < 1:
        raise ValueError("snap_days must be at least 1")
    day = epoch_days(outcome_day) - horizon_days
    snapped: np.ndarray = (day - np.mod(day, snap_days)).astype("datetime64[D]")
    return snapped


def periodic_observation_days(end: dt.date, months: int) -> list[dt.date]:
    """``months`` dates one calendar month apart, the last one ``end``, oldest first (a day of month
    past the end of a shorter month becomes its last day)."""
    out = []
    for back in range(months - 1, -1, -1):
        total = end.year * 12 + end.month - 1 - back
        year, month = divmod(total, 12)
        month += 1
        next_month = dt.date(year + (month == 12), month % 12 + 1, 1)
        last = (next_month - dt.timedelta(days=1)).day
        out.append(dt.date(year, month, min(end.day, last)))
    return out


def label_churn(
    observed_on: np.ndarray,
    account_id: np.ndarray,
    churn_day: np.ndarray,
    churn_account: np.ndarray,
    horizon_days: int,
) -> np.ndarray:
    """Whether each observation's account has a churn dated in ``(observed_on, observed_on + horizon]``.

    One ``searchsorted`` pair over (account, day) keys: linear after a sort, whatever the sizes.
    """
    if churn_day.size == 0 or observed_on.size == 0:
        return np.zeros(observed_on.shape, dtype=bool)
    # Days since 1970 stay far below 10**6 until the year 4707; ids below 2**31 keep keys in int64.
    scale = np.int64(1_000_000)
    keys = np.sort(churn_account.astype(np.int64) * scale + epoch_days(churn_day))
    start = account_id.astype(np.int64) * scale + epoch_days(observed_on)
    found = np.searchsorted(keys, start + horizon_days, side="right") - np.searchsorted(keys, start, side="right")
    churned: np.ndarray = found > 0
    return churned


# --- features -------------------------------------------------------------------------------------


def centered_scores(measure_scores: np.ndarray, neutral_score: float = 50.0) -> np.ndarray:
    """Measure scores as regression features: ``(score - neutral) / 50``, 0 (neutral) without data,
    so a missing measure moves the prediction as little as it moves the health score."""
    x: np.ndarray = (np.asarray(measure_scores, dtype=np.float64) - neutral_score) / 50.0
    x[np.isnan(x)] = 0.0
    return x


def _stage_columns(stage: np.ndarray) -> np.ndarray:
    columns: np.ndarray = (stage[:, None] == np.arange(len(STAGES))[None, :]).astype(np.float64)
    return columns


# --- the split ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Split:
    """Train and test masks over the observations, and the first test date.

    Every training observation is dated before ``cutoff`` and every test one on or after it; no
    account has observations on both sides. ``dropped`` are the observations on the wrong side of
    the cutoff for the side their account was given.
    """

    train: np.ndarray
    test: np.ndarray
    cutoff: dt.date | None

    @property
    def dropped(self) -> int:
        return int(np.count_nonzero(~self.train & ~self.test))

    def counts(self) -> dict[str, Any]:
        return {
            "train": int(np.count_nonzero(self.train)),
            "test": int(np.count_nonzero(self.test)),
            "dropped": self.dropped,
            "cutoff": None if self.cutoff is None else self.cutoff.isoformat(),
        }


def time_group_split(
    observed_on: np.ndarray, account_id: np.ndarray, *, test_fraction: float = TEST_FRACTION, seed: int = 0
) -> Split:
    """Train on earlier observations, test on later ones, each account on one side only.

    The cutoff is the observation date below which about ``1 - test_fraction`` of the rows lie.
    Accounts observed only before it train, accounts observed only from it test; an account
    observed on both sides goes to the test side with probability ``test_fraction`` (drawn from
    ``seed``) and loses its rows on the other side.
    """
    k = observed_on.shape[0]
    none = np.zeros(k, dtype=bool)
    if k == 0:
        return Split(none, none.copy(), None)
    days = epoch_days(observed_on)
    cutoff = int(np.quantile(days, 1.0 - test_fraction, method="higher"))
    if cutoff <= days.min():  # one date only, or nearly: no earlier side to train on
        return Split(none, none.copy(), _EPOCH + dt.timedelta(days=cutoff))
    late = days >= cutoff
    accounts, inverse = np.unique(account_id, return_inverse=True)
    has_early = np.bincount(inverse, weights=~late, minlength=accounts.size) > 0
    has_late = np.bincount(inverse, weights=late, minlength=accounts.size) > 0
    draw = np.random.default_rng(seed).random(accounts.size) < test_fraction
    to_test = has_late & (~has_early | draw)
    side = to_test[inverse]
    return Split(~late & ~side, late & side, _EPOCH + dt.timedelta(days=cutoff))


# --- fitting weights ------------------------------------------------------------------------------


def _has_both(label: np.ndarray, min_per_class: int) -> bool:
    churned = int(np.count_nonzero(label))
    return churned >= min_per_class and label.size - churned >= min_per_class


def _logistic(C: float, *, balanced: bool) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=1000)


@dataclass(frozen=True, slots=True)
class StageFit:
    """One stage's learned coefficients (one per measure score; negative: protects against churn)."""

    stage: str
    source: str  # "stage": fitted on the stage's own observations; "pooled": every stage's
    churned: int
    not_churned: int
    coefficients: tuple[float, ...]
    message: str | None


def fit_stage_coefficients(
    measure_scores: np.ndarray,
    stage: np.ndarray,
    label: np.ndarray,
    *,
    neutral_score: float = 50.0,
    min_per_class: int = MIN_PER_CLASS,
    C: float = L2_C,
) -> list[StageFit]:
    """A class-balanced L2 logistic regression of churn on the measure scores, per stage.

    A stage with fewer than ``min_per_class`` observations of either class takes the pooled fit
    (every stage's observations, with a stage intercept each) and a message saying so. Raises
    ``NotEnoughOutcomes`` when even the pooled observations are too few.
    """
    x = centered_scores(measure_scores, neutral_score)
    churned = int(np.count_nonzero(label))
    if not _has_both(label, min_per_class):
        raise NotEnoughOutcomes(
            f"Too few outcomes to learn from: {churned} churned and {label.size - churned} not churned "
            f"observations; at least {min_per_class} of each are needed."
        )
    pooled: tuple[float, ...] | None = None
    fits = []
    for code, stage_name in enumerate(STAGES):
        rows = stage == code
        y = label[rows]
        pos = int(np.count_nonzero(y))
        neg = int(y.size) - pos
        if _has_both(y, min_per_class):
            model = _logistic(C, balanced=True).fit(x[rows], y)
            fits.append(StageFit(stage_name.value, "stage", pos, neg, tuple(model.coef_[0].tolist()), None))
            continue
        if pooled is None:
            model = _logistic(C, balanced=True).fit(np.hstack([x, _stage_columns(stage)]), label)
            pooled = tuple(model.coef_[0, : x.shape[1]].tolist())
        short = "churned" if pos < min_per_class else "not churned"
        fits.append(
            StageFit(
                stage_name.value,
                "pooled",
                pos,
                neg,
                pooled,
                f"Stage {stage_name.value}: {pos} churned and {neg} not churned observations, fewer than "
                f"{min_per_class} {short}; its weights come from all stages pooled.",
            )
        )
    return fits


@dataclass(frozen=True, slots=True)
class DirectionFlag:
    """A measure whose learned direction contradicts its configured one, in one stage."""

    stage: str
    measure: str
    configured_direction: str
    coefficient: float
    message: str


def weights_from_fits(
    fits: Sequence[StageFit], model: ScoringModel
) -> tuple[dict[str, dict[str, float]], list[DirectionFlag], list[str]]:
    """Turn coefficients into non-negative weights on each stage's scale.

    A measure's weight is ``-coefficient`` where that is positive, scaled so the stage's weights
    sum to what the model's weights for the stage sum to (the default config's sum to 100), and
    rounded to 4 decimals. A positive coefficient is flagged and weighs 0. A stage with no negative
    coefficient at all keeps the model's weights (and a message says so).
    """
    weights: dict[str, dict[str, float]] = {}
    flags = []
    notes = []
    for fit in fits:
        stage = next(s for s in STAGES if s.value == fit.stage)
        current = model.weights.get(stage, {})
        scale = sum(current.values()) or 100.0
        coef = np.asarray(fit.coefficients, dtype=np.float64)
        for measure, c in zip(model.measures, coef.tolist(), strict=True):
            if c > _COEF_EPS:
                flags.append(
                    DirectionFlag(
                        fit.stage,
                        measure.name,
                        measure.direction.value,
                        round(c, 6),
                        f"Stage {fit.stage}: churn rose as {measure.name} scored better (configured "
                        f"{measure.direction.value}; coefficient {c:+.4f}): weight set to 0, not flipped.",
                    )
                )
        raw = np.clip(-coef, 0.0, None)
        raw[raw <= _COEF_EPS] = 0.0
        if raw.sum() <= 0:
            weights[fit.stage] = {m.name: float(current.get(m.name, 0.0)) for m in model.measures}
            notes.append(f"Stage {fit.stage}: no measure protects against churn in these outcomes; weights unchanged.")
            continue
        scaled = np.round(raw / raw.sum() * scale, 4)
        if scaled.sum() <= 0:  # every weight rounded away: keep the largest
            scaled[int(np.argmax(raw))] = scale
        weights[fit.stage] = {m.name: float(w) for m, w in zip(model.measures, scaled.tolist(), strict=True)}
    return weights, flags, notes


def weight_matrix(weights: dict[str, dict[str, float]], measure_names: Sequence[str]) -> np.ndarray:
    """(stages, m) weights in ``STAGES`` and ``measure_names`` order (0 for a measure not named)."""
    return np.array(
        [[float(weights.get(stage.value, {}).get(name, 0.0)) for name in measure_names] for stage in STAGES],
        dtype=np.float64,
    )


def weighted_scores(measure_scores: np.ndarray, stage: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Health scores of (k, m) measure scores: the stage's weighted mean of the measures with data,
    NaN where none of the stage's weighted measures has data (``scoring.health`` does the same)."""
    w = weights[stage]  # (k, m)
    has = ~np.isnan(measure_scores)
    w = np.where(has, w, 0.0)
    total = w.sum(axis=1)
    weighted = np.where(has, measure_scores, 0.0) * w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weighted.sum(axis=1) / total, np.nan)


# --- ranking metrics ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RankingMetrics:
    """How well a health score ranks churn on some observations (risk: ``100 - score``).

    ``auc``: ROC AUC (None with ``note`` when one class is missing); ``top_decile_lift``: the churn
    rate among the 10 % lowest scores over the churn rate of all; ``churned_in_poor_share``: the
    share of churned observations whose score was in the poor band.
    """

    observations: int
    churned: int
    auc: float | None
    top_decile_lift: float | None
    churned_in_poor_share: float | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ranking_metrics(score: np.ndarray, label: np.ndarray, poor: float) -> RankingMetrics:
    """Metrics of health scores (NaN rows left out) against churn labels."""
    ok = ~np.isnan(score)
    s, y = score[ok], label[ok]
    churned = int(np.count_nonzero(y))
    note = None
    auc = None
    if s.size == 0:
        note = "No observation has a score."
    elif churned in (0, s.size):
        note = "Only one class among the observations: AUC needs churned and not churned ones."
    else:
        auc = round(float(roc_auc_score(y, 100.0 - s)), 6)
    lift = top_decile_lift(100.0 - s, y)
    in_poor = None if churned == 0 else round(int(np.count_nonzero((s < poor) & y)) / churned, 6)
    return RankingMetrics(int(s.size), churned, auc, None if lift is None else round(lift, 4), in_poor, note)


# --- suggestions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Suggested weights for ``model``'s measures, and how they and the model's own weights
    ranked churn on the later observations of a time-and-group split."""

    weights: dict[str, dict[str, float]]
    stage_fits: list[StageFit]
    flags: list[DirectionFlag]
    messages: list[str]
    counts: dict[str, int]
    split: dict[str, Any]
    validation_proposed: RankingMetrics | None
    validation_active: RankingMetrics | None
    horizon_poor_share_proposed: float | None
    horizon_poor_share_active: float | None
    validation_messages: list[str] = field(default_factory=list)


def suggest_weights(
    data: TrainingSet,
    model: ScoringModel,
    *,
    min_per_class: int = MIN_PER_CLASS,
    test_fraction: float = TEST_FRACTION,
    seed: int = 0,
    C: float = L2_C,
) -> Suggestion:
    """Fit suggested weights on every observation, and validate the procedure on a time-and-group
    split: fitted on the earlier side, proposed and active weights scored on the later side.

    ``data.measure_names`` must be ``model.measure_names``. Raises ``NotEnoughOutcomes`` when all
    the observations together have fewer than ``min_per_class`` of a class.
    """
    if data.measure_names != model.measure_names:
        raise ValueError("the training set's measures must be the model's, in its order")
    fits = fit_stage_coefficients(
        data.measure_scores, data.stage, data.label, neutral_score=model.neutral_score, min_per_class=min_per_class, C=C
    )
    weights, flags, notes = weights_from_fits(fits, model)
    messages = [f.message for f in fits if f.message] + notes
    active_w = weight_matrix({s.value: w for s, w in model.weights.items()}, model.measure_names)
    poor = model.bands.poor

    def poor_share(w: np.ndarray) -> float | None:
        return ranking_metrics(
            weighted_scores(data.measure_scores, data.stage, w), data.label, poor
        ).churned_in_poor_share

    split = time_group_split(data.observed_on, data.account_id, test_fraction=test_fraction, seed=seed)
    proposed_m = active_m = None
    validation_messages = []
    train, test = data.subset(split.train), data.subset(split.test)
    try:
        train_fits = fit_stage_coefficients(
            train.measure_scores, train.stage, train.label, neutral_score=model.neutral_score,
            min_per_class=min_per_class, C=C,
        )  # fmt: skip
    except NotEnoughOutcomes as exc:
        validation_messages.append(f"No validation: the earlier observations alone are too few. {exc}")
    else:
        train_weights, _, _ = weights_from_fits(train_fits, model)
        w = weight_matrix(train_weights, model.measure_names)
        proposed_s = weighted_scores(test.measure_scores, test.stage, w)
        active_s = weighted_scores(test.measure_scores, test.stage, active_w)
        both = ~np.isnan(proposed_s) & ~np.isnan(active_s)  # the same rows for both
        proposed_m = ranking_metrics(proposed_s[both], test.label[both], poor)
        active_m = ranking_metrics(active_s[both], test.label[both], poor)
    return Suggestion(
        weights=weights,
        stage_fits=fits,
        flags=flags,
        messages=messages,
        counts=data.counts(),
        split=split.counts(),
        validation_proposed=proposed_m,
        validation_active=active_m,
        horizon_poor_share_proposed=poor_share(weight_matrix(weights, model.measure_names)),
        horizon_poor_share_active=poor_share(active_w),
        validation_messages=validation_messages,
    )


# --- event lift -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleLift:
    """How much more often outcomes that a rule's event preceded were churns than outcomes overall.

    ``lift``: churn rate among those outcomes over the overall churn rate (None: the rule
    preceded no outcome, or nothing churned). ``ci_low``/``ci_high``: the Wilson 95 % interval of
    that churn rate divided by the overall rate (which is treated as known).
    """

    rule: int
    outcomes_with_event: int
    churned_with_event: int
    churn_rate_with_event: float | None
    lift: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True, slots=True)
class EventLift:
    outcomes: int
    churned: int
    churn_rate: float | None
    rules: list[RuleLift]


def event_lift(
    *,
    outcome_account: np.ndarray,
    outcome_day: np.ndarray,
    outcome_churned: np.ndarray,
    event_account: np.ndarray,
    event_rule: np.ndarray,
    event_day: np.ndarray,
    rules: int,
    window_days: int,
    z: float = Z_95,
) -> EventLift:
    """Per rule (codes ``0..rules-1`` in ``event_rule``): the outcomes with an event of the rule for
    their account dated in ``[outcome - window_days, outcome)``, how many of them were churns, and
    the lift over the overall churn rate with its interval. Vectorized: events are matched to
    outcomes by ``searchsorted`` over (account, day) keys."""
    n = outcome_account.shape[0]
    churned_total = int(np.count_nonzero(outcome_churned))
    scale = np.int64(1_000_000)
    okey = outcome_account.astype(np.int64) * scale + epoch_days(outcome_day)
    order = np.argsort(okey, kind="stable")
    sorted_keys = okey[order]
    ekey = event_account.astype(np.int64) * scale + epoch_days(event_day)
    # Outcomes with key in (ekey, ekey + window]: the same account, dated in (event, event + window].
    lo = np.searchsorted(sorted_keys, ekey, side="right")
    hi = np.searchsorted(sorted_keys, ekey + window_days, side="right")
    spans = hi - lo
    pair_event = np.repeat(np.arange(ekey.size), spans)
    pair_outcome = order[
        np.repeat(lo, spans) + (np.arange(pair_event.size) - np.repeat(np.cumsum(spans) - spans, spans))
    ]
    # Each (rule, outcome) once, however many times the rule fired in the window.
    pairs = np.unique(event_rule[pair_event].astype(np.int64) * max(n, 1) + pair_outcome)
    pair_rule, pair_out = np.divmod(pairs, max(n, 1))
    with_event = np.bincount(pair_rule, minlength=rules)[:rules]
    churned_with = np.bincount(pair_rule, weights=outcome_churned[pair_out].astype(np.float64), minlength=rules)[:rules]
    base = churned_total / n if n else None
    low, high = wilson_interval(churned_with, with_event, z)
    out = []
    for r in range(rules):
        trials = int(with_event[r])
        rate = None if trials == 0 else float(churned_with[r] / trials)
        usable = rate is not None and base
        out.append(
            RuleLift(
                r,
                trials,
                int(churned_with[r]),
                None if rate is None else round(rate, 6),
                round(rate / base, 4) if usable and rate is not None and base else None,
                round(float(low[r]) / base, 4) if usable and base else None,
                round(float(high[r]) / base, 4) if usable and base else None,
            )
        )
    return EventLift(n, churned_total, None if base is None else round(base, 6), out)
