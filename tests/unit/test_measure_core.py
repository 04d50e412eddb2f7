"""The pure core of the measure language: checking, derived values, percentile points, calibrated
bands and the merge patch (properties over generated inputs, and the refusals by field path)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.measures import (
    Measure,
    MeasureGroup,
    check_measures,
    finish_values,
    measure_from_dict,
    percentile_points,
    resolve_percentiles,
    score_measure,
)
from scoring.model import Bands, merge_patch, patch_config
from tests.support.examples import examples

pytestmark = pytest.mark.unit

FLOATS = st.floats(-1e6, 1e6, allow_nan=False)


def m(name: str, **fields: Any) -> Measure:
    data = {"name": name, "group": "product", "direction": "higher_is_better", "thresholds": [0, 1], **fields}
    if "ratio" not in data:
        data.setdefault("source", "signal.post")
        data.setdefault("window_days", 7)
    return measure_from_dict(data)


@pytest.mark.parametrize(
    ("measures", "path", "message"),
    [
        ((m("a", ratio=["b", "c"]), m("b", ratio=["a", "c"]), m("c")), "measures.0.ratio", "Circular ratio"),
        ((m("a", ratio=["c", "c"]), m("c")), "measures.0.ratio", "itself is always 1"),
        ((m("a", ratio=["a", "c"]), m("c")), "measures.0.ratio", "cannot be a ratio of itself"),
        ((m("a", window_days=0),), "measures.0.window_days", "between 1 and 730"),
        ((m("a", window_days=731),), "measures.0.window_days", "between 1 and 730"),
        ((m("a", source="usage.logins", window_days=None),), "measures.0.window_days", "needs a window"),
        ((m("a", source="account.arr", window_days=7),), "measures.0.window_days", "no window"),
        ((m("a", source="license.active", window_days=None, form="change_pct"),), "measures.0.form", "daily series"),
        ((m("a", aggregate="nps"),), "measures.0.aggregate", "allows"),
        ((m("a", per="seat", form="days_since"),), "measures.0.per", "not normalised"),
        ((m("a", thresholds=[1, 1]),), "measures.0.thresholds", "ascending"),
        ((m("a", thresholds=[0, 2e9]),), "measures.0.thresholds", "within"),
        ((m("a", source="signal."),), "measures.0.source", "Unknown source"),
        ((m("a", source="tickets.open", window_days=7, priority=["p0"]),), "measures.0.priority", "Unknown"),
        ((m("a"), m("a")), "measures.1.name", "listed twice"),
        ((m("a", source="license.active", window_days=None, data_days=30),), "measures.0.data_days", "applies to"),
    ],
)
def test_bad_measures_are_refused_by_field_path(measures: tuple[Measure, ...], path: str, message: str) -> None:
    errors = check_measures(measures)
    assert path in errors, errors
    assert any(message in text for text in errors[path]), errors[path]


def test_a_ratio_chain_is_fine_and_evaluates_after_its_parts() -> None:
    measures = (m("r2", ratio=["r1", "c"]), m("r1", ratio=["a", "b"]), m("a"), m("b"), m("c"))
    assert check_measures(measures) == {}
    base = {"a": np.array([6.0, 1.0, np.nan]), "b": np.array([3.0, 0.0, 1.0]), "c": np.array([2.0, 1.0, 1.0])}
    values = finish_values(measures, base)
    np.testing.assert_array_equal(values["r1"], [2.0, np.nan, np.nan])  # 0 or missing denominator: no data
    np.testing.assert_array_equal(values["r2"], [1.0, np.nan, np.nan])


@settings(max_examples=examples(200))
@given(values=st.lists(st.one_of(st.just(float("nan")), FLOATS), min_size=1, max_size=50))
def test_transform_and_missing(values: list[float]) -> None:
    raw = np.array(values)
    measures = (m("t", transform="log1p"), m("z", missing="zero"), m("tz", transform="log1p", missing="zero"))
    out = finish_values(measures, {"t": raw, "z": raw, "tz": raw})
    np.testing.assert_array_equal(np.isnan(out["t"]), np.isnan(raw))
    assert not np.isnan(out["z"]).any() and not np.isnan(out["tz"]).any()
    with np.errstate(invalid="ignore"):
        assert np.all(np.sign(out["t"][~np.isnan(raw)]) == np.sign(raw[~np.isnan(raw)]))
        ordered = np.argsort(raw[~np.isnan(raw)], kind="stable")
        assert np.all(np.diff(out["t"][~np.isnan(raw)][ordered]) >= 0)  # log1p keeps the order


@settings(max_examples=examples(200))
@given(values=st.lists(st.one_of(st.just(float("nan")), FLOATS), min_size=1, max_size=200))
def test_percentile_mapping_is_monotone_and_spans_the_portfolio(values: list[float]) -> None:
    raw = np.array(values)
    points = percentile_points(raw)
    (resolved,) = resolve_percentiles((m("p", mapping="percentile", thresholds=None),), {"p": raw})
    scores = score_measure(raw, np.asarray(resolved.thresholds), resolved.direction)
    np.testing.assert_array_equal(np.isnan(scores), np.isnan(raw))
    finite = raw[~np.isnan(raw)]
    if points:
        assert list(points) == sorted(points) and len(set(points)) == len(points)
        assert scores[raw == finite.min()].max() == 0.0
        assert scores[raw == finite.max()].min() == pytest.approx(100.0)
    order = np.argsort(finite, kind="stable")
    assert np.all(np.diff(scores[~np.isnan(raw)][order]) >= -1e-9)


@settings(max_examples=examples(200))
@given(
    scores=st.lists(st.one_of(st.just(float("nan")), st.floats(0, 100)), min_size=1, max_size=300),
    good=st.floats(0, 0.6),
    poor=st.floats(0, 0.39),
)
def test_calibrated_bands_hit_their_shares(scores: list[float], good: float, poor: float) -> None:
    score = np.array(scores)
    bands = Bands(good_share=good, poor_share=poor)
    cut = bands.resolve(score)
    valid = score[~np.isnan(score)]
    if not valid.size:
        assert cut == bands  # nothing to calibrate on
    else:
        assert 0 <= cut.poor <= cut.good <= np.nextafter(100.0, 101.0) and not cut.calibrated
        # At most the poor share is below the poor cut-off; at most the good share at or above the good one.
        assert np.count_nonzero(valid < cut.poor) <= poor * valid.size + 1e-9
        assert np.count_nonzero(valid >= cut.good) <= good * valid.size + 1e-9


def test_merge_patch_follows_rfc_7386_and_keyed_lists_merge_by_name() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": [1]}) == {
        "a": 1, "b": {"d": 3, "e": 4}, "f": [1],
    }  # fmt: skip
    config = {"measures": [{"name": "a", "window_days": 7}, {"name": "b"}], "rules": [{"id": "r", "at": 1}]}
    patched = patch_config(config, {"measures": {"a": {"window_days": 14}, "b": None, "c": {"source": "x"}}})
    assert patched["measures"] == [{"name": "a", "window_days": 14}, {"source": "x", "name": "c"}]
    assert patched["rules"] == [{"id": "r", "at": 1}]
    assert patch_config(config, {"rules": []})["rules"] == []  # an array replaces
    assert config["measures"][0] == {"name": "a", "window_days": 7}  # the input is not changed


def test_measure_group_lists_product_and_account() -> None:
    assert {"product", "account"} <= {g.value for g in MeasureGroup}
