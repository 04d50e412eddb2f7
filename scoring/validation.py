"""Honest validation of anything that ranks churn risk: walk-forward folds grouped by account,
ROC AUC with intervals from a bootstrap over accounts, paired differences between methods, and
churn rates by decile.

Pure numpy: no scikit-learn, no clock, seeds passed in.

**Walk forward.** The later part of the observation dates is cut into ``folds`` consecutive test
windows. Fold ``i`` tests on the observations dated in its window ``[T_i, T_{i+1})`` of one group
of accounts (each account belongs to exactly one group, drawn from the seed), and trains on the
observations of every *other* account whose label was known at ``T_i``: dated on or before
``T_i - horizon``. So a method is always judged on accounts it did not learn from, on dates after
everything it learned from, with labels it could not have seen. The test observations of all
folds, each scored by its own fold's fit, are pooled: every account is tested in one fold at most,
which keeps the bootstrap over accounts honest.

**Intervals.** Observations of one account are not independent (an account observed monthly
churns once), so intervals resample *accounts*: each draw takes as many accounts as there are,
with replacement, and every drawn account brings all its test observations. The same draws serve
every method, so the interval of a *difference* (proposal minus active config) is paired.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Normal quantile of the 95 % intervals.
Z_95 = 1.959963984540054
#: Bootstrap draws of the intervals.
DRAWS = 1000
#: Walk-forward test windows.
FOLDS = 3
#: The share of the observations (the latest) that the test windows cover together.
TEST_SHARE = 0.5
_EPOCH = dt.date(1970, 1, 1)


def _days(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[D]").astype(np.int64)


def _date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(day))


# --- walk-forward folds ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward fold: train and test masks over the observations.

    ``start`` is the first test day (``T_i``), ``end`` the first day after the window (None: open).
    Every training observation is dated on or before ``start - horizon``; no account has
    observations on both sides.
    """

    train: np.ndarray
    test: np.ndarray
    start: dt.date
    end: dt.date | None

    def counts(self, label: np.ndarray) -> dict[str, Any]:
        return {
            "test_from": self.start.isoformat(),
            "test_before": None if self.end is None else self.end.isoformat(),
            "train": int(np.count_nonzero(self.train)),
            "train_churned": int(np.count_nonzero(label[self.train])),
            "test": int(np.count_nonzero(self.test)),
            "test_churned": int(np.count_nonzero(label[self.test])),
        }


def walk_forward_folds(
    observed_on: np.ndarray,
    account_id: np.ndarray,
    *,
    horizon_days: int,
    folds: int = FOLDS,
    test_share: float = TEST_SHARE,
    seed: int = 0,
) -> list[Fold]:
    """Walk-forward folds over the observations (see the module doc); fewer than ``folds`` when
    there are too few distinct dates, none when there are fewer than two.

    Folds with no training observation (the window starts within one horizon of the first date)
    are still returned, with an empty ``train``: the caller says why it skipped them.
    """
    if folds < 1:
        raise ValueError("folds must be at least 1")
    if not 0.0 < test_share < 1.0:
        raise ValueError("test_share must be between 0 and 1")
    if horizon_days < 0:
        raise ValueError("horizon_days must not be negative")
    days = _days(observed_on)
    if days.size == 0:
        return []
    dates = np.unique(days)
    if dates.size < 2:
        return []
    # Window starts: quantiles of the observation dates over the latest test_share of them,
    # snapped to observation dates, distinct, and never the first date (something must precede).
    qs = 1.0 - test_share + test_share * np.arange(folds) / folds
    starts = np.unique(np.quantile(days, qs, method="higher"))
    starts = starts[starts > dates[0]]
    if starts.size == 0:
        starts = dates[-1:]
    accounts, inverse = np.unique(account_id, return_inverse=True)
    group = np.random.default_rng(seed).permutation(accounts.size)[inverse] % starts.size
    out = []
    for i, start in enumerate(starts.tolist()):
        end = starts[i + 1] if i + 1 < starts.size else None
        in_window = (days >= start) & (days < end if end is not None else True)
        test = in_window & (group == i)
        train = (days + horizon_days <= start) & (group != i)
        out.append(Fold(train, test, _date(start), None if end is None else _date(int(end))))
    return out


