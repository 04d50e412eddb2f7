"""The learning core: labels, observation dates, the time-and-group split, suggested weights (stage
fits, pooled fallback, the minimum-data guard, direction flags), calibration, event lift."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.health import compute_health
from scoring.learning import (
    TrainingSet,
    align_measure_scores,
    churn_feature_names,
    churn_features,
    concat_training_sets,
    event_lift,
    fit_churn_model,
    label_churn,
    outcome_observation_days,
    periodic_observation_days,
    predict_churn,
    reliability_table,
    time_group_split,
    weight_matrix,
    weighted_scores,
    wilson_interval,
)
from scoring.model import default_config_dict, model_from_dict
from scoring.stage import STAGES
from tests.support.examples import examples

pytestmark = pytest.mark.unit

MODEL = model_from_dict(default_config_dict())
M = len(MODEL.measures)


def days(*values: str) -> np.ndarray:
    return np.array(values, dtype="datetime64[D]")


def synthetic(
    n_accounts: int = 3000,
    per_account: int = 4,
    *,
    seed: int = 1,
    truth: np.ndarray | None = None,
    intercept: float = -1.5,
    stage: np.ndarray | None = None,
) -> tuple[TrainingSet, np.ndarray]:
    """Observations whose churn follows a known logistic model of the centered measure scores;
    returns the set and each row's true churn probability."""
    rng = np.random.default_rng(seed)
    k = n_accounts * per_account
    account = np.repeat(np.arange(1, n_accounts + 1), per_account)
    observed = np.datetime64("2025-01-01") + np.tile(np.arange(per_account) * 30, n_accounts).astype("timedelta64[D]")
    scores = rng.uniform(0, 100, (k, M))
    scores[rng.random((k, M)) < 0.1] = np.nan
    beta = -np.linspace(0.3, 2.0, M) if truth is None else truth
    x = np.nan_to_num((scores - 50.0) / 50.0)
    p = 1.0 / (1.0 + np.exp(-(intercept + x @ beta)))
    label = rng.random(k) < p
    stages = rng.integers(0, len(STAGES), k).astype(np.int8) if stage is None else stage
    return TrainingSet(observed, account, stages, scores, label, MODEL.measure_names), p


# --- labels and observation dates -------------------------------------------------------------------


def test_label_churn_counts_a_churn_in_the_horizon_after_the_date_only() -> None:
    observed = days("2025-01-01", "2025-01-01", "2025-01-01", "2025-01-01", "2025-01-01")
    account = np.array([1, 2, 3, 4, 5])
    churn_day = days("2025-01-01", "2025-01-02", "2025-04-01", "2025-04-02", "2025-02-01")
    churn_account = np.array([1, 2, 3, 4, 6])  # account 5 has no churn; 6 is not observed
    # (t, t + 90]: the same day is not "after", day 90 is inside, day 91 outside.
    assert label_churn(observed, account, churn_day, churn_account, 90).tolist() == [False, True, True, False, False]
    assert label_churn(observed, account, days(), np.empty(0, np.int64), 90).tolist() == [False] * 5


@given(
    st.lists(st.integers(min_value=0, max_value=40_000), min_size=1, max_size=50),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=1, max_value=31),
)
def test_outcome_observation_days_never_look_later_than_the_horizon(
    outcome: list[int], horizon: int, snap: int
) -> None:
    day = np.array(outcome, dtype="datetime64[D]")
    observed = outcome_observation_days(day, horizon, snap)
    gap = (day - observed).astype(np.int64)
    assert np.all(gap >= horizon) and np.all(gap < horizon + snap)
    assert np.all(observed.astype(np.int64) % snap == 0)


def test_periodic_observation_days_step_back_calendar_months() -> None:
    assert periodic_observation_days(dt.date(2025, 3, 31), 4) == [
        dt.date(2024, 12, 31),
        dt.date(2025, 1, 31),
        dt.date(2025, 2, 28),
        dt.date(2025, 3, 31),
    ]
    assert periodic_observation_days(dt.date(2025, 1, 15), 1) == [dt.date(2025, 1, 15)]
    assert periodic_observation_days(dt.date(2025, 1, 15), 0) == []


