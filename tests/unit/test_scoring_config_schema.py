"""The scoring-config schema: shape and meaning errors by field, the loaded model, dump round-trip."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest
from marshmallow import ValidationError

from app.schemas import PaginationQuerySchema
from app.schemas.scoring_config import (
    ScoringConfigSchema,
    StageWeightsSchema,
    load_scoring_config,
    nest_error_paths,
)
from scoring.measures import SOURCES
from scoring.model import ScoringModel, default_config_dict, model_from_dict
from scoring.stage import STAGES

UNKNOWN_SOURCE = "Unknown source 'usage.bogus'; known: " + ", ".join([*SOURCES, "signal.<name>"]) + "."

pytestmark = pytest.mark.unit

DEFAULT = default_config_dict()
MEASURE_NAMES = [m["name"] for m in DEFAULT["measures"]]
NPS = MEASURE_NAMES.index("nps")

UNKNOWN = ["Unknown field."]
MISSING = ["Missing data for required field."]
NOT_A_NUMBER = ["Not a valid number."]
NOT_AN_INTEGER = ["Not a valid integer."]
NEGATIVE_WEIGHT = ["Weights must not be negative."]
ALL_ZERO = ["At least one weight in each stage must be positive."]
NOT_ASCENDING = ["Thresholds must be strictly ascending."]


def edited(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """A deep copy of the default config with ``change`` applied to it."""
    data = copy.deepcopy(DEFAULT)
    change(data)
    return data


def set_in(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        node: Any = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def drop(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        node: Any = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


def undefined_weight(name: str) -> list[str]:
    return [f"Weight for a measure that is not defined: {name!r}."]


def load_errors(data: object) -> dict[str | int, Any]:
    with pytest.raises(ValidationError) as excinfo:
        ScoringConfigSchema().load(data)
    return excinfo.value.messages  # type: ignore[return-value]


# --- valid configs ---------------------------------------------------------------------------


def test_scoring_config_schema_loads_the_default_config_into_a_model():
    model = load_scoring_config(default_config_dict())
    assert isinstance(model, ScoringModel)
    assert model == model_from_dict(DEFAULT)


def test_scoring_config_schema_accepts_a_measure_without_label():
    model = load_scoring_config(edited(drop(("measures", 0, "label"))))
    assert model.measures[0].label == ""


def test_scoring_config_schema_accepts_a_stage_that_leaves_out_measures():
    # A measure a stage does not name has weight 0 there.
    model = load_scoring_config(edited(drop(("weights", "established", "nps"))))
    assert "nps" not in model.weights[STAGES[1]]


def test_scoring_config_schema_dump_round_trips():
    schema = ScoringConfigSchema()
    model = load_scoring_config(DEFAULT)
    dumped = schema.dump(model.to_dict())
    assert dumped == model.to_dict() == DEFAULT
    assert schema.load(dumped) == model


def test_stage_weights_schema_names_every_stage():
    assert set(StageWeightsSchema().fields) == {stage.value for stage in STAGES}


# --- invalid configs: one case per rule, with the full error dict -----------------------------


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        # Unknown keys, at every level.
        pytest.param(set_in(("extra",), 1), {"extra": UNKNOWN}, id="unknown-top-level-key"),
        pytest.param(set_in(("stages", "grace_days"), 3), {"stages": {"grace_days": UNKNOWN}}, id="unknown-stages-key"),
        pytest.param(set_in(("bands", "great"), 90), {"bands": {"great": UNKNOWN}}, id="unknown-bands-key"),
        pytest.param(
            set_in(("measures", 2, "unit"), "%"), {"measures": {2: {"unit": UNKNOWN}}}, id="unknown-measure-key"
        ),
        pytest.param(set_in(("weights", "renewal"), {"nps": 1}), {"weights": {"renewal": UNKNOWN}}, id="unknown-stage"),
        # Missing keys.
        pytest.param(drop(("weights", "pre_renewal")), {"weights": {"pre_renewal": MISSING}}, id="missing-stage"),
        pytest.param(drop(("bands",)), {"bands": MISSING}, id="missing-bands"),
        pytest.param(
            drop(("measures", 1, "thresholds")),
            {"measures": {1: {"thresholds": ["At least two thresholds are needed."]}}},
            id="no-thresholds",
        ),
        # Weights.
        pytest.param(
            set_in(("weights", "onboarding", "nps"), -1),
            {"weights": {"onboarding": {"nps": NEGATIVE_WEIGHT}}},
            id="negative-weight",
        ),
        pytest.param(
            lambda d: d["weights"]["established"].update(dict.fromkeys(d["weights"]["established"], 0)),
            {"weights": {"established": ALL_ZERO}},
            id="all-zero-stage",
        ),
        pytest.param(set_in(("weights", "established"), {}), {"weights": {"established": ALL_ZERO}}, id="empty-stage"),
        pytest.param(
            set_in(("weights", "established"), {"nps": -1, "csat_avg": 0}),
            {"weights": {"established": {"nps": NEGATIVE_WEIGHT, "_schema": ALL_ZERO}}},
            id="negative-and-all-zero",
        ),
        pytest.param(
            set_in(("weights", "onboarding", "bogus"), 1),
            {"weights": {"onboarding": {"bogus": undefined_weight("bogus")}}},
            id="weight-for-unknown-measure",
        ),
        pytest.param(
            drop(("measures", NPS)),
            {"weights": {stage.value: {"nps": undefined_weight("nps")} for stage in STAGES}},
            id="weight-for-measure-not-in-config",
        ),
        # Measures.
        pytest.param(
            set_in(("measures", 2, "source"), "usage.bogus"),
            {"measures": {2: {"source": [UNKNOWN_SOURCE]}}},
            id="unknown-source",
        ),
        pytest.param(
            lambda d: d["measures"].append(dict(d["measures"][0])),
            {"measures": {11: {"name": ["Measure 'goals_achieved_ratio' is listed twice."]}}},
            id="duplicate-measure",
        ),
        pytest.param(set_in(("measures",), []), {"measures": ["At least one measure is needed."]}, id="no-measures"),
        pytest.param(
            set_in(("measures", 2, "thresholds"), [10, -10, -50]),
            {"measures": {2: {"thresholds": NOT_ASCENDING}}},
            id="descending-thresholds",
        ),
        pytest.param(
            set_in(("measures", 2, "thresholds"), [-50, -10, -10]),
            {"measures": {2: {"thresholds": NOT_ASCENDING}}},
            id="repeated-threshold",
        ),
        pytest.param(
            set_in(("measures", 2, "thresholds"), [5]),
            {"measures": {2: {"thresholds": ["At least two thresholds are needed."]}}},
            id="single-threshold",
        ),
        pytest.param(
            set_in(("measures", 2, "thresholds"), [0, math.inf]),
            {"measures": {2: {"thresholds": {1: ["Special numeric values (nan or infinity) are not permitted."]}}}},
            id="infinite-threshold",
        ),
        pytest.param(
            set_in(("measures", 2, "group"), "usage"),
            {
                "measures": {
                    2: {"group": ["Must be one of: outcomes, adoption, product, license, support, feedback, account."]}
                }
            },
            id="unknown-group",
        ),
        pytest.param(
            set_in(("measures", 2, "direction"), "up"),
            {"measures": {2: {"direction": ["Must be one of: higher_is_better, lower_is_better."]}}},
            id="unknown-direction",
        ),
        # Bands, neutral score and stage rules.
        pytest.param(
            set_in(("bands", "poor"), 70),
            {"bands": {"poor": ["Must be below the good cut-off (70)."]}},
            id="poor-equals-good",
        ),
        pytest.param(
            set_in(("bands", "poor"), 75.5),
            {"bands": {"poor": ["Must be below the good cut-off (70)."]}},
            id="poor-above-good",
        ),
        pytest.param(
            set_in(("bands", "good"), 101),
            {"bands": {"good": ["Must be greater than or equal to 0 and less than or equal to 100."]}},
            id="good-above-100",
        ),
        pytest.param(
            set_in(("neutral_score",), -1),
            {"neutral_score": ["Must be greater than or equal to 0 and less than or equal to 100."]},
            id="neutral-below-0",
        ),
        pytest.param(
            set_in(("stages", "onboarding_max_days"), -1),
            {"stages": {"onboarding_max_days": ["Must be greater than or equal to 0 and less than or equal to 3650."]}},
            id="negative-days",
        ),
        pytest.param(
            set_in(("stages", "first_value_signal"), ""),
            {"stages": {"first_value_signal": ["Length must be between 1 and 64."]}},
            id="empty-signal",
        ),
        # Wrong types.
        pytest.param(set_in(("neutral_score",), "50"), {"neutral_score": NOT_A_NUMBER}, id="number-as-string"),
        pytest.param(set_in(("neutral_score",), True), {"neutral_score": NOT_A_NUMBER}, id="number-as-bool"),
        pytest.param(
            set_in(("stages", "pre_renewal_days"), 90.5),
            {"stages": {"pre_renewal_days": NOT_AN_INTEGER}},
            id="float-days",
        ),
        pytest.param(
            set_in(("stages", "pre_renewal_days"), "90"),
            {"stages": {"pre_renewal_days": NOT_AN_INTEGER}},
            id="string-days",
        ),
        pytest.param(
            set_in(("weights", "onboarding", "nps"), "5"),
            {"weights": {"onboarding": {"nps": {"value": NOT_A_NUMBER}}}},
            id="weight-as-string",
        ),
        pytest.param(
            set_in(("measures", 2, "thresholds"), ["low", 0]),
            {"measures": {2: {"thresholds": {0: NOT_A_NUMBER}}}},
            id="threshold-as-string",
        ),
        pytest.param(
            set_in(("measures", 2, "name"), 7), {"measures": {2: {"name": ["Not a valid string."]}}}, id="name-as-int"
        ),
        pytest.param(set_in(("measures",), {"nps": {}}), {"measures": ["Not a valid list."]}, id="measures-as-dict"),
        pytest.param(set_in(("weights",), []), {"weights": {"_schema": ["Invalid input type."]}}, id="weights-as-list"),
        pytest.param(
            set_in(("weights", "onboarding"), [1, 2]),
            {"weights": {"onboarding": ["Not a valid mapping type."]}},
            id="stage-weights-as-list",
        ),
    ],
)
def test_scoring_config_schema_rejects_invalid_config(change, errors):
    assert load_errors(edited(change)) == errors


def test_scoring_config_schema_rejects_a_non_object():
    assert load_errors([DEFAULT]) == {"_schema": ["Invalid input type."]}


def test_load_scoring_config_raises_validation_error():
    with pytest.raises(ValidationError):
        load_scoring_config(edited(set_in(("weights", "onboarding", "nps"), -1)))


# --- core errors reach the caller under the same field paths ----------------------------------


class SchemaWithoutWeightChecks(ScoringConfigSchema):
    """Once the schema had its own negative-weight rule; now only the core checks weights, so
    switching the old hook off changes nothing."""

    def _check_weight_values(self, data: dict[str, Any], **kwargs: Any) -> None:  # not a hook any more
        return None


def test_scoring_config_schema_reports_core_errors_against_fields():
    with pytest.raises(ValidationError) as excinfo:
        SchemaWithoutWeightChecks().load(edited(set_in(("weights", "onboarding", "nps"), -1)))
    assert excinfo.value.messages == {"weights": {"onboarding": {"nps": NEGATIVE_WEIGHT}}}


@pytest.mark.parametrize(
    ("flat", "nested"),
    [
        ({"neutral_score": ["x"]}, {"neutral_score": ["x"]}),
        ({"weights.onboarding.nps": ["x"]}, {"weights": {"onboarding": {"nps": ["x"]}}}),
        ({"measures.2.thresholds": ["x"]}, {"measures": {2: {"thresholds": ["x"]}}}),
        ({"stages.pre_renewal_days": ["x"]}, {"stages": {"pre_renewal_days": ["x"]}}),
        # A measure name is kept whole, dots and digits included.
        ({"weights.onboarding.a.b": ["x"]}, {"weights": {"onboarding": {"a.b": ["x"]}}}),
        ({"weights.onboarding.2": ["x"]}, {"weights": {"onboarding": {"2": ["x"]}}}),
        # A path that is both a leaf and a parent keeps its own messages under _schema.
        (
            {"weights.established": ["a"], "weights.established.nps": ["b"]},
            {"weights": {"established": {"_schema": ["a"], "nps": ["b"]}}},
        ),
        (
            {"weights.established.nps": ["b"], "weights.established": ["a"]},
            {"weights": {"established": {"nps": ["b"], "_schema": ["a"]}}},
        ),
        (
            {"measures.0.name": ["a"], "measures.3.name": ["b"], "measures": ["c"]},
            {"measures": {0: {"name": ["a"]}, 3: {"name": ["b"]}, "_schema": ["c"]}},
        ),
    ],
)
def test_nest_error_paths(flat, nested):
    assert nest_error_paths(flat) == nested


# --- the base schema ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"page": 1, "per_page": 50}),
        ({"page": "3", "per_page": "100"}, {"page": 3, "per_page": 100}),
        ({"per_page": "1"}, {"page": 1, "per_page": 1}),
    ],
)
def test_pagination_query_schema_loads(query, expected):
    assert PaginationQuerySchema().load(query) == expected


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ({"page": "0"}, {"page": ["Must be greater than or equal to 1."]}),
        ({"per_page": "101"}, {"per_page": ["Must be greater than or equal to 1 and less than or equal to 100."]}),
        ({"per_page": "0"}, {"per_page": ["Must be greater than or equal to 1 and less than or equal to 100."]}),
        ({"page": "first"}, {"page": ["Not a valid integer."]}),
        ({"size": "10"}, {"size": ["Unknown field."]}),
    ],
)
def test_pagination_query_schema_rejects(query, errors):
    with pytest.raises(ValidationError) as excinfo:
        PaginationQuerySchema().load(query)
    assert excinfo.value.messages == errors


def test_rules_carry_fire_on_first_day_and_min_change_through_the_schema():
    config = copy.deepcopy(DEFAULT)
    index = next(i for i, r in enumerate(config["rules"]) if r["id"] == "any_into_poor")
    config["rules"][index]["fire_on_first_day"] = True
    model = load_scoring_config(config)
    assert model.rules[index].fire_on_first_day
    assert ScoringConfigSchema().dump(model.to_dict())["rules"][index]["fire_on_first_day"] is True
    change = next(i for i, r in enumerate(config["rules"]) if r["id"] == "any_active_users_down")
    config["rules"][change]["min_change"] = -5
    assert "min_change" in load_errors(config)["rules"][change]
    config["rules"][change]["min_change"] = 30
    config["rules"][index]["min_change"] = 3  # not a band_change parameter
    assert "min_change" in load_errors(config)["rules"][index]
    config["rules"][index].pop("min_change")
    config["rules"][index]["fire_on_first_day"] = "yes please"
    assert "fire_on_first_day" in load_errors(config)["rules"][index]
