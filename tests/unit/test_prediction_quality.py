"""Prediction quality from bucket sums agrees with scikit-learn on the predictions themselves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, roc_auc_score

from scoring.prediction_quality import RESOLUTION, buckets_of, prediction_quality

pytestmark = pytest.mark.unit


def test_auc_and_brier_match_scikit_learn_on_distinct_probabilities() -> None:
    rng = np.random.default_rng(4)
    p = np.round(rng.random(5_000), 4)  # one prediction per bucket value: no within-bucket ties
    y = (rng.random(5_000) < p).astype(float)
    quality = prediction_quality(buckets_of(p, y))
    assert quality.auc == pytest.approx(roc_auc_score(y, p), abs=1e-4)
    assert quality.brier == pytest.approx(brier_score_loss(y, p), abs=1e-6)
    assert quality.predictions == 5_000 and quality.churned == int(y.sum())


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 1.0, allow_nan=False), st.booleans()),
        min_size=1,
        max_size=200,
    )
)
def test_auc_is_within_the_bucket_width_of_the_exact_one(pairs: list[tuple[float, bool]]) -> None:
    p = np.round(np.array([a for a, _ in pairs]), 6)
    y = np.array([float(b) for _, b in pairs])
    quality = prediction_quality(buckets_of(p, y))
    assert quality.brier == pytest.approx(float(np.mean((p - y) ** 2)), abs=1e-6)
    if 0 < y.sum() < y.size:
        exact = roc_auc_score(y, p)
        # Only pairs closer than one bucket can differ (counted as ties): bound by their share.
        close = np.abs(p[y == 1][:, None] - p[y == 0][None, :]) < 1.0 / RESOLUTION
        assert abs(quality.auc - exact) <= close.mean() / 2 + 1e-4  # type: ignore[operator]
    else:
        assert quality.auc is None
    assert sum(row.count for row in quality.deciles) == y.size
    assert sum(row.churned for row in quality.deciles) == int(y.sum())


def test_deciles_are_ten_ordered_groups_with_their_observed_rates() -> None:
    p = np.repeat(np.arange(1, 11) / 20.0, 100)  # ten distinct probabilities, 100 each
    y = np.concatenate([np.r_[np.ones(k), np.zeros(100 - k)] for k in range(0, 100, 10)])
    rows = prediction_quality(buckets_of(p, y)).deciles
    assert [r.decile for r in rows] == list(range(1, 11))
    assert [r.count for r in rows] == [100] * 10
    assert [r.observed_rate for r in rows] == [k / 100 for k in range(0, 100, 10)]
    assert [r.mean_probability for r in rows] == pytest.approx(list(np.arange(1, 11) / 20.0))
    assert rows[0].min_probability == 0.05 and rows[-1].max_probability == 0.5


def test_no_predictions_and_one_class() -> None:
    empty = prediction_quality(buckets_of(np.empty(0), np.empty(0)))
    assert (empty.predictions, empty.auc, empty.brier, empty.deciles) == (0, None, None, [])
    none_churned = prediction_quality(buckets_of(np.array([0.1, 0.2]), np.zeros(2)))
    assert none_churned.auc is None and none_churned.brier == pytest.approx((0.01 + 0.04) / 2)
