"""Learning from outcomes: training sets, weighted scores and event lift, over arrays. (Suggested
configs: ``scoring/discovery.py``; the churn model: ``scoring/churn.py``; walk-forward validation:
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
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from scoring.stage import STAGES
from scoring.validation import Z_95, wilson_interval

#: Fewer observations than this of either class: too few to learn from (a stage with fewer takes
#: the weights of all stages pooled).
MIN_PER_CLASS = 30
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


# --- weights and scores ---------------------------------------------------------------------------


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