def test_training_set_checks_shapes_and_concatenates() -> None:
    data, _ = synthetic(10, 2)
    with pytest.raises(ValueError, match="measure_scores"):
        TrainingSet(
            data.observed_on, data.account_id, data.stage, data.measure_scores[:, :2], data.label, data.measure_names
        )
    with pytest.raises(ValueError, match="stage codes"):
        TrainingSet(
            data.observed_on, data.account_id, data.stage + 5, data.measure_scores, data.label, data.measure_names
        )
    both = concat_training_sets([data, data.subset(data.label)], MODEL.measure_names)
    assert both.size == data.size + int(data.label.sum())
    assert concat_training_sets([], MODEL.measure_names).counts() == {
        "observations": 0, "churned": 0, "not_churned": 0, "accounts": 0,
    }  # fmt: skip


# --- the split --------------------------------------------------------------------------------------


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=400)),
        min_size=1,
        max_size=200,
    ),
    st.floats(min_value=0.1, max_value=0.5),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_split_respects_time_and_keeps_each_account_on_one_side(
    rows: list[tuple[int, int]], test_fraction: float, seed: int
) -> None:
    account = np.array([a for a, _ in rows], dtype=np.int64)
    observed = np.array([d for _, d in rows], dtype=np.int64).astype("datetime64[D]")
    split = time_group_split(observed, account, test_fraction=test_fraction, seed=seed)
    assert not np.any(split.train & split.test)
    assert set(account[split.train].tolist()).isdisjoint(account[split.test].tolist())
    if split.train.any() and split.test.any():
        assert observed[split.train].max() < observed[split.test].min()
        assert split.cutoff is not None
        assert observed[split.test].min() >= np.datetime64(split.cutoff)
    assert split.counts()["train"] + split.counts()["test"] + split.dropped == len(rows)


def test_split_is_reproducible_from_its_seed() -> None:
    data, _ = synthetic(200, 4)
    a = time_group_split(data.observed_on, data.account_id, seed=5)
    b = time_group_split(data.observed_on, data.account_id, seed=5)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert 0 < a.test.sum() < a.train.sum()


# --- suggested weights ------------------------------------------------------------------------------


def test_weighted_scores_match_the_health_score() -> None:
    rng = np.random.default_rng(4)
    raw = np.vstack([rng.uniform(m.thresholds[0] - 1, m.thresholds[-1] + 1, 500) for m in MODEL.measures])
    raw[rng.random(raw.shape) < 0.2] = np.nan
    stage = rng.integers(0, 3, 500).astype(np.int8)
    result = compute_health(raw, stage, MODEL)
    w = weight_matrix({s.value: v for s, v in MODEL.weights.items()}, MODEL.measure_names)
    ours = weighted_scores(result.measure_scores.T.astype(np.float64), stage, w)
    np.testing.assert_allclose(ours, result.score, atol=1e-3, equal_nan=True)


# --- the churn model --------------------------------------------------------------------------------


def test_the_churn_model_is_calibrated_on_data_with_known_probabilities() -> None:
    data, truth = synthetic(6000, 3, seed=11, intercept=-2.0)
    fit = fit_churn_model(data, seed=2)
    predicted = predict_churn(fit.estimator, data.measure_scores, data.stage)
    assert np.mean(np.abs(predicted - truth)) < 0.03
    # Reliability: within each populated bin the mean prediction is near the observed churn rate.
    table = reliability_table(predicted, data.label)
    for row in table:
        if row.observations >= 500:
            assert abs(row.mean_predicted - row.observed_rate) < 0.04, row
    v = fit.validation
    assert v.auc is not None and v.auc > 0.75
    assert v.brier is not None and v.base_rate_brier is not None and v.brier < v.base_rate_brier
    assert sum(b.observations for b in v.reliability) == v.observations
    assert fit.feature_names == churn_feature_names(MODEL.measure_names)
    assert churn_features(data.measure_scores, data.stage).shape == (data.size, len(fit.feature_names))
    assert fit.validation.to_dict()["split"]["test"] == v.observations


