"""The health model's own invariants: the default config, meaning errors by field path, to_dict."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from scoring.measures import LEGACY_DEFINITIONS
from scoring.model import (
    MAX_WEIGHT,
    Bands,
    ScoringConfigError,
    ScoringModel,
    check_model,
    default_config_dict,
    model_from_dict,
)
from scoring.stage import STAGES, LifecycleStage, StageRules

pytestmark = pytest.mark.unit

DEFAULT = default_config_dict()
MEASURE_NAMES = [m["name"] for m in DEFAULT["measures"]]


def edited(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """A deep copy of the default config with ``change`` applied to it."""
    data = copy.deepcopy(DEFAULT)
    change(data)
    return data


def rename_measure(index: int, name: str) -> Callable[[dict[str, Any]], object]:
    """Rename a measure everywhere (its weights too), so only the name itself can be wrong."""

    def change(d: dict[str, Any]) -> None:
        old = d["measures"][index]["name"]
        d["measures"][index]["name"] = name
        for weights in d["weights"].values():
            weights[name] = weights.pop(old)

    return change


def zero_weights(stage: str) -> Callable[[dict[str, Any]], object]:
    return lambda d: d["weights"][stage].update(dict.fromkeys(d["weights"][stage], 0))


def test_default_config_loads():
    model = model_from_dict(default_config_dict())
    assert model.measure_names == tuple(MEASURE_NAMES)
    assert set(model.measure_names) <= set(LEGACY_DEFINITIONS)
    assert model.bands == Bands(good=70.0, poor=40.0)
    assert model.stage_rules == StageRules(onboarding_max_days=90, pre_renewal_days=90)
    assert check_model(model) == {}


def test_weight_matrix_is_normalized_per_stage_and_read_only():
    model = model_from_dict(DEFAULT)
    assert model.weight_matrix.shape == (len(STAGES), len(MEASURE_NAMES))
    np.testing.assert_allclose(model.weight_matrix.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    onboarding = STAGES.index(LifecycleStage.ONBOARDING)
    assert model.weight_matrix[onboarding, MEASURE_NAMES.index("active_user_ratio")] == pytest.approx(20 / 100)
    assert model.weight_matrix[onboarding, MEASURE_NAMES.index("nps")] == 0.0
    with pytest.raises(ValueError):
        model.weight_matrix[0, 0] = 1.0


def test_weight_matrix_gives_unnamed_measures_zero_weight():
    model = model_from_dict(edited(lambda d: d["weights"]["established"].pop("nps")))
    assert model.weight_matrix[STAGES.index(LifecycleStage.ESTABLISHED), MEASURE_NAMES.index("nps")] == 0.0


def test_weight_matrix_ignores_the_scale_of_a_stages_weights():
    base = model_from_dict(DEFAULT)
    scaled = dataclasses.replace(
        base, weights={stage: {name: w * 37.5 for name, w in ws.items()} for stage, ws in base.weights.items()}
    )
    np.testing.assert_allclose(scaled.weight_matrix, base.weight_matrix, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("change", "paths"),
    [
        pytest.param(
            lambda d: d["weights"]["onboarding"].update(nps=-1), {"weights.onboarding.nps"}, id="negative-weight"
        ),
        pytest.param(
            lambda d: d["weights"]["onboarding"].update(nps=math.inf), {"weights.onboarding.nps"}, id="infinite-weight"
        ),
        pytest.param(zero_weights("established"), {"weights.established"}, id="all-zero-stage"),
        pytest.param(lambda d: d["weights"].update(pre_renewal={}), {"weights.pre_renewal"}, id="empty-stage"),
        pytest.param(lambda d: d["weights"].pop("pre_renewal"), {"weights.pre_renewal"}, id="missing-stage"),
        pytest.param(lambda d: d["weights"].update(renewal={"nps": 1}), {"weights.renewal"}, id="unknown-stage"),
        pytest.param(
            lambda d: d["weights"]["onboarding"].update(bogus=1), {"weights.onboarding.bogus"}, id="undefined-measure"
        ),
        pytest.param(
            lambda d: d["measures"].pop(MEASURE_NAMES.index("nps")),
            {"weights.onboarding.nps", "weights.established.nps", "weights.pre_renewal.nps"},
            id="weighted-measure-not-defined",
        ),
        pytest.param(
            lambda d: d["measures"][2].update(source="usage.bogus"), {"measures.2.source"}, id="unknown-source"
        ),
        pytest.param(
            lambda d: d["measures"].append(dict(d["measures"][0])), {"measures.11.name"}, id="duplicate-measure"
        ),
        pytest.param(
            lambda d: d["measures"][2].update(thresholds=[10, -10, -50]), {"measures.2.thresholds"}, id="descending"
        ),
        pytest.param(
            lambda d: d["measures"][2].update(thresholds=[-50, -10, -10]), {"measures.2.thresholds"}, id="repeated"
        ),
        pytest.param(lambda d: d["measures"][2].update(thresholds=[1]), {"measures.2.thresholds"}, id="one-threshold"),
        pytest.param(
            lambda d: d["measures"][2].update(thresholds=[0, math.nan]), {"measures.2.thresholds"}, id="nan-threshold"
        ),
        pytest.param(lambda d: d.update(measures=[]), None, id="no-measures"),
        pytest.param(lambda d: d["bands"].update(poor=70), {"bands"}, id="poor-equals-good"),
        pytest.param(lambda d: d["bands"].update(poor=80), {"bands"}, id="poor-above-good"),
        pytest.param(lambda d: d["bands"].update(good=101), {"bands"}, id="good-above-100"),
        pytest.param(lambda d: d.update(neutral_score=-1), {"neutral_score"}, id="neutral-below-0"),
        pytest.param(
            lambda d: d["stages"].update(onboarding_max_days=-1), {"stages.onboarding_max_days"}, id="negative-days"
        ),
        pytest.param(
            lambda d: d["stages"].update(pre_renewal_days=-1), {"stages.pre_renewal_days"}, id="negative-renewal-days"
        ),
    ],
)
def test_model_from_dict_rejects_meaning_errors_by_field_path(change, paths):
    with pytest.raises(ScoringConfigError) as excinfo:
        model_from_dict(edited(change))
    errors = excinfo.value.errors
    if paths is None:  # no measures: every weight also names an undefined measure
        assert "measures" in errors
    else:
        assert set(errors) == paths
    assert all(isinstance(m, str) and m for messages in errors.values() for m in messages)


def test_scoring_config_error_is_a_value_error_naming_the_paths():
    with pytest.raises(ValueError, match=r"weights\.onboarding\.nps"):
        model_from_dict(edited(lambda d: d["weights"]["onboarding"].update(nps=-1)))


def test_check_model_reports_an_unknown_stage_key():
    model = model_from_dict(DEFAULT)
    # Bypasses model_from_dict, which already turns stage names into LifecycleStage.
    weights: dict[Any, dict[str, float]] = {**model.weights, "renewal": {"nps": 1.0}}
    with pytest.raises(ScoringConfigError) as excinfo:
        ScoringModel(measures=model.measures, weights=weights)
    assert set(excinfo.value.errors) == {"weights.renewal"}


def test_weights_beyond_the_bound_are_refused():
    data = edited(lambda d: d["weights"]["established"].update(nps=1e20))
    with pytest.raises(ScoringConfigError) as info:
        model_from_dict(data)
    assert info.value.errors == {"weights.established.nps": [f"Weights are relative: at most {MAX_WEIGHT:g}."]}


def test_to_dict_round_trips():
    model = model_from_dict(DEFAULT)
    assert model.to_dict() == DEFAULT
    assert model_from_dict(model.to_dict()) == model
    assert model_from_dict(copy.deepcopy(model.to_dict())).to_dict() == model.to_dict()


def test_to_dict_fills_in_an_empty_label():
    data = edited(lambda d: d["measures"][0].pop("label"))
    model = model_from_dict(data)
    assert model.measures[0].label == ""
    assert model.to_dict()["measures"][0]["label"] == ""


@pytest.mark.parametrize("thresholds", [[0.0, 5e-324], [-1e308, 1e308], [0.0, 2e9]])
def test_thresholds_must_be_bounded_and_apart(thresholds):
    data = edited(lambda d: d["measures"][0].__setitem__("thresholds", thresholds))
    with pytest.raises(ScoringConfigError) as excinfo:
        model_from_dict(data)
    assert list(excinfo.value.errors) == ["measures.0.thresholds"]


def test_huge_weights_still_normalize():
    def huge(d: dict[str, Any]) -> None:
        for name in d["weights"]["established"]:
            d["weights"]["established"][name] = MAX_WEIGHT

    matrix = model_from_dict(edited(huge)).weight_matrix
    established = STAGES.index(LifecycleStage.ESTABLISHED)
    assert np.all(np.isfinite(matrix[established]))
    assert matrix[established].sum() == pytest.approx(1.0)


def test_with_unweighted_adds_measures_at_weight_zero_and_keeps_the_score() -> None:
    import numpy as np

    from scoring.health import compute_health
    from scoring.measures import Direction, MeasureGroup
    from scoring.model import Measure, default_config_dict, model_from_dict

    model = model_from_dict(default_config_dict())
    extra = (Measure(name="extra_one", group=MeasureGroup.PRODUCT, direction=Direction.HIGHER_IS_BETTER,
                     thresholds=(0.0, 1.0), source="usage.logins", window_days=7),)  # fmt: skip
    wider = model.with_unweighted(extra)
    assert wider.measure_names == (*model.measure_names, "extra_one") and model.with_unweighted(()) is model
    assert all(w["extra_one"] == 0.0 for w in wider.weights.values())
    rng = np.random.default_rng(1)
    raw = rng.uniform(0, 100, size=(len(model.measures), 50))
    stage = rng.integers(0, 3, 50).astype(np.int8)
    before = compute_health(raw, stage, model).score
    after = compute_health(np.vstack([raw, rng.uniform(0, 1, (1, 50))]), stage, wider).score
    np.testing.assert_allclose(after, before)
