"""Invariants of the 0-100 measure scores and the weighted health score, bands and drivers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import scoring.health
from scoring.health import BANDS, NO_BAND, Band, band_codes, compute_health
from scoring.measures import Direction, MeasureGroup, score_measure
from scoring.model import Measure, ScoringModel, default_config_dict, model_from_dict
from scoring.stage import STAGE_CODE, STAGES, LifecycleStage
from tests.support.examples import examples

pytestmark = pytest.mark.unit

DEFAULT_MODEL = model_from_dict(default_config_dict())
M = len(DEFAULT_MODEL.measures)
HIGHER = Direction.HIGHER_IS_BETTER
LOWER = Direction.LOWER_IS_BETTER
PROPERTY = settings(max_examples=examples(50), deadline=None)

# Raw values: mostly plausible numbers, plus NaN, +-inf and anything else a float can be.
RAW_VALUES = st.one_of(
    st.floats(-200, 200),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.floats(allow_nan=True, allow_infinity=True),
)
FINITE_RAW_VALUES = st.one_of(st.floats(-200, 200), st.floats(allow_nan=False, allow_infinity=False))


def single_measure_model(thresholds: tuple[float, ...] = (0.0, 100.0), direction: Direction = HIGHER) -> ScoringModel:
    """One measure, weighted in every stage: the health score is that measure's score."""
    measure = Measure(
        "goals_achieved_ratio", MeasureGroup.OUTCOMES, direction, thresholds, source="goals.achieved_share"
    )
    return ScoringModel(measures=(measure,), weights={stage: {measure.name: 1.0} for stage in STAGES})


@st.composite
def ascending_thresholds(draw: st.DrawFn) -> np.ndarray:
    # Gaps of at least 1e-3: the schema accepts any strictly ascending finite values, but gaps
    # near the float resolution are not a realistic config (see the report on subnormal gaps).
    start = draw(st.floats(-1e6, 1e6))
    gaps = draw(st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=5))
    return np.cumsum([start, *gaps])


@st.composite
def portfolios(draw: st.DrawFn, elements: st.SearchStrategy[float] = RAW_VALUES) -> tuple[np.ndarray, np.ndarray]:
    """(raw, stage) for the default model: raw is (M, n), stage is (n,) valid codes."""
    n = draw(st.integers(1, 12))
    raw = draw(hnp.arrays(np.float64, (M, n), elements=elements))
    stage = draw(hnp.arrays(np.int8, n, elements=st.integers(0, len(STAGES) - 1)))
    return raw, stage


# --- score_measure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresholds", "direction", "raw", "expected"),
    [
        ((0, 50, 100), HIGHER, 0.0, 0.0),
        ((0, 50, 100), HIGHER, 25.0, 25.0),
        ((0, 50, 100), HIGHER, 100.0, 100.0),
        ((0, 50, 100), HIGHER, -10.0, 0.0),
        ((0, 50, 100), HIGHER, 150.0, 100.0),
        ((0.05, 0.25, 0.6), HIGHER, 0.25, 50.0),  # uneven segments: each threshold gets an even share
        ((0.05, 0.25, 0.6), HIGHER, 0.425, 75.0),
        ((1, 7, 30), LOWER, 1.0, 100.0),
        ((1, 7, 30), LOWER, 7.0, 50.0),
        ((1, 7, 30), LOWER, 30.0, 0.0),
        ((1, 7, 30), LOWER, 0.0, 100.0),
        ((1, 7, 30), LOWER, 61.0, 0.0),
        ((2.5, 3.5, 4.5), HIGHER, 4.0, 75.0),
        ((0, 1), HIGHER, 0.5, 50.0),
    ],
)
def test_score_measure_interpolates_between_thresholds(thresholds, direction, raw, expected):
    out = score_measure(np.array([raw]), np.array(thresholds, dtype=np.float64), direction)
    assert out[0] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("direction", "raw", "expected"),
    [
        (HIGHER, math.inf, 100.0),
        (HIGHER, -math.inf, 0.0),
        (LOWER, math.inf, 0.0),
        (LOWER, -math.inf, 100.0),
        (HIGHER, 1e308, 100.0),  # overflows to inf inside; must neither warn nor misbehave
        (HIGHER, -1e308, 0.0),
        (LOWER, 1e308, 0.0),
    ],
)
def test_score_measure_clamps_infinite_and_huge_values(direction, raw, expected):
    out = score_measure(np.array([raw]), np.array([-1.0, 0.0, 0.5]), direction)
    assert out[0] == expected


