"""scoring/backtest.py: rescoring stored values by version, band moves, and the backtest metrics."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scoring.backtest import (
    ValueBlock,
    align_values,
    backtest_metrics,
    band_moves,
    churn_auc,
    largest_changes,
    rescore,
)
from scoring.bands import NO_BAND
from scoring.health import compute_health
from scoring.model import ScoringModel, default_config_dict, model_from_dict
from tests.support.examples import examples

pytestmark = pytest.mark.unit

DEFAULT = model_from_dict(default_config_dict())


def _subset_model(names: list[str], weight: dict[str, float] | None = None) -> ScoringModel:
    data = default_config_dict()
    data["measures"] = [m for m in data["measures"] if m["name"] in names]
    data["weights"] = {
        stage: {n: (weight or {}).get(n, w) for n, w in weights.items() if n in names}
        for stage, weights in data["weights"].items()
    }
    for weights in data["weights"].values():
        if not any(w > 0 for w in weights.values()):
            weights[names[0]] = 1.0
    data["rules"] = []
    return model_from_dict(data)


def test_align_values_reorders_by_name_and_fills_missing_with_nan():
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = align_values(values, ("b", "a"), ("a", "c", "b"))
    np.testing.assert_array_equal(out[0], [3.0, 4.0])
    assert np.isnan(out[1]).all()
    np.testing.assert_array_equal(out[2], [1.0, 2.0])
    with pytest.raises(ValueError, match="values must be"):
        align_values(values, ("a",), ("a",))


@settings(max_examples=examples(60), deadline=None)
@given(
    raw=arrays(
        np.float64,
        (len(DEFAULT.measures), 7),
        elements=st.one_of(st.floats(-200, 200, allow_nan=False), st.just(np.nan)),
    ),
    stage=arrays(np.int8, 7, elements=st.integers(0, 2)),
    split=st.integers(0, 7),
)
def test_rescore_from_stored_values_equals_compute_health(raw, stage, split):
    """Rows split into two blocks (as two config versions would be) score as compute_health does."""
    rows = np.arange(7)
    first, second = rows[:split], rows[split:]
    names = DEFAULT.measure_names
    reversed_names = names[::-1]
    blocks = [
        ValueBlock(names, raw[:, first], stage[first], first),
        # The second block stores its values in another measure order: the names decide.
        ValueBlock(reversed_names, raw[::-1, second], stage[second], second),
    ]
    got = rescore(blocks, 7, DEFAULT)
    expected = compute_health(raw, stage, DEFAULT)
    np.testing.assert_array_equal(got.score, expected.score)
    np.testing.assert_array_equal(got.band, expected.band)


def test_rescore_treats_a_measure_the_version_lacks_as_no_data():
    only_nps = _subset_model(["nps"])
    # A row of a version that had only NPS, rescored with the default model: every other measure is NaN.
    block = ValueBlock(("nps",), np.array([[50.0]]), np.array([1], dtype=np.int8), np.array([0]))
    got = rescore([block], 2, DEFAULT)
    raw = np.full((len(DEFAULT.measures), 1), np.nan)
    raw[DEFAULT.measure_names.index("nps"), 0] = 50.0
    assert got.score[0] == compute_health(raw, np.array([1], dtype=np.int8), DEFAULT).score[0]
    assert np.isnan(got.score[1]) and got.band[1] == NO_BAND  # row 1 is in no block
    assert rescore([block], 1, only_nps).score[0] == 100.0


def test_band_moves_counts_changes_by_stage_and_ignores_unchanged():
    stage = np.array([1, 1, 1, 2, 0], dtype=np.int8)
    before = np.array([0, 0, 1, 2, NO_BAND], dtype=np.int8)
    after = np.array([1, 1, 1, 1, 2], dtype=np.int8)
    moves = [(m.stage, m.band_from, m.band_to, m.accounts) for m in band_moves(stage, before, after)]
    assert moves == [
        ("onboarding", None, "poor", 1),
        ("established", "good", "average", 2),
        ("pre_renewal", "poor", "average", 1),
    ]


def test_largest_changes_orders_by_absolute_change_and_caps():
    before = np.array([10.0, 50.0, 70.0, np.nan, 30.0])
    after = np.array([20.0, 10.0, 70.0, 40.0, 31.0])
    changed = np.array([True, True, False, True, True])
    assert largest_changes(before, after, changed, 10).tolist() == [3, 1, 0, 4]
    assert largest_changes(before, after, changed, 2).tolist() == [3, 1]
    assert largest_changes(before, after, changed, 0).tolist() == []


def test_auc_is_one_when_churned_accounts_score_lowest_and_none_with_one_class():
    score = np.array([10.0, 20.0, 80.0, 90.0])
    churned = np.array([True, True, False, False])
    assert churn_auc(score, churned) == (1.0, None)
    assert churn_auc(score[::-1].copy(), churned)[0] == 0.0
    assert churn_auc(np.full(4, 50.0), churned)[0] == 0.5  # ties: no information
    auc, note = churn_auc(score, np.zeros(4, dtype=bool))
    assert auc is None and "Only renewals" in (note or "")
    auc, note = churn_auc(score, np.ones(4, dtype=bool))
    assert auc is None and "Only churns" in (note or "")
    assert churn_auc(np.array([]), np.array([], dtype=bool))[0] is None


def test_backtest_metrics_shares_and_means():
    score = np.array([10.0, 35.0, 60.0, 90.0, 20.0])
    band = np.array([2, 2, 1, 0, 2], dtype=np.int8)
    churned = np.array([True, True, True, False, False])
    metrics = backtest_metrics(score, band, churned)
    assert metrics.churned_in_poor_share == pytest.approx(2 / 3, abs=1e-6)
    assert metrics.renewed_in_poor_share == 0.5
    assert metrics.mean_score_churned == 35.0 and metrics.mean_score_renewed == 55.0
    assert metrics.auc == pytest.approx(4 / 6, abs=1e-6)
    with pytest.raises(ValueError, match="scored rows only"):
        backtest_metrics(np.array([np.nan]), np.array([NO_BAND], dtype=np.int8), np.array([True]))


def test_a_config_weighting_the_separating_measure_backtests_better():
    """Churned accounts have low NPS and high CSAT; renewed ones the reverse."""
    nps_only = _subset_model(["nps", "csat_avg"], {"nps": 1.0, "csat_avg": 0.0})
    csat_only = _subset_model(["nps", "csat_avg"], {"nps": 0.0, "csat_avg": 1.0})
    values = np.array([[-80.0, -60.0, 60.0, 80.0], [4.8, 4.9, 2.0, 1.5]])
    block = ValueBlock(("nps", "csat_avg"), values, np.ones(4, dtype=np.int8), np.arange(4))
    churned = np.array([True, True, False, False])
    good = rescore([block], 4, nps_only)
    bad = rescore([block], 4, csat_only)
    assert backtest_metrics(good.score, good.band, churned).auc == 1.0
    assert backtest_metrics(good.score, good.band, churned).churned_in_poor_share == 1.0
    assert backtest_metrics(bad.score, bad.band, churned).auc == 0.0


def test_subset_model_helper_leaves_the_default_untouched():
    before = copy.deepcopy(default_config_dict())
    _subset_model(["nps"])
    assert default_config_dict() == before
