"""The churn model's core (scoring/churn.py): features from raw values, the two candidates compared
by walk-forward validation, the calibration, the choice, and each account's reasons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scoring.churn import (
    BOOSTING,
    FORMAT,
    LOGISTIC,
    RUN_PREFIX,
    ChurnPredictor,
    FeatureScaler,
    NotEnoughOutcomes,
    align_measure_values,
    check_outcomes,
    churn_feature_names,
    fit_churn_model,
    fit_predictor,
    measure_definitions,
    reliability_table,
    replacement_contributions,
    run_measures,
    select_measures,
)
from scoring.measures import signed_log1p
from scoring.stage import STAGES

NAMES = ("logins", "tickets", "nps", "trend")
FINITE = st.floats(-1e6, 1e6, allow_nan=False)


def synthetic(
    n_accounts: int = 1500, per_account: int = 6, *, seed: int = 1, interaction: bool = False
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Monthly observations of accounts whose churn follows a known model of the raw values
    (counts spread over orders of magnitude, a signed trend, some values missing); returns the
    arrays ``fit_churn_model`` takes and each row's true churn probability.

    ``interaction``: churn is high exactly when logins are low *and* the trend is negative (an
    interaction a linear model cannot draw); else a logistic model of the log values."""
    rng = np.random.default_rng(seed)
    k = n_accounts * per_account
    account = np.repeat(np.arange(1, n_accounts + 1), per_account)
    observed = np.datetime64("2025-01-01") + np.tile(np.arange(per_account) * 30, n_accounts).astype("timedelta64[D]")
    logins = np.exp(rng.normal(3.0, 1.5, k))
    tickets = rng.poisson(2.0, k).astype(np.float64)
    nps = rng.uniform(-100, 100, k)
    trend = rng.normal(0.0, 30.0, k)
    raw = np.column_stack([logins, tickets, nps, trend])
    raw[rng.random(raw.shape) < 0.08] = np.nan
    stage = rng.integers(0, len(STAGES), k).astype(np.int8)
    if interaction:
        risky = (np.nan_to_num(np.log1p(logins), nan=3.0) < 2.5) ^ (np.nan_to_num(trend) < 0)
        p = np.where(risky, 0.35, 0.02)
    else:
        z = -2.2 - 0.8 * (np.nan_to_num(np.log1p(logins), nan=3.0) - 3.0) + 0.3 * np.nan_to_num(tickets - 2.0)
        z -= 0.01 * np.nan_to_num(nps)
        p = 1.0 / (1.0 + np.exp(-z))
    label = rng.random(k) < p
    return {"raw": raw, "stage": stage, "label": label, "observed_on": observed, "account_id": account}, p


def fit(data: dict[str, np.ndarray], **options: object):  # type: ignore[no-untyped-def]
    return fit_churn_model(
        data["raw"], data["stage"], data["label"], observed_on=data["observed_on"], account_id=data["account_id"],
        measure_names=NAMES, horizon_days=60, draws=200, **options,
    )  # fmt: skip


# --- features -------------------------------------------------------------------------------------


@given(hnp.arrays(np.float64, st.integers(1, 30), elements=FINITE))
def test_signed_log1p_is_odd_monotone_and_keeps_the_sign(x: np.ndarray) -> None:
    y = signed_log1p(x)
    np.testing.assert_allclose(signed_log1p(-x), -y)
    assert np.array_equal(np.sign(y), np.sign(x))
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(y[order]) >= 0)
    assert np.isnan(signed_log1p(np.array([np.nan]))).all()


def test_features_are_standardized_on_the_training_rows_with_missing_flags_and_the_stage() -> None:
    data, _ = synthetic(300, 2)
    scaler = FeatureScaler.fit(data["raw"], data["stage"])
    x = scaler.transform(data["raw"], data["stage"])
    assert x.shape == (data["raw"].shape[0], len(churn_feature_names(NAMES)))
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-9)
    # A missing value takes the training mean of its (log) column: standardized, 0 in the value column
    # (up to the shift the filled rows themselves give the mean), and 1 in its flag before scaling.
    missing = np.isnan(data["raw"][:, 0])
    assert missing.any()
    value = x[missing, 0]
    assert np.allclose(value, value[0])
    flag = x[:, len(NAMES)]
    assert np.all(flag[missing] > 0) and np.all(flag[~missing] < 0)
    # Rows with the same values but another stage differ only in the stage columns.
    other = scaler.transform(data["raw"][:1], (data["stage"][:1] + 1) % len(STAGES))
    np.testing.assert_array_equal(other[0, : 2 * len(NAMES)], x[0, : 2 * len(NAMES)])