def test_score_measure_keeps_nan_as_no_data():
    out = score_measure(np.array([math.nan, 1.0]), np.array([0.0, 2.0]), HIGHER)
    assert math.isnan(out[0])
    assert out[1] == 50.0


@PROPERTY
@given(
    raw=hnp.arrays(np.float64, st.integers(0, 20), elements=RAW_VALUES),
    thresholds=ascending_thresholds(),
    direction=st.sampled_from(Direction),
)
def test_score_measure_stays_within_0_100(raw, thresholds, direction):
    out = score_measure(raw, thresholds, direction)
    assert out.shape == raw.shape
    assert np.array_equal(np.isnan(out), np.isnan(raw))
    scored = out[~np.isnan(out)]
    assert np.all((scored >= 0.0) & (scored <= 100.0))


@PROPERTY
@given(
    pair=hnp.arrays(
        np.float64, st.tuples(st.just(2), st.integers(1, 20)), elements=RAW_VALUES.filter(lambda x: not math.isnan(x))
    ),
    thresholds=ascending_thresholds(),
)
def test_score_measure_is_monotone_in_the_raw_value(pair, thresholds):
    low, high = np.minimum(pair[0], pair[1]), np.maximum(pair[0], pair[1])
    assert np.all(score_measure(high, thresholds, HIGHER) >= score_measure(low, thresholds, HIGHER))
    assert np.all(score_measure(low, thresholds, LOWER) >= score_measure(high, thresholds, LOWER))


# --- compute_health: bounds, monotonicity, weights ---------------------------------------------


@PROPERTY
@given(portfolio=portfolios())
def test_compute_health_stays_within_bounds(portfolio):
    raw, stage = portfolio
    result = compute_health(raw, stage, DEFAULT_MODEL)
    n = raw.shape[1]
    assert result.score.shape == result.completeness.shape == result.band.shape == (n,)
    assert result.measure_scores.shape == result.contributions.shape == (M, n)
    scored = ~np.isnan(result.score)
    assert np.all((result.score[scored] >= 0.0) & (result.score[scored] <= 100.0))
    assert np.all((result.completeness >= 0.0) & (result.completeness <= 1.0))
    assert np.array_equal(result.band == NO_BAND, ~scored)
    assert np.all(result.completeness[~scored] == 0.0)
    ms = result.measure_scores[~np.isnan(result.measure_scores)]
    assert np.all((ms >= 0.0) & (ms <= 100.0))


@PROPERTY
@given(
    portfolio=portfolios(),
    j=st.integers(0, M - 1),
    delta=st.floats(0.0, 1e6),
)
def test_compute_health_better_raw_value_never_lowers_the_score(portfolio, j, delta):
    raw, stage = portfolio
    better = raw.copy()
    # "Better" is up for a higher-is-better measure and down for a lower-is-better one.
    better[j] += delta if DEFAULT_MODEL.measures[j].direction is HIGHER else -delta
    before = compute_health(raw, stage, DEFAULT_MODEL)
    after = compute_health(better, stage, DEFAULT_MODEL)
    assert np.array_equal(np.isnan(after.score), np.isnan(before.score))
    scored = ~np.isnan(before.score)
    assert np.all(after.score[scored] >= before.score[scored])
    assert np.array_equal(after.completeness, before.completeness)