def sample_rows(rows: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """``rows`` (ascending indices), or a seeded sample of ``limit`` of them, ascending, when more:
    what a fit learns from when the observations outnumber what it needs."""
    if rows.size <= limit:
        return rows
    chosen: np.ndarray = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
    return chosen


# --- AUC, weighted, with ties ---------------------------------------------------------------------


class _Ranked:
    """One method's risk grouped into its distinct values once (ascending), so that each bootstrap
    draw costs two weighted counts over the observations."""

    def __init__(self, risk: np.ndarray, label: np.ndarray) -> None:
        _, self.group = np.unique(risk, return_inverse=True)
        self.groups = int(self.group.max()) + 1 if risk.size else 0
        self.label = label.astype(np.float64)

    def auc(self, weight: np.ndarray, weighted_label: np.ndarray | None = None) -> float:
        """The weighted AUC; ``weighted_label`` (``weight * label``) may be passed in when the same
        draw serves several methods."""
        wl = weight * self.label if weighted_label is None else weighted_label
        pos = np.bincount(self.group, weights=wl, minlength=self.groups)
        neg = np.bincount(self.group, weights=weight, minlength=self.groups) - pos
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos <= 0 or total_neg <= 0:
            return math.nan
        below = np.cumsum(neg) - neg  # negatives strictly less risky than the group
        return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))


def roc_auc(risk: np.ndarray, label: np.ndarray) -> float | None:
    """ROC AUC of ``risk`` (higher: more likely to churn) against ``label``, ties counted half;
    None when one class is missing. Equal to scikit-learn's ``roc_auc_score``."""
    risk = np.asarray(risk, dtype=np.float64)
    label = np.asarray(label, dtype=bool)
    value = _Ranked(risk, label).auc(np.ones(risk.size))
    return None if math.isnan(value) else value


# --- the bootstrap over accounts ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """A figure and its 95 % percentile interval (None where it could not be computed)."""

    value: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {k: None if v is None else round(v, 4) for k, v in asdict(self).items()}

    @property
    def excludes_zero(self) -> bool:
        """Whether the whole interval lies above zero (a difference beyond its interval)."""
        return self.low is not None and self.low > 0.0


@dataclass(frozen=True, slots=True)
class Comparison:
    """Several methods' AUCs on the same observations, each with its interval, and each one's
    paired difference against ``reference``."""

    observations: int
    churned: int
    accounts: int
    auc: dict[str, Interval]
    reference: str | None
    difference: dict[str, Interval]
    draws: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "observations": self.observations,
            "churned": self.churned,
            "accounts": self.accounts,
            "draws": self.draws,
            "auc": {k: v.to_dict() for k, v in self.auc.items()},
            "reference": self.reference,
            "difference_vs_reference": {k: v.to_dict() for k, v in self.difference.items()},
        }


def _percentiles(values: list[float], centre: float, normal: bool) -> tuple[float | None, float | None]:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0 or math.isnan(centre):
        return None, None
    if normal:  # few draws: the spread of the draws is steadier than their extreme quantiles
        half = Z_95 * float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        return centre - half, centre + half
    low, high = np.quantile(arr, [0.025, 0.975])
    return float(low), float(high)