def test_a_constant_column_stays_zero() -> None:
    raw = np.column_stack([np.full(20, 5.0), np.arange(20.0)])
    scaler = FeatureScaler.fit(raw, np.zeros(20, np.int8))
    x = scaler.transform(raw, np.zeros(20, np.int8))
    assert np.all(x[:, 0] == 0.0) and np.isfinite(x).all()


def test_align_measure_values_by_name() -> None:
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = align_measure_values(values, ["a", "b"], ["b", "c", "a"])
    np.testing.assert_array_equal(out, [[2.0, np.nan, 1.0], [4.0, np.nan, 3.0]])


# --- too few outcomes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        (np.ones(50, bool), "every one of the 50 observations churned: nothing to tell churn from"),
        (np.zeros(50, bool), "none of the 50 observations churned: nothing to learn churn from"),
        (np.r_[np.ones(5, bool), np.zeros(60, bool)], "5 churned and 60 not churned observations"),
        (np.zeros(0, bool), "0 churned and 0 not churned observations"),
    ],
)
def test_too_few_outcomes_say_what_is_missing_and_how_many_are_needed(label: np.ndarray, expected: str) -> None:
    with pytest.raises(NotEnoughOutcomes) as caught:
        check_outcomes(label, 30)
    message = str(caught.value)
    assert message.startswith("Too few outcomes to train a churn model: " + expected)
    assert message.endswith("at least 30 of each (churned and not churned) are needed.")


def test_fit_refuses_too_few_outcomes() -> None:
    data, _ = synthetic(30, 1)
    with pytest.raises(NotEnoughOutcomes):
        fit(data)


# --- validation, choice and calibration -----------------------------------------------------------


def test_on_a_linear_world_the_logistic_regression_is_kept_and_calibrated() -> None:
    data, truth = synthetic(seed=3)
    result = fit(data)
    v = result.validation
    assert v.winner == LOGISTIC == result.predictor.kind
    assert "The logistic regression was kept" in v.reason
    comparison = v.comparison
    assert comparison is not None
    assert set(comparison["auc"]) == {LOGISTIC, BOOSTING}
    assert comparison["observations"] == v.observations and comparison["churned"] == v.churned
    # The gain of boosting, if any, lies within its interval (that is why it lost).
    difference = comparison["difference_vs_reference"][BOOSTING]
    assert difference["low"] <= 0.0
    assert v.auc is not None and v.auc > 0.7 and v.auc == pytest.approx(comparison["auc"][LOGISTIC]["value"], abs=1e-4)
    # Calibrated: better than the base rate, and close to the known probabilities.
    assert v.brier is not None and v.base_rate_brier is not None and v.brier < v.base_rate_brier
    predicted = result.predictor.predict(data["raw"][:, result.columns], data["stage"])
    assert np.mean(np.abs(predicted - truth)) < 0.03
    for row in reliability_table(predicted, data["label"]):
        if row.observations >= 500:
            assert abs(row.mean_predicted - row.observed_rate) < 0.04, row
    assert sum(b.observations for b in v.reliability) == v.observations
    assert sum(d["observations"] for d in v.deciles) == v.observations
    # Every tested fold trained only on what was known before it.
    assert [f["skipped"] for f in v.folds] == [None] * len(v.folds)
    assert result.counts["observations"] == data["label"].size


def test_on_an_interaction_gradient_boosting_wins_beyond_the_interval() -> None:
    data, _ = synthetic(seed=4, interaction=True)
    v = fit(data).validation
    assert v.winner == BOOSTING and v.reason.startswith("Gradient boosting won")
    assert v.comparison is not None
    assert v.comparison["difference_vs_reference"][BOOSTING]["low"] > 0.0


def test_without_a_fold_to_validate_the_logistic_regression_is_kept_and_the_note_says_why() -> None:
    data, _ = synthetic(200, 1)  # one observation date: no earlier side
    result = fit(data, min_per_class=5)
    v = result.validation
    assert v.winner == LOGISTIC and v.auc is None and v.comparison is None
    assert v.note is not None and v.note.startswith("No walk-forward validation")
    assert result.predictor.predict(data["raw"][:3, result.columns], data["stage"][:3]).shape == (3,)


# --- contributions --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> dict[str, ChurnPredictor]:
    data, _ = synthetic(600, 3, seed=5)
    return {
        kind: fit_predictor(kind, data["raw"], data["stage"], data["label"], NAMES) for kind in (LOGISTIC, BOOSTING)
    }


ROWS = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 5), st.just(len(NAMES))),
    elements=st.one_of(st.floats(-1e4, 1e5, allow_nan=False), st.just(np.nan)),
)


