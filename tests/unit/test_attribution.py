"""Score-change attribution: data and config effects per measure that add up to the change."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.attribution import ScoredDay, attribute, score_point
from scoring.health import compute_health
from scoring.model import default_config_dict, model_from_dict
from scoring.stage import STAGE_CODE, STAGES, LifecycleStage
from tests.support.examples import examples

pytestmark = pytest.mark.unit

BASE = default_config_dict()
MODEL = model_from_dict(BASE)
NAMES = MODEL.measure_names
ESTABLISHED = STAGE_CODE[LifecycleStage.ESTABLISHED]


def variant(**changes: object) -> dict[str, object]:
    config = {**BASE, **changes}
    return config


def values(model_names: tuple[str, ...] = NAMES, **raw: float) -> list[float | None]:
    return [raw.get(name) for name in model_names]


def test_same_config_is_all_data_effect() -> None:
    before = values(active_user_ratio=0.6, days_since_last_login=3, nps=20.0)
    after = values(active_user_ratio=0.2, days_since_last_login=20, nps=20.0)
    result = attribute(ScoredDay(before, ESTABLISHED, MODEL), ScoredDay(after, ESTABLISHED, MODEL))
    assert result.config_effect == pytest.approx(0.0, abs=1e-12)
    assert result.data_effect == pytest.approx(result.change, abs=1e-9)
    assert result.change < 0
    by_name = {m.measure: m for m in result.measures}
    assert by_name["nps"].data_effect == 0  # same value and the same measures with data: same share
    assert by_name["active_user_ratio"].data_effect < 0
    assert by_name["csat_avg"].data_effect == 0 and by_name["csat_avg"].from_value is None


def test_same_data_is_all_config_effect() -> None:
    config = variant(weights={**BASE["weights"], "established": {**BASE["weights"]["established"], "nps": 50}})
    other = model_from_dict(config)
    same = values(active_user_ratio=0.6, days_since_last_login=30, nps=-40.0)
    result = attribute(ScoredDay(same, ESTABLISHED, MODEL), ScoredDay(same, ESTABLISHED, other))
    assert result.data_effect == pytest.approx(0.0, abs=1e-12)
    assert result.config_effect == pytest.approx(result.change, abs=1e-9)
    assert {m.measure: m for m in result.measures}["nps"].config_effect < 0


def test_scores_match_the_scorer() -> None:
    raw = values(active_user_ratio=0.45, days_since_last_login=12, nps=10.0, open_ticket_load=3.0)
    for code in range(len(STAGES)):
        point = score_point(dict(zip(NAMES, raw, strict=True)), code, MODEL)
        matrix = np.array([[np.nan if v is None else v] for v in raw], dtype=np.float64)
        expected = compute_health(matrix, np.array([code], dtype=np.int8), MODEL)
        assert point.score == pytest.approx(float(expected.score[0]), abs=1e-9)
        assert point.score == pytest.approx(point.neutral + sum(point.contributions.values()), abs=1e-9)


def test_measure_added_and_dropped_and_neutral_moved() -> None:
    # The to-config drops nps, and moves the neutral score.
    measures = [m for m in BASE["measures"] if m["name"] != "nps"]
    weights = {stage: {k: v for k, v in w.items() if k != "nps"} for stage, w in BASE["weights"].items()}
    other = model_from_dict(variant(measures=measures, weights=weights, neutral_score=40))
    before = values(active_user_ratio=0.5, nps=-60.0)
    after = values(other.measure_names, active_user_ratio=0.5)
    result = attribute(ScoredDay(before, ESTABLISHED, MODEL), ScoredDay(after, ESTABLISHED, other))
    by_name = {m.measure: m for m in result.measures}
    # Its data is assumed unchanged, so dropping it is all config effect.
    assert by_name["nps"].data_effect == 0 and by_name["nps"].config_effect > 0
    assert by_name["nps"].to_value is None and by_name["nps"].to_contribution == 0
    assert result.neutral_effect == -10
    assert result.data_effect + result.config_effect == pytest.approx(result.change, abs=1e-9)


def test_middle_without_data_counts_as_neutral() -> None:
    # The from-config weighs only nps in onboarding; the to-data has no nps.
    only_nps = {stage: {"nps": 1.0} for stage in BASE["weights"]}
    from_model = model_from_dict(variant(weights=only_nps))
    result = attribute(
        ScoredDay(values(nps=50.0), ESTABLISHED, from_model),
        ScoredDay(values(active_user_ratio=0.5), ESTABLISHED, MODEL),
    )
    assert result.data_effect == pytest.approx(-50.0)
    assert result.data_effect + result.config_effect == pytest.approx(result.change, abs=1e-9)


def test_mismatched_values_are_refused() -> None:
    with pytest.raises(ValueError, match="values"):
        attribute(ScoredDay([1.0], ESTABLISHED, MODEL), ScoredDay(values(), ESTABLISHED, MODEL))
    with pytest.raises(ValueError, match="stage"):
        score_point({}, 7, MODEL)


# --- the property: the effects add up to the change, whatever the data and configs ---------------

_RAW = st.one_of(st.none(), st.floats(min_value=-200, max_value=200, allow_nan=False))
_WEIGHT = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=100, allow_nan=False))


@st.composite
def models(draw: st.DrawFn) -> object:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=len(NAMES), unique=True))
    measures = [m for m in BASE["measures"] if m["name"] in names]
    weights = {}
    for stage in STAGES:
        stage_weights = {name: draw(_WEIGHT) for name in names}
        if not any(stage_weights.values()):
            stage_weights[names[0]] = 1.0
        weights[stage.value] = stage_weights
    neutral = draw(st.floats(min_value=0, max_value=100, allow_nan=False))
    return model_from_dict(variant(measures=measures, weights=weights, neutral_score=neutral, rules=[]))


@settings(max_examples=examples(300), deadline=None)
@given(
    from_model=models(),
    to_model=models(),
    data=st.data(),
    from_stage=st.integers(0, len(STAGES) - 1),
    to_stage=st.integers(0, len(STAGES) - 1),
)
def test_effects_sum_to_the_change(from_model, to_model, data, from_stage, to_stage) -> None:  # type: ignore[no-untyped-def]
    from_values = data.draw(st.lists(_RAW, min_size=len(from_model.measures), max_size=len(from_model.measures)))
    to_values = data.draw(st.lists(_RAW, min_size=len(to_model.measures), max_size=len(to_model.measures)))
    result = attribute(ScoredDay(from_values, from_stage, from_model), ScoredDay(to_values, to_stage, to_model))
    total = sum(m.total for m in result.measures) + result.neutral_effect
    assert math.isclose(total, result.change, abs_tol=1e-9)
    assert math.isclose(result.data_effect + result.config_effect, result.change, abs_tol=1e-9)
    assert math.isclose(result.from_score, result.to_score - result.change, abs_tol=1e-9)
    # Every measure either config has is listed once.
    assert sorted(m.measure for m in result.measures) == sorted(
        set(from_model.measure_names) | set(to_model.measure_names)
    )
