"""How good stored churn predictions were: ROC AUC, Brier score and calibration by decile, from
per-bucket sums (the database groups the predictions; no list of every prediction is needed).

Predictions are grouped into buckets of nearby probabilities (``bucket = floor(p * RESOLUTION)``),
and each bucket carries its count, churned count, sum of p, sum of p squared, sum of p over the
churned, and smallest and largest p. The Brier score is exact from those sums; the AUC counts two
predictions in the same bucket as a tie (half credit), so it is exact up to 1/RESOLUTION in
probability; deciles are made of whole buckets, as equal in size as the buckets allow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Buckets per unit of probability: predictions closer than 0.0001 may share one.
RESOLUTION = 10_000
DECILES = 10


@dataclass(frozen=True, slots=True)
class PredictionBuckets:
    """Sums per bucket of predictions, in ascending bucket order (arrays of equal length)."""

    bucket: np.ndarray  # int64, ascending
    count: np.ndarray  # float64: predictions
    churned: np.ndarray  # float64: of them, churned within the horizon
    sum_p: np.ndarray
    sum_p2: np.ndarray
    sum_p_churned: np.ndarray
    min_p: np.ndarray
    max_p: np.ndarray


@dataclass(frozen=True, slots=True)
class DecileRow:
    decile: int  # 1 (lowest predicted risk) .. 10 (highest)
    count: int
    churned: int
    mean_probability: float
    observed_rate: float
    min_probability: float
    max_probability: float


@dataclass(frozen=True, slots=True)
class PredictionQuality:
    predictions: int
    churned: int
    base_rate: float | None  # share churned
    mean_probability: float | None
    auc: float | None  # None without both classes
    brier: float | None  # None without predictions
    deciles: list[DecileRow]


def bucket_auc(buckets: PredictionBuckets) -> float | None:
    """ROC AUC: the chance a churned prediction is above a not-churned one (ties count half)."""
    positives = buckets.churned
    negatives = buckets.count - buckets.churned
    total_pos, total_neg = float(positives.sum()), float(negatives.sum())
    if total_pos == 0 or total_neg == 0:
        return None
    below = np.cumsum(negatives) - negatives  # not-churned predictions in lower buckets
    wins = float(np.sum(positives * (below + 0.5 * negatives)))
    return wins / (total_pos * total_neg)


def decile_rows(buckets: PredictionBuckets) -> list[DecileRow]:
    """Calibration: predictions in ten groups of ascending probability, each with its mean
    prediction and observed churn rate (a bucket goes whole to the decile of its middle)."""
    n = float(buckets.count.sum())
    if n == 0:
        return []
    middle = np.cumsum(buckets.count) - buckets.count / 2.0
    decile = np.minimum((middle * DECILES / n).astype(np.int64), DECILES - 1)
    rows = []
    for d in range(DECILES):
        inside = decile == d
        count = float(buckets.count[inside].sum())
        if count == 0:
            continue
        rows.append(
            DecileRow(
                decile=d + 1,
                count=int(count),
                churned=int(buckets.churned[inside].sum()),
                mean_probability=round(float(buckets.sum_p[inside].sum()) / count, 6),
                observed_rate=round(float(buckets.churned[inside].sum()) / count, 6),
                min_probability=float(buckets.min_p[inside].min()),
                max_probability=float(buckets.max_p[inside].max()),
            )
        )
    return rows


def prediction_quality(buckets: PredictionBuckets) -> PredictionQuality:
    """Every figure of ``PredictionQuality`` from the bucket sums (see the module docstring)."""
    n = float(buckets.count.sum())
    churned = float(buckets.churned.sum())
    if n == 0:
        return PredictionQuality(0, 0, None, None, None, None, [])
    # mean of (p - y)^2 = (sum p^2 - 2 sum p*y + sum y) / n, with y in {0, 1}
    brier = (float(buckets.sum_p2.sum()) - 2.0 * float(buckets.sum_p_churned.sum()) + churned) / n
    auc = bucket_auc(buckets)
    return PredictionQuality(
        predictions=int(n),
        churned=int(churned),
        base_rate=round(churned / n, 6),
        mean_probability=round(float(buckets.sum_p.sum()) / n, 6),
        auc=None if auc is None else round(auc, 4),
        brier=round(max(brier, 0.0), 6),
        deciles=decile_rows(buckets),
    )


def merge_buckets(bucket: np.ndarray, sums: np.ndarray) -> PredictionBuckets:
    """Rows of bucket sums that may repeat a bucket (grouped by more than the bucket), merged:
    ``sums`` is (k, 7): count, churned, sum of p, of p squared, of p over the churned, min p, max p."""
    keys, inverse = np.unique(np.asarray(bucket, dtype=np.int64), return_inverse=True)
    size = keys.size
    totals = [np.bincount(inverse, weights=sums[:, i], minlength=size) for i in range(5)]
    low = np.full(size, np.inf)
    high = np.full(size, -np.inf)
    np.minimum.at(low, inverse, sums[:, 5])
    np.maximum.at(high, inverse, sums[:, 6])
    count, churned, sum_p, sum_p2, sum_p_churned = totals
    return PredictionBuckets(keys, count, churned, sum_p, sum_p2, sum_p_churned, low, high)


def buckets_of(probability: np.ndarray, churned: np.ndarray) -> PredictionBuckets:
    """The buckets of a list of predictions (what the database query computes; for tests and
    small inputs)."""
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(churned, dtype=np.float64)
    bucket = np.floor(p * RESOLUTION).astype(np.int64)
    return merge_buckets(bucket, np.column_stack([np.ones_like(p), y, p, p * p, p * y, p, p]))