@settings(deadline=None, max_examples=30)
@given(raw=ROWS, stage=st.integers(0, len(STAGES) - 1))
def test_logistic_contributions_add_up_to_the_calibrated_log_odds(
    fitted: dict[str, ChurnPredictor], raw: np.ndarray, stage: int
) -> None:
    predictor = fitted[LOGISTIC]
    stages = np.full(raw.shape[0], stage, np.int8)
    contributions = predictor.contributions(raw, stages)
    log_odds = predictor.log_odds(raw, stages)
    base, slope, intercept = predictor._platt()
    constant = slope * float(base.intercept_[0]) + intercept  # the calibrated log-odds of the mean account
    np.testing.assert_allclose(contributions.sum(axis=1) + constant, log_odds, atol=1e-8)
    p = predictor.predict(raw, stages)
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-log_odds)), p, atol=1e-9)


@settings(deadline=None, max_examples=20)
@given(raw=ROWS, stage=st.integers(0, len(STAGES) - 1))
def test_boosting_contributions_are_the_change_from_each_features_median(
    fitted: dict[str, ChurnPredictor], raw: np.ndarray, stage: int
) -> None:
    predictor = fitted[BOOSTING]
    stages = np.full(raw.shape[0], stage, np.int8)
    contributions = predictor.contributions(raw, stages)
    base, slope, _ = predictor._platt()
    x = predictor.features(raw, stages)
    full = base.decision_function(x)
    for j in range(x.shape[1]):  # the definition, one feature at a time
        replaced = x.copy()
        replaced[:, j] = predictor.median[j]
        np.testing.assert_allclose(contributions[:, j], slope * (full - base.decision_function(replaced)), atol=1e-9)


@settings(deadline=None)
@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=st.floats(-50, 50)),
    data=st.data(),
)
def test_replacement_contributions_of_a_linear_function_are_coefficient_times_distance(
    x: np.ndarray, data: st.DataObject
) -> None:
    f = x.shape[1]
    coef = data.draw(hnp.arrays(np.float64, f, elements=st.floats(-5, 5)))
    reference = data.draw(hnp.arrays(np.float64, f, elements=st.floats(-50, 50)))
    out = replacement_contributions(lambda rows: rows @ coef + 1.0, x, reference)
    np.testing.assert_allclose(out, coef[None, :] * (x - reference[None, :]), atol=1e-6)
    assert replacement_contributions(lambda rows: rows @ coef, x[:0], reference).shape == (0, f)


def test_reasons_group_a_measure_with_its_missing_flag_and_the_stage_largest_first(
    fitted: dict[str, ChurnPredictor],
) -> None:
    predictor = fitted[LOGISTIC]
    raw = np.array([[1.0, 9.0, np.nan, -40.0], [5000.0, 0.0, 80.0, 30.0]])
    stages = np.array([2, 1], np.int8)
    contributions = predictor.contributions(raw, stages)
    m = len(NAMES)
    for row, reasons in enumerate(predictor.reasons(raw, stages, top=len(NAMES) + 1)):
        expected = {name: contributions[row, j] + contributions[row, m + j] for j, name in enumerate(NAMES)}
        expected["stage"] = contributions[row, 2 * m :].sum()
        assert [r["feature"] for r in reasons] == sorted(expected, key=lambda k: -abs(expected[k]))
        for reason in reasons:
            assert reason["contribution"] == pytest.approx(expected[reason["feature"]], abs=1e-4)
            assert reason["effect"] == ("raises_risk" if reason["contribution"] > 0 else "lowers_risk")
        values = {r["feature"]: r["value"] for r in reasons}
        assert values["stage"] is None
        assert values["nps"] == (None if row == 0 else 80.0)
    assert len(predictor.reasons(raw, stages)[0]) <= 5


def test_a_predictor_survives_a_pickle_round_trip(fitted: dict[str, ChurnPredictor]) -> None:
    import io

    import joblib

    raw = np.array([[10.0, 1.0, 20.0, 5.0]])
    stage = np.array([1], np.int8)
    for predictor in fitted.values():
        buffer = io.BytesIO()
        joblib.dump(predictor, buffer)
        loaded: ChurnPredictor = joblib.load(io.BytesIO(buffer.getvalue()))
        assert loaded.format == FORMAT == 3 and loaded.measure_names == NAMES
        np.testing.assert_array_equal(loaded.predict(raw, stage), predictor.predict(raw, stage))
        assert loaded.reasons(raw, stage) == predictor.reasons(raw, stage)


# --- which measures, and what a scoring run computes for them -------------------------------------


