"""Explaining one stored score: drivers from raw values and a config version."""

from __future__ import annotations

import pytest

from scoring.drivers import explain
from scoring.model import default_config_dict, model_from_dict
from scoring.stage import STAGE_CODE, LifecycleStage

pytestmark = pytest.mark.unit

MODEL = model_from_dict(default_config_dict())
ESTABLISHED = STAGE_CODE[LifecycleStage.ESTABLISHED]


def values(**raw: float) -> list[float | None]:
    return [raw.get(m.name) for m in MODEL.measures]


def test_drivers_sum_to_the_score_and_sort_worst_first() -> None:
    drivers = explain(values(active_user_ratio=0.6, days_since_last_login=30, nps=0.0), ESTABLISHED, MODEL)
    by_name = {d.measure: d for d in drivers}
    assert by_name["active_user_ratio"].score == 100 and by_name["days_since_last_login"].score == 0
    assert by_name["nps"].score == 50 and by_name["nps"].contribution == 0
    # established weights: active 15, login recency 10, nps 5 -> shares 0.5, 0.3333, 0.1667
    assert by_name["active_user_ratio"].weight == pytest.approx(0.5)
    assert by_name["active_user_ratio"].contribution == pytest.approx(25.0)
    assert by_name["days_since_last_login"].contribution == pytest.approx(-16.67, abs=0.01)
    assert drivers[0].measure == "days_since_last_login"
    assert [d.contribution for d in drivers[3:]] == [None] * (len(drivers) - 3)
    assert 50 + sum(d.contribution or 0 for d in drivers) == pytest.approx(50 + 25 - 16.67, abs=0.01)


def test_measure_without_weight_in_stage_contributes_zero() -> None:
    onboarding = STAGE_CODE[LifecycleStage.ONBOARDING]  # nps has weight 0 in onboarding
    drivers = {d.measure: d for d in explain(values(nps=-100.0, csat_avg=5.0), onboarding, MODEL)}
    assert drivers["nps"].score == 0 and drivers["nps"].contribution == 0 and drivers["nps"].weight == 0
    assert drivers["csat_avg"].weight == 1.0 and drivers["csat_avg"].contribution == 50


def test_no_data_explains_nothing() -> None:
    drivers = explain(values(), ESTABLISHED, MODEL)
    assert all(d.score is None and d.contribution is None and d.weight == 0 for d in drivers)


def test_values_must_match_the_model() -> None:
    with pytest.raises(ValueError, match="3 values for a model of 11 measures"):
        explain([1.0, 2.0, 3.0], ESTABLISHED, MODEL)
