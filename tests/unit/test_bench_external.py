"""The pure parts of the external-data benchmark (bench/external): observations, windows, AUC."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.external.metrics import _ranges, bootstrap_auc, roc_auc
from bench.external.observations import build_observations, monthly_dates, time_split, window_sums

pytestmark = pytest.mark.unit

D = dt.date
NAT = np.datetime64("NaT")


def days(*values: D | None) -> np.ndarray:
    return np.array([NAT if v is None else np.datetime64(v, "D") for v in values], dtype="datetime64[D]")


def test_roc_auc_extremes_ties_and_one_class() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([1, 2, 3, 4])) == 1.0
    assert roc_auc(y, np.array([4, 3, 2, 1])) == 0.0
    assert roc_auc(y, np.array([5, 5, 5, 5])) == 0.5
    assert np.isnan(roc_auc(np.zeros(4), np.arange(4)))
    assert np.isnan(roc_auc(np.ones(4), np.arange(4)))


def test_roc_auc_agrees_with_scikit_learn_on_tied_scores() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(2_000) < 0.1
    scores = rng.integers(0, 15, 2_000) + y * 2  # many ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_ranges_concatenates_index_ranges() -> None:
    assert _ranges(np.array([5, 0, 2]), np.array([2, 0, 3])).tolist() == [5, 6, 2, 3, 4]
    assert _ranges(np.array([1]), np.array([0])).size == 0


def test_bootstrap_is_deterministic_and_brackets_the_point_estimate() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(1_500) < 0.08
    scores = rng.normal(size=1_500) + y
    groups = rng.integers(0, 600, 1_500)
    first = bootstrap_auc(y, scores, groups, draws=300, seed=1)
    assert first == bootstrap_auc(y, scores, groups, draws=300, seed=1)
    assert first.low < first.auc < first.high
    assert first.resamples == 300
    assert first.auc == roc_auc(y, scores)


def test_bootstrap_resamples_whole_accounts() -> None:
    """Repeating every observation within its own account changes no AUC a draw can see: a
    draw takes an account with all its rows, so the intervals are identical."""
    rng = np.random.default_rng(9)
    y = rng.random(400) < 0.2
    scores = rng.normal(size=400) + y
    groups = np.arange(400)  # one observation per account
    once = bootstrap_auc(y, scores, groups, draws=200, seed=4)
    twice = bootstrap_auc(np.repeat(y, 2), np.repeat(scores, 2), np.repeat(groups, 2), draws=200, seed=4)
    assert (once.low, once.high) == pytest.approx((twice.low, twice.high))


def test_bootstrap_of_one_class_has_no_interval() -> None:
    interval = bootstrap_auc(np.zeros(10), np.arange(10), np.arange(10), draws=20)
    assert np.isnan(interval.auc) and np.isnan(interval.low) and interval.resamples == 0


def test_monthly_dates_clip_to_short_months() -> None:
    assert monthly_dates(D(2020, 1, 31), D(2020, 4, 30)) == [
        D(2020, 1, 31),
        D(2020, 2, 29),
        D(2020, 3, 31),
        D(2020, 4, 30),
    ]
    assert monthly_dates(D(2020, 2, 1), D(2020, 1, 31)) == []
    assert monthly_dates(D(2020, 11, 1), D(2021, 2, 1))[-2:] == [D(2021, 1, 1), D(2021, 2, 1)]


def test_observations_who_is_observed_and_the_label_edges() -> None:
    on = D(2020, 3, 1)
    account = np.arange(7)
    start = days(
        D(2020, 1, 1), D(2020, 3, 1), D(2020, 3, 2), D(2020, 1, 1), D(2020, 1, 1), D(2020, 1, 1), D(2020, 1, 1)
    )
    churn = days(None, None, None, D(2020, 3, 1), D(2020, 3, 2), D(2020, 3, 31), D(2020, 4, 1))
    obs = build_observations(account, start, churn, [on], horizon_days=30, data_end=D(2020, 6, 1))
    # 2 starts after the date; 3 churned on the date (gone, as the scoring run does not score it).
    assert obs.account.tolist() == [0, 1, 4, 5, 6]
    # A churn on day +1 and on day +30 counts; on day +31 it does not.
    assert obs.churned.tolist() == [False, False, True, True, False]
    assert obs.tenure_days.tolist() == [60, 0, 60, 60, 60]
    assert (obs.day == np.datetime64(on, "D")).all()


def test_observations_min_tenure_and_several_dates() -> None:
    start = days(D(2020, 1, 1), D(2020, 2, 20))
    churn = days(D(2020, 3, 15), None)
    obs = build_observations(
        np.array([10, 11]), start, churn, [D(2020, 3, 1), D(2020, 2, 1)],
        horizon_days=30, data_end=D(2020, 6, 1), min_tenure_days=14,
    )  # fmt: skip
    assert list(zip(obs.account.tolist(), obs.day.astype(str).tolist(), obs.churned.tolist(), strict=True)) == [
        (10, "2020-02-01", False),
        (10, "2020-03-01", True),
    ]


def test_observations_refuse_a_horizon_past_the_data() -> None:
    with pytest.raises(ValueError, match="horizon ends after the data"):
        build_observations(
            np.array([1]), days(D(2020, 1, 1)), days(None), [D(2020, 5, 3)], horizon_days=30, data_end=D(2020, 6, 1)
        )
    with pytest.raises(ValueError, match="at least 1"):
        build_observations(np.array([1]), days(D(2020, 1, 1)), days(None), [], horizon_days=0, data_end=D(2020, 6, 1))


def test_window_sums_edges_of_a_28_day_window() -> None:
    first = D(2020, 1, 1)
    cube = np.zeros((2, 60, 2), dtype=np.int32)
    on = 40  # the observation day's offset
    cube[0, on - 27, 0] = 5  # the window's first day: counts
    cube[0, on - 28, 0] = 100  # the day before it: does not
    cube[0, on, 1] = 2  # the observed day itself counts
    cube[0, on + 1, 1] = 100  # the day after: does not
    cube[1, 0, 0] = 3  # a window reaching before the first day
    sums = window_sums(
        cube, first, np.array([0, 1]), days(first + dt.timedelta(days=on), first + dt.timedelta(days=5)), 28
    )
    assert sums.tolist() == [[5, 2], [3, 0]]
    with pytest.raises(ValueError, match="outside the cube"):
        window_sums(cube, first, np.array([0]), days(first + dt.timedelta(days=60)), 28)


def test_time_split_puts_the_split_day_in_test() -> None:
    obs = build_observations(
        np.array([1]), days(D(2020, 1, 1)), days(None), [D(2020, 2, 1), D(2020, 3, 1), D(2020, 4, 1)],
        horizon_days=30, data_end=D(2020, 6, 1),
    )  # fmt: skip
    train, test = time_split(obs, D(2020, 3, 1))
    assert train.day.astype(str).tolist() == ["2020-02-01"]
    assert test.day.astype(str).tolist() == ["2020-03-01", "2020-04-01"]