def test_predict_churn_takes_any_probability_model() -> None:
    class Half:
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return np.full((X.shape[0], 2), 0.5)

    scores = np.full((3, M), 50.0)
    assert predict_churn(Half(), scores, np.zeros(3, np.int8)).tolist() == [0.5, 0.5, 0.5]
    assert predict_churn(Half(), scores[:0], np.zeros(0, np.int8)).size == 0


def test_align_measure_scores_by_name() -> None:
    scores = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = align_measure_scores(scores, ["a", "b"], ["b", "c", "a"])
    np.testing.assert_array_equal(out, [[2.0, np.nan, 1.0], [4.0, np.nan, 3.0]])


# --- event lift -------------------------------------------------------------------------------------


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(np.array([0.0, 5.0, 0.0]), np.array([10, 10, 0]))
    assert low[0] == 0.0 and high[0] == pytest.approx(0.2775, abs=1e-4)
    assert low[1] == pytest.approx(0.2366, abs=1e-4) and high[1] == pytest.approx(0.7634, abs=1e-4)
    assert np.isnan(low[2]) and np.isnan(high[2])


def test_event_lift_on_a_crafted_history() -> None:
    # 10 outcomes on 2025-06-01 (accounts 1-10), 4 churned (1-4): overall churn rate 0.4.
    outcome_account = np.arange(1, 11)
    outcome_day = np.full(10, np.datetime64("2025-06-01"))
    churned = outcome_account <= 4
    # Rule 0 fired within 90 days before the outcome for accounts 1, 2, 3 (churned) and 5: 3 of 4.
    # Account 1 fired it twice (counts once); account 6 fired it 120 days before (outside), account
    # 7 on the outcome day (not before). Rule 1 fired for 5, 6 (both renewed). Rule 2 never fired.
    event_account = np.array([1, 1, 2, 3, 5, 6, 7, 5, 6])
    event_rule = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1])
    event_day = days(
        "2025-05-01", "2025-05-20", "2025-03-03", "2025-05-31", "2025-04-01", "2025-02-01", "2025-06-01",
        "2025-05-01", "2025-05-02",
    )  # fmt: skip
    lift = event_lift(
        outcome_account=outcome_account,
        outcome_day=outcome_day,
        outcome_churned=churned,
        event_account=event_account,
        event_rule=event_rule,
        event_day=event_day,
        rules=3,
        window_days=90,
    )
    assert (lift.outcomes, lift.churned, lift.churn_rate) == (10, 4, 0.4)
    first, second, third = lift.rules
    assert (first.outcomes_with_event, first.churned_with_event) == (4, 3)
    assert first.churn_rate_with_event == 0.75 and first.lift == pytest.approx(1.875)
    low, high = wilson_interval(np.array([3.0]), np.array([4]))
    assert first.ci_low == pytest.approx(low[0] / 0.4, abs=1e-4)
    assert first.ci_high == pytest.approx(high[0] / 0.4, abs=1e-4)
    assert (second.outcomes_with_event, second.churned_with_event, second.lift) == (2, 0, 0.0)
    assert (third.outcomes_with_event, third.lift, third.ci_low) == (0, None, None)
    # 2025-03-03 is exactly 90 days before 2025-06-01: inside; one day earlier is not.
    narrower = event_lift(
        outcome_account=outcome_account, outcome_day=outcome_day, outcome_churned=churned,
        event_account=event_account, event_rule=event_rule, event_day=event_day, rules=3, window_days=89,
    )  # fmt: skip
    assert narrower.rules[0].outcomes_with_event == 3


def test_event_lift_with_no_events_or_outcomes() -> None:
    empty = event_lift(
        outcome_account=np.empty(0, np.int64), outcome_day=days(), outcome_churned=np.empty(0, bool),
        event_account=np.empty(0, np.int64), event_rule=np.empty(0, np.int64), event_day=days(), rules=2,
        window_days=30,
    )  # fmt: skip
    assert (empty.outcomes, empty.churn_rate) == (0, None)
    assert [r.lift for r in empty.rules] == [None, None]
