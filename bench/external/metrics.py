"""ROC AUC and its bootstrap interval, resampling accounts (pure numpy: no database, no app)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The probability that a random positive scores above a random negative (ties count half):
    the Mann-Whitney form of ROC AUC, with average ranks for ties. NaN when either class is empty."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranked = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # Average rank (1-based) of each run of equal scores.
    starts = np.r_[0, np.flatnonzero(np.diff(ranked)) + 1]
    ends = np.r_[starts[1:], s.size]
    averages = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(averages, ends - starts)
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


@dataclass(frozen=True, slots=True)
class AucInterval:
    auc: float
    low: float  # 2.5th percentile of the bootstrap AUCs
    high: float  # 97.5th percentile
    resamples: int  # bootstrap draws that had both classes (the interval's basis)


def bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, *, draws: int = 1000, seed: int = 0
) -> AucInterval:
    """AUC with a 95% percentile interval from a cluster bootstrap: each draw resamples the
    ``groups`` (accounts) with replacement and keeps all of a drawn account's observations, since
    one account's monthly observations are not independent. Draws without both classes are
    skipped. Deterministic for a given ``seed``."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    _, group_index = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(group_index.max()) + 1 if group_index.size else 0
    members = np.argsort(group_index, kind="mergesort")
    counts = np.bincount(group_index, minlength=n_groups)
    offsets = np.r_[0, np.cumsum(counts)]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(draws):
        drawn = rng.integers(0, n_groups, n_groups)
        rows = members[_ranges(offsets[drawn], counts[drawn])]
        value = roc_auc(y[rows], s[rows])
        if not np.isnan(value):
            aucs.append(value)
    point = roc_auc(y, s)
    if not aucs:
        return AucInterval(point, float("nan"), float("nan"), 0)
    low, high = np.percentile(aucs, [2.5, 97.5])
    return AucInterval(point, float(low), float(high), len(aucs))


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of ``range(start, start + length)`` for each pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    # Position k belongs to pair i; its value is starts[i] + (k - first position of pair i).
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(total)
