"""scoring/validation.py: walk-forward folds, AUC with ties and weights, the bootstrap over
accounts, churn by decile."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import roc_auc_score

from scoring.validation import churn_by_decile, compare_methods, roc_auc, walk_forward_folds
from tests.support.examples import examples


def _monthly(accounts: int, months: int) -> tuple[np.ndarray, np.ndarray]:
    first = np.datetime64("2025-01-31")
    observed = first + (np.tile(np.arange(months), accounts) * 30).astype("timedelta64[D]")
    account = np.repeat(np.arange(1, accounts + 1), months)
    return observed, account


@settings(max_examples=examples(80), deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "accounts": st.integers(1, 40),
            "months": st.integers(1, 14),
            "horizon": st.integers(0, 120),
            "folds": st.integers(1, 4),
            "share": st.floats(0.1, 0.9),
            "seed": st.integers(0, 1000),
        }
    )
)
def test_folds_never_train_on_what_they_test_or_on_unknown_labels(case):
    accounts, months, horizon = case["accounts"], case["months"], case["horizon"]
    folds, share, seed = case["folds"], case["share"], case["seed"]
    observed, account = _monthly(accounts, months)
    days = observed.astype(np.int64)
    out = walk_forward_folds(observed, account, horizon_days=horizon, folds=folds, test_share=share, seed=seed)
    assert len(out) <= folds
    tested = np.zeros(observed.size, dtype=int)
    for fold in out:
        start = np.datetime64(fold.start).astype(np.int64)
        # Labels known at the window start: the training observation's horizon ended by then.
        assert (days[fold.train] + horizon <= start).all()
        assert (days[fold.test] >= start).all()
        if fold.end is not None:
            assert (days[fold.test] < np.datetime64(fold.end).astype(np.int64)).all()
        # Grouped: no account on both sides.
        assert not set(account[fold.train].tolist()) & set(account[fold.test].tolist())
        tested += fold.test
    # Each observation is tested at most once, and each account in one fold at most.
    assert tested.max(initial=0) <= 1
    owners = {}
    for i, fold in enumerate(out):
        for a in set(account[fold.test].tolist()):
            assert owners.setdefault(a, i) == i


def test_folds_cover_the_later_dates_and_train_on_the_earlier():
    observed, account = _monthly(300, 12)
    out = walk_forward_folds(observed, account, horizon_days=30, folds=3, seed=1)
    assert len(out) == 3
    assert [f.start for f in out] == sorted(f.start for f in out)
    assert out[0].start > dt.date(2025, 1, 31)
    assert all(np.count_nonzero(f.train) > 0 and np.count_nonzero(f.test) > 0 for f in out)
    # About a third of the accounts in each window's test group.
    for fold in out:
        window = observed[fold.test]
        share = np.unique(account[fold.test]).size / 300
        assert 0.2 < share < 0.45, share
        assert window.min() >= np.datetime64(fold.start)


def test_folds_refuse_nonsense_and_handle_little_data():
    observed, account = _monthly(5, 1)
    assert walk_forward_folds(observed, account, horizon_days=30) == []  # one date: nothing precedes
    assert walk_forward_folds(observed[:0], account[:0], horizon_days=30) == []
    with pytest.raises(ValueError, match="folds"):
        walk_forward_folds(observed, account, horizon_days=30, folds=0)
    with pytest.raises(ValueError, match="test_share"):
        walk_forward_folds(observed, account, horizon_days=30, test_share=1.0)
    with pytest.raises(ValueError, match="horizon"):
        walk_forward_folds(observed, account, horizon_days=-1)


@settings(max_examples=examples(100), deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(2, 60), elements=st.sampled_from([0.0, 1.0, 2.5, 3.0, 7.0])),
    st.data(),
)
def test_auc_matches_scikit_learn_with_ties(risk, data):
    label = np.array(data.draw(st.lists(st.booleans(), min_size=risk.size, max_size=risk.size)))
    got = roc_auc(risk, label)
    if label.all() or not label.any():
        assert got is None
    else:
        assert got == pytest.approx(roc_auc_score(label, risk), abs=1e-12)


def test_bootstrap_intervals_contain_the_figure_and_pair_the_differences():
    rng = np.random.default_rng(3)
    accounts = 400
    account = np.repeat(np.arange(accounts), 3)
    signal = rng.normal(size=account.size)
    label = rng.random(account.size) < 1 / (1 + np.exp(-(2 * signal - 2)))
    risks = {"good": signal, "noisy": signal + rng.normal(scale=2, size=signal.size), "same": signal.copy()}
    out = compare_methods(risks, label, account, reference="noisy", draws=300, seed=0)
    good = out.auc["good"]
    assert good.low < good.value < good.high
    assert out.auc["good"].value > out.auc["noisy"].value
    assert out.difference["good"].excludes_zero
    # A method identical to another has a zero-width paired difference.
    same = compare_methods(risks, label, account, reference="good", draws=100).difference["same"]
    assert same.value == 0.0 and same.low == 0.0 and same.high == 0.0
    assert not same.excludes_zero
    assert out.to_dict()["accounts"] == accounts


def test_compare_refuses_nan_and_unknown_reference():
    label = np.array([True, False])
    with pytest.raises(ValueError, match="NaN"):
        compare_methods({"a": np.array([np.nan, 1.0])}, label, np.array([1, 2]))
    with pytest.raises(ValueError, match="reference"):
        compare_methods({"a": np.array([0.0, 1.0])}, label, np.array([1, 2]), reference="b")


def test_churn_by_decile_riskiest_first_with_intervals():
    risk = np.arange(100, dtype=float)
    label = risk >= 90
    table = churn_by_decile(risk, label)
    assert [d.decile for d in table] == list(range(1, 11))
    assert table[0].churn_rate == 1.0 and table[0].observations == 10
    assert all(d.churn_rate == 0.0 for d in table[1:])
    assert all(d.low <= d.churn_rate <= d.high for d in table)
    assert len(churn_by_decile(risk[:3], label[:3])) == 3


def test_normal_intervals_centre_on_the_figure():
    rng = np.random.default_rng(5)
    account = np.repeat(np.arange(300), 2)
    risk = rng.normal(size=600)
    label = rng.random(600) < 1 / (1 + np.exp(-2 * risk))
    out = compare_methods({"a": risk, "b": -risk}, label, account, reference="b", draws=40, normal=True)
    a = out.auc["a"]
    assert a.high - a.value == pytest.approx(a.value - a.low)
    d = out.difference["a"]
    assert d.high - d.value == pytest.approx(d.value - d.low) and d.low > 0