def compare_methods(
    risks: Mapping[str, np.ndarray],
    label: np.ndarray,
    account_id: np.ndarray,
    *,
    reference: str | None = None,
    draws: int = DRAWS,
    seed: int = 0,
    normal: bool = False,
) -> Comparison:
    """ROC AUC of each method's risk on the same observations, with 95 % intervals from ``draws``
    bootstrap resamples of accounts, and the paired difference of each method against
    ``reference`` (one of ``risks``' keys) over the same draws. ``normal``: the intervals are the
    figure +- 1.96 standard deviations of the draws instead of the draws' 2.5th and 97.5th
    percentiles (for a ranking of many methods with few draws each).

    A risk that is NaN for an observation is a method that could not rank it: compare methods on
    rows every one of them ranks (the caller's job; NaN here raises).
    """
    label = np.asarray(label, dtype=bool)
    if reference is not None and reference not in risks:
        raise ValueError(f"reference {reference!r} is not one of the methods")
    ranked = {}
    for name, risk in risks.items():
        r = np.asarray(risk, dtype=np.float64)
        if r.shape != label.shape:
            raise ValueError(f"{name}: one risk per observation is needed")
        if np.isnan(r).any():
            raise ValueError(f"{name}: a risk is NaN; compare methods on rows all of them rank")
        ranked[name] = _Ranked(r, label)
    accounts, inverse = np.unique(account_id, return_inverse=True)
    ones = np.ones(label.size)
    point = {name: rk.auc(ones) for name, rk in ranked.items()}
    samples: dict[str, list[float]] = {name: [] for name in ranked}
    rng = np.random.default_rng(seed)
    for _ in range(draws if accounts.size else 0):
        per_account = np.bincount(rng.integers(0, accounts.size, accounts.size), minlength=accounts.size)
        weight = per_account[inverse].astype(np.float64)
        weighted_label = weight * label
        for name, rk in ranked.items():
            samples[name].append(rk.auc(weight, weighted_label))
    auc = {}
    for name in ranked:
        low, high = _percentiles(samples[name], point[name], normal)
        value = None if math.isnan(point[name]) else point[name]
        auc[name] = Interval(value, low, high)
    difference = {}
    if reference is not None:
        base = np.asarray(samples[reference])
        for name in ranked:
            if name == reference:
                continue
            diff = point[name] - point[reference]
            low, high = _percentiles((np.asarray(samples[name]) - base).tolist(), diff, normal)
            difference[name] = Interval(None if math.isnan(diff) else diff, low, high)
    return Comparison(
        int(label.size), int(np.count_nonzero(label)), int(accounts.size), auc, reference, difference, draws
    )


# --- churn by decile ------------------------------------------------------------------------------


def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion, elementwise (NaN where ``trials`` is 0)."""
    n = np.asarray(trials, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.asarray(successes, dtype=np.float64) / n
        denominator = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denominator
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denominator
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class Decile:
    """The observations in one tenth of the risk order (1: the riskiest) and how many churned."""

    decile: int
    observations: int
    churned: int
    churn_rate: float
    low: float
    high: float


def churn_by_decile(risk: np.ndarray, label: np.ndarray, bins: int = 10) -> list[Decile]:
    """Churn rate with a Wilson 95 % interval in each of ``bins`` equal-count groups of the risk
    order, riskiest first (ties broken by position); empty groups left out."""
    risk = np.asarray(risk, dtype=np.float64)
    label = np.asarray(label, dtype=bool)
    order = np.argsort(-risk, kind="stable")
    groups = np.array_split(order, bins)
    n = np.array([g.size for g in groups])
    churned = np.array([int(np.count_nonzero(label[g])) for g in groups])
    low, high = wilson_interval(churned, n)
    return [
        Decile(i + 1, int(n[i]), int(churned[i]), round(churned[i] / n[i], 6), round(float(low[i]), 6),
               round(float(high[i]), 6))
        for i in range(bins)
        if n[i]
    ]  # fmt: skip


def top_decile_lift(risk: np.ndarray, label: np.ndarray) -> float | None:
    """Churn rate of the riskiest tenth (at least one row; ties broken by position) over the overall rate."""
    churned = int(np.count_nonzero(label))
    if risk.size == 0 or churned == 0:
        return None
    top = max(1, math.ceil(risk.size / 10))
    order = np.argsort(-np.asarray(risk, dtype=np.float64), kind="stable")[:top]
    return float(np.count_nonzero(np.asarray(label)[order]) / top / (churned / risk.size))