@PROPERTY
@given(
    portfolio=portfolios(),
    stage_to_scale=st.sampled_from(STAGES),
    factor=st.floats(1e-3, 1e3),
)
def test_compute_health_ignores_the_scale_of_a_stages_weights(portfolio, stage_to_scale, factor):
    raw, stage = portfolio
    weights = dict(DEFAULT_MODEL.weights)
    weights[stage_to_scale] = {name: w * factor for name, w in weights[stage_to_scale].items()}
    scaled_model = dataclasses.replace(DEFAULT_MODEL, weights=weights)
    base = compute_health(raw, stage, DEFAULT_MODEL)
    scaled = compute_health(raw, stage, scaled_model)
    np.testing.assert_allclose(scaled.score, base.score, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scaled.completeness, base.completeness, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scaled.contributions, base.contributions, rtol=0, atol=1e-4)
    # Bands agree except within rounding distance of a cut-off.
    cut_offs = np.array([DEFAULT_MODEL.bands.good, DEFAULT_MODEL.bands.poor])
    clear = np.isnan(base.score) | (np.abs(base.score[:, None] - cut_offs).min(axis=1) > 1e-9)
    assert np.array_equal(scaled.band[clear], base.band[clear])


@PROPERTY
@given(
    portfolio=portfolios(elements=FINITE_RAW_VALUES),
    j=st.integers(0, M - 1),
)
def test_compute_health_reweights_when_a_measure_is_missing(portfolio, j):
    raw, stage = portfolio
    missing = raw.copy()
    missing[j] = np.nan
    full = compute_health(raw, stage, DEFAULT_MODEL)
    partial = compute_health(missing, stage, DEFAULT_MODEL)

    weights = DEFAULT_MODEL.weight_matrix[stage]  # (n, M) normalized weights per account
    assert np.all(full.completeness == pytest.approx(1.0, abs=1e-12))
    np.testing.assert_allclose(full.completeness - partial.completeness, weights[:, j], rtol=0, atol=1e-12)

    # The score is the weighted mean of the measures that still have data.
    scores = np.stack(
        [score_measure(raw[k], np.asarray(m.thresholds), m.direction) for k, m in enumerate(DEFAULT_MODEL.measures)]
    )
    rest = weights.T.copy()
    rest[j] = 0.0
    expected = (scores * rest).sum(axis=0) / rest.sum(axis=0)
    np.testing.assert_allclose(partial.score, expected, rtol=0, atol=1e-9)


def test_compute_health_without_data_has_no_score():
    raw = np.full((M, len(STAGES)), np.nan)
    result = compute_health(raw, np.arange(len(STAGES), dtype=np.int8), DEFAULT_MODEL)
    assert np.all(np.isnan(result.score))
    assert np.all(result.band == NO_BAND)
    assert np.all(result.completeness == 0.0)
    assert np.all(np.isnan(result.measure_scores))
    assert np.all(np.isnan(result.contributions))


def test_compute_health_with_data_only_in_unweighted_measures_has_no_score():
    # The default onboarding stage gives nps weight 0: nps alone cannot score an onboarding account.
    nps = DEFAULT_MODEL.measure_names.index("nps")
    assert DEFAULT_MODEL.weight_matrix[STAGE_CODE[LifecycleStage.ONBOARDING], nps] == 0.0
    raw = np.full((M, 1), np.nan)
    raw[nps] = 40.0
    result = compute_health(raw, np.array([STAGE_CODE[LifecycleStage.ONBOARDING]], dtype=np.int8), DEFAULT_MODEL)
    assert math.isnan(result.score[0])
    assert result.completeness[0] == 0.0
    assert result.band[0] == NO_BAND
    assert result.measure_scores[nps, 0] == pytest.approx(90.0)


def test_compute_health_handles_an_empty_portfolio():
    result = compute_health(np.empty((M, 0)), np.empty(0, dtype=np.int8), DEFAULT_MODEL)
    assert result.score.shape == (0,)
    assert result.contributions.shape == (M, 0)


# --- drivers ---------------------------------------------------------------------------------