def test_select_measures_keeps_the_best_of_each_correlated_group_with_data_best_first() -> None:
    rng = np.random.default_rng(3)
    k = 4000
    signal = rng.normal(size=k)
    label = rng.random(k) < 1.0 / (1.0 + np.exp(-(signal * 1.5 - 1.0)))
    strong = signal + rng.normal(scale=0.3, size=k)
    copy = strong * 2.0 + rng.normal(scale=0.01, size=k)  # a near copy (rank correlation ~1)
    weak = -signal + rng.normal(scale=2.0, size=k)  # runs the other way, weaker
    sparse = signal.copy()
    sparse[rng.random(k) < 0.9] = np.nan  # data on 10 % of the rows only
    noise = rng.normal(size=k)
    raw = np.column_stack([copy, strong, weak, sparse, noise])
    kept = select_measures(raw, label).tolist()
    assert kept[0] in (0, 1) and not {0, 1} <= set(kept)  # one of the pair, first
    assert 2 in kept and 3 not in kept and kept.index(2) == 1
    assert select_measures(raw, label, limit=1).tolist() == kept[:1]
    # Nothing with the coverage: the best column alone, so there is always a model to fit.
    assert select_measures(np.column_stack([sparse, sparse * 2]), label).size == 1


def test_the_fit_chooses_measures_inside_each_fold_and_reports_them() -> None:
    data, _ = synthetic(600, 6)
    noisy = np.column_stack([data["raw"], data["raw"][:, 0] * 3.0])  # a copy of logins
    result = fit_churn_model(
        noisy, data["stage"], data["label"], observed_on=data["observed_on"], account_id=data["account_id"],
        measure_names=(*NAMES, "logins_copy"), horizon_days=60, draws=100,
    )  # fmt: skip
    assert len(result.predictor.measure_names) == len(result.columns) <= len(NAMES)
    assert not {"logins", "logins_copy"} <= set(result.predictor.measure_names)
    trained = [fold for fold in result.validation.folds if fold["skipped"] is None]
    assert trained and all(1 <= len(fold["measures"]) <= 4 for fold in trained)


def test_run_measures_read_a_config_measure_that_computes_the_same_and_add_the_others_renamed() -> None:
    from scoring.measures import MeasureGroup, measure_from_dict

    def m(name: str, **fields: object) -> dict[str, object]:
        return {"name": name, "group": MeasureGroup.PRODUCT.value, "direction": "higher_is_better",
                "thresholds": [0.0, 1.0], **fields}  # fmt: skip

    config = (
        measure_from_dict(m("logins_30d", source="usage.logins", aggregate="sum", window_days=30)),
        measure_from_dict(m("seats", source="account.seats", thresholds=[1.0, 5.0])),
    )
    model = (
        m("signins", source="usage.logins", aggregate="sum", window_days=30, thresholds=[3.0, 9.0]),  # = logins_30d
        m("logins_7d", source="usage.logins", aggregate="sum", window_days=7),
        m("per_seat", ratio=["signins", "seats_own"]),
        m("seats_own", source="account.seats", transform="log1p"),  # not the config's: transformed
    )
    run = run_measures(model, config)
    assert run.names == {"signins": "logins_30d", "logins_7d": RUN_PREFIX + "logins_7d",
                         "seats_own": RUN_PREFIX + "seats_own", "per_seat": RUN_PREFIX + "per_seat"}  # fmt: skip
    added = {x.name: x for x in run.measures}
    assert set(added) == {RUN_PREFIX + "logins_7d", RUN_PREFIX + "seats_own", RUN_PREFIX + "per_seat"}
    assert added[RUN_PREFIX + "per_seat"].ratio == ("logins_30d", RUN_PREFIX + "seats_own")
    # Without a config every measure is its own, and the definitions round-trip.
    alone = run_measures(model)
    assert all(name == RUN_PREFIX + own for own, name in alone.names.items()) and len(alone.measures) == 4


def test_measure_definitions_bring_a_ratios_parts_and_refuse_an_unknown_name() -> None:
    from scoring.measures import measure_from_dict

    def m(name: str, **fields: object):  # type: ignore[no-untyped-def]
        return measure_from_dict({"name": name, "group": "product", "direction": "higher_is_better",
                                  "thresholds": [0.0, 1.0], **fields})  # fmt: skip

    measures = [m("a", source="usage.logins", window_days=7), m("b", source="account.seats"), m("r", ratio=["a", "b"]),
                m("c", source="usage.logins", window_days=28)]  # fmt: skip
    assert [d["name"] for d in measure_definitions(["r"], measures)] == ["a", "b", "r"]
    assert [d["name"] for d in measure_definitions(["c"], measures)] == ["c"]
    with pytest.raises(ValueError, match="no definition"):
        measure_definitions(["nope"], measures)
