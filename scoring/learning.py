"""Learning from outcomes: training sets, a time-and-group split, a calibrated churn model and
event lift, over arrays. (Suggested configs: ``scoring/discovery.py``; walk-forward validation:
``scoring/validation.py``.)

Pure: numpy and scikit-learn in, plain data out; no clock, no I/O, every seed passed in. The rows
come from ``app/services/analysis.py``, which computes each observation's measures from the raw
tables as of the observation date (see docs/learning.md for the leakage rules).

Vocabulary:

- an **observation** is one account on one date, with its measure scores (0-100, NaN: no data)
  and lifecycle stage as of that date;
- its **label** is whether the account churned within the horizon after the date, i.e. has a
  ``churned`` outcome dated in ``(date, date + horizon]``. A downgrade is not a churn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from scoring.stage import STAGES
from scoring.validation import Z_95, wilson_interval

#: Fewer observations than this of either class in a stage: that stage takes the pooled weights.
MIN_PER_CLASS = 30
#: The share of observations (the latest ones) the validation tests on.
TEST_FRACTION = 0.3
#: Inverse L2 regularization strength of every logistic regression (scikit-learn's ``C``).
L2_C = 1.0
#: Bins of the churn model's reliability table (equal width over 0-1).
RELIABILITY_BINS = 10
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


def churn_feature_names(measure_names: Sequence[str]) -> tuple[str, ...]:
    """The churn model's columns: each measure's centered score, whether it had data, the stage."""
    return (
        *(f"score:{name}" for name in measure_names),
        *(f"missing:{name}" for name in measure_names),
        *(f"stage:{stage.value}" for stage in STAGES),
    )


def churn_features(measure_scores: np.ndarray, stage: np.ndarray, neutral_score: float = 50.0) -> np.ndarray:
    """The (k, 2m + stages) feature matrix of ``churn_feature_names`` for (k, m) measure scores."""
    missing = np.isnan(measure_scores).astype(np.float64)
    features: np.ndarray = np.hstack([centered_scores(measure_scores, neutral_score), missing, _stage_columns(stage)])
    return features


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


# --- weights and scores ---------------------------------------------------------------------------


def _has_both(label: np.ndarray, min_per_class: int) -> bool:
    churned = int(np.count_nonzero(label))
    return churned >= min_per_class and label.size - churned >= min_per_class


def _logistic(C: float, *, balanced: bool) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=1000)


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


# --- the churn model ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Observations whose predicted probability fell in ``[low, high)``: how many, the mean
    prediction and the share that churned (a calibrated model has the two close)."""

    low: float
    high: float
    observations: int
    mean_predicted: float
    observed_rate: float


def reliability_table(probability: np.ndarray, label: np.ndarray, bins: int = RELIABILITY_BINS) -> list[ReliabilityBin]:
    """Equal-width bins over 0-1 (the last one closed), empty bins left out."""
    index = np.minimum((probability * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    mean = np.bincount(index, weights=probability, minlength=bins)
    positives = np.bincount(index, weights=label.astype(np.float64), minlength=bins)
    return [
        ReliabilityBin(
            round(i / bins, 6),
            round((i + 1) / bins, 6),
            int(count[i]),
            round(float(mean[i] / count[i]), 6),
            round(float(positives[i] / count[i]), 6),
        )
        for i in range(bins)
        if count[i]
    ]


@dataclass(frozen=True, slots=True)
class ChurnValidation:
    """The churn model's figures on the later side of a time-and-group split."""

    observations: int
    churned: int
    auc: float | None
    brier: float | None
    base_rate_brier: float | None  # the Brier score of always predicting the training churn rate
    reliability: list[ReliabilityBin]
    split: dict[str, Any]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # the reliability bins become dicts too


@dataclass(frozen=True, slots=True)
class ChurnModelFit:
    """A fitted churn model over ``feature_names`` and how it validated."""

    estimator: Any  # a fitted CalibratedClassifierCV (a ``ProbabilityModel``)
    feature_names: tuple[str, ...]
    measure_names: tuple[str, ...]
    neutral_score: float
    counts: dict[str, int]
    validation: ChurnValidation


def _calibrated(C: float) -> CalibratedClassifierCV:
    # Not class-balanced: balancing would move the probabilities away from the real churn rate,
    # which is the one thing this model is for. Platt scaling over 3 folds (sorted, no shuffle).
    return CalibratedClassifierCV(_logistic(C, balanced=False), method="sigmoid", cv=3)


def fit_churn_model(
    data: TrainingSet,
    *,
    neutral_score: float = 50.0,
    min_per_class: int = MIN_PER_CLASS,
    test_fraction: float = TEST_FRACTION,
    seed: int = 0,
    C: float = L2_C,
) -> ChurnModelFit:
    """A calibrated churn model (an L2 logistic regression with Platt scaling over 3 folds) fitted
    on every observation, validated by the same procedure fitted on the earlier side of a
    time-and-group split and scored on the later side (ROC AUC, Brier score, reliability table).

    Raises ``NotEnoughOutcomes`` when the observations have fewer than ``min_per_class`` of a class.
    """
    churned = int(np.count_nonzero(data.label))
    if not _has_both(data.label, min_per_class):
        raise NotEnoughOutcomes(
            f"Too few outcomes to train a churn model: {churned} churned and {data.size - churned} not "
            f"churned observations; at least {min_per_class} of each are needed."
        )
    features = churn_features(data.measure_scores, data.stage, neutral_score)
    split = time_group_split(data.observed_on, data.account_id, test_fraction=test_fraction, seed=seed)
    y_train, y_test = data.label[split.train], data.label[split.test]
    if _has_both(y_train, 3) and y_test.size:
        estimator = _calibrated(C).fit(features[split.train], y_train)
        p = estimator.predict_proba(features[split.test])[:, 1]
        both = 0 < np.count_nonzero(y_test) < y_test.size
        base = float(y_train.mean())
        validation = ChurnValidation(
            int(y_test.size),
            int(np.count_nonzero(y_test)),
            round(float(roc_auc_score(y_test, p)), 6) if both else None,
            round(float(brier_score_loss(y_test, p)), 6),
            round(float(np.mean((y_test - base) ** 2)), 6),
            reliability_table(p, y_test),
            split.counts(),
            None if both else "Only one class among the later observations: no AUC.",
        )
    else:
        validation = ChurnValidation(
            int(y_test.size), int(np.count_nonzero(y_test)), None, None, None, [], split.counts(),
            "Too few earlier or later observations for a time-respecting validation.",
        )  # fmt: skip
    estimator = _calibrated(C).fit(features, data.label)
    return ChurnModelFit(
        estimator, churn_feature_names(data.measure_names), data.measure_names, neutral_score, data.counts(), validation
    )


def align_measure_scores(measure_scores: np.ndarray, names: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """(k, len(target)) columns of (k, len(names)) ``measure_scores`` by name; NaN for a missing name."""
    out = np.full((measure_scores.shape[0], len(target)), np.nan, dtype=np.float64)
    position = {name: i for i, name in enumerate(names)}
    for j, name in enumerate(target):
        i = position.get(name)
        if i is not None:
            out[:, j] = measure_scores[:, i]
    return out


def predict_churn(
    estimator: ProbabilityModel, measure_scores: np.ndarray, stage: np.ndarray, neutral_score: float = 50.0
) -> np.ndarray:
    """Churn probabilities of (k, m) measure scores (in the model's measure order), one call."""
    if measure_scores.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    proba = np.asarray(estimator.predict_proba(churn_features(measure_scores, stage, neutral_score)))
    return proba[:, 1].astype(np.float64)


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