@PROPERTY
@given(portfolio=portfolios())
def test_compute_health_contributions_add_up_to_the_score(portfolio):
    raw, stage = portfolio
    result = compute_health(raw, stage, DEFAULT_MODEL)
    scored = ~np.isnan(result.score)
    total = DEFAULT_MODEL.neutral_score + np.nansum(result.contributions.astype(np.float64), axis=0)
    np.testing.assert_allclose(total[scored], result.score[scored], rtol=0, atol=1e-3)
    # NaN exactly where a measure has no data; 0 where the account's stage gives it no weight.
    assert np.array_equal(np.isnan(result.contributions), np.isnan(result.measure_scores))
    unweighted = (DEFAULT_MODEL.weight_matrix[stage].T == 0) & ~np.isnan(result.measure_scores)
    assert np.all(result.contributions[unweighted] == 0.0)


def test_compute_health_contributions_are_signed_against_neutral():
    model = single_measure_model()
    result = compute_health(np.array([[80.0, 20.0, 50.0]]), np.zeros(3, dtype=np.int8), model)
    np.testing.assert_allclose(result.contributions[0], [30.0, -30.0, 0.0])


# --- bands -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (100.0, Band.GOOD),
        (70.0, Band.GOOD),
        (69.99, Band.AVERAGE),
        (40.0, Band.AVERAGE),
        (39.99, Band.POOR),
        (0.0, Band.POOR),
    ],
)
def test_compute_health_band_cut_offs_are_exact(score, band):
    # Thresholds (0, 100) make the raw value the score, so the cut-offs are hit exactly.
    result = compute_health(np.array([[score]]), np.zeros(1, dtype=np.int8), single_measure_model())
    assert result.score[0] == score
    assert BANDS[result.band[0]] is band


def test_band_codes_of_nan_is_no_band():
    codes = band_codes(np.array([np.nan, 70.0, 40.0, 39.99]), good=70.0, poor=40.0)
    assert codes.tolist() == [NO_BAND, 0, 1, 2]
    assert codes.dtype == np.int8


# --- blocks and errors -----------------------------------------------------------------------


@pytest.mark.parametrize("block_rows", [1, 7, 64, 1000])
def test_compute_health_blocks_give_the_same_answer(monkeypatch, block_rows):
    rng = np.random.default_rng(1234)
    n = 100
    raw = rng.normal(0.5, 30.0, size=(M, n))
    raw[rng.random((M, n)) < 0.2] = np.nan
    raw[:, :5] = np.nan  # a few accounts without any data
    stage = rng.integers(0, len(STAGES), size=n).astype(np.int8)
    whole = compute_health(raw, stage, DEFAULT_MODEL)
    monkeypatch.setattr(scoring.health, "BLOCK_ROWS", block_rows)
    blocked = compute_health(raw, stage, DEFAULT_MODEL)
    for field in dataclasses.fields(whole):
        np.testing.assert_array_equal(getattr(blocked, field.name), getattr(whole, field.name), err_msg=field.name)


@pytest.mark.parametrize(
    ("raw_shape", "stage"),
    [
        pytest.param((M - 1, 3), np.zeros(3, dtype=np.int8), id="too-few-measure-rows"),
        pytest.param((M + 1, 3), np.zeros(3, dtype=np.int8), id="too-many-measure-rows"),
        pytest.param((M, 3), np.zeros(2, dtype=np.int8), id="stage-too-short"),
        pytest.param((M, 3), np.zeros((3, 1), dtype=np.int8), id="stage-2d"),
        pytest.param((M,), np.zeros(1, dtype=np.int8), id="raw-1d"),
        pytest.param((M, 3, 1), np.zeros(3, dtype=np.int8), id="raw-3d"),
        pytest.param((M, 3), np.array([0, -1, 2], dtype=np.int8), id="negative-stage-code"),
        pytest.param((M, 3), np.array([0, 3, 2], dtype=np.int8), id="stage-code-too-large"),
    ],
)
def test_compute_health_rejects_mismatched_input(raw_shape, stage):
    with pytest.raises(ValueError):
        compute_health(np.zeros(raw_shape), stage, DEFAULT_MODEL)
