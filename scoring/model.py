"""The health model (a scoring config): measures, thresholds, per-stage weights and band cut-offs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from scoring.measures import MEASURE_CATALOG, Direction, MeasureGroup
from scoring.rules import Rule, check_rules, default_rules_list, rule_from_dict
from scoring.stage import STAGES, LifecycleStage, StageRules

#: Bounds that keep the interpolation exact (no overflow, no division by a vanishing gap).
MAX_THRESHOLD = 1e9
MIN_THRESHOLD_GAP = 1e-9


class ScoringConfigError(ValueError):
    """A scoring config that breaks an invariant; ``errors`` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid scoring config: " + json.dumps(errors, sort_keys=True))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Measure:
    name: str
    group: MeasureGroup
    direction: Direction
    thresholds: tuple[float, ...]
    label: str = ""


@dataclass(frozen=True, slots=True)
class Bands:
    """Score cut-offs: ``score >= good`` is good, ``score < poor`` is poor, average between."""

    good: float = 70.0
    poor: float = 40.0


@dataclass(frozen=True, slots=True)
class ScoringModel:
    """A validated scoring config, plus the arrays the vectorized scorer needs.

    ``weights[stage][measure]`` are relative: only their ratios within a stage matter, so
    multiplying a stage's weights by a constant changes nothing. A measure a stage does not
    name has weight 0 there.
    """

    measures: tuple[Measure, ...]
    weights: dict[LifecycleStage, dict[str, float]]
    bands: Bands = Bands()
    stage_rules: StageRules = field(default_factory=StageRules)
    neutral_score: float = 50.0
    rules: tuple[Rule, ...] = ()
    # Derived arrays, filled in __post_init__.
    weight_matrix: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        errors = check_model(self)
        if errors:
            raise ScoringConfigError(errors)
        names = self.measure_names
        matrix = np.zeros((len(STAGES), len(names)), dtype=np.float64)
        for code, stage in enumerate(STAGES):
            row = np.array([self.weights.get(stage, {}).get(n, 0.0) for n in names], dtype=np.float64)
            # Scale by the largest first: huge weights must not overflow the sum to inf.
            row = row / row.max()
            matrix[code] = row / row.sum()
        matrix.setflags(write=False)
        object.__setattr__(self, "weight_matrix", matrix)

    @property
    def measure_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.measures)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of this model, as stored in a scoring-config version."""
        return {
            "stages": {
                "onboarding_max_days": self.stage_rules.onboarding_max_days,
                "pre_renewal_days": self.stage_rules.pre_renewal_days,
                "first_value_signal": self.stage_rules.first_value_signal,
            },
            "bands": {"good": self.bands.good, "poor": self.bands.poor},
            "neutral_score": self.neutral_score,
            "measures": [
                {
                    "name": m.name,
                    "label": m.label,
                    "group": m.group.value,
                    "direction": m.direction.value,
                    "thresholds": list(m.thresholds),
                }
                for m in self.measures
            ],
            "weights": {stage.value: dict(self.weights.get(stage, {})) for stage in STAGES},
            "rules": [rule.to_dict() for rule in self.rules],
        }


def check_model(model: ScoringModel) -> dict[str, list[str]]:
    """Return the meaning errors of a model keyed by field path (empty when it is valid)."""
    errors: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        errors.setdefault(path, []).append(message)

    seen: set[str] = set()
    for i, m in enumerate(model.measures):
        if m.name not in MEASURE_CATALOG:
            add(f"measures.{i}.name", f"Unknown measure {m.name!r}; known: {', '.join(sorted(MEASURE_CATALOG))}.")
        if m.name in seen:
            add(f"measures.{i}.name", f"Measure {m.name!r} is listed twice.")
        seen.add(m.name)
        t = np.asarray(m.thresholds, dtype=np.float64)
        if t.size < 2:
            add(f"measures.{i}.thresholds", "At least two thresholds are needed.")
        elif not np.all(np.isfinite(t)):
            add(f"measures.{i}.thresholds", "Thresholds must be finite numbers.")
        elif np.any(np.abs(t) > MAX_THRESHOLD):
            add(f"measures.{i}.thresholds", f"Thresholds must lie within +-{MAX_THRESHOLD:g}.")
        elif not np.all(np.diff(t) > 0):
            add(f"measures.{i}.thresholds", "Thresholds must be strictly ascending.")
        elif np.any(np.diff(t) < MIN_THRESHOLD_GAP):
            add(f"measures.{i}.thresholds", f"Thresholds must be at least {MIN_THRESHOLD_GAP:g} apart.")
    if not model.measures:
        add("measures", "At least one measure is needed.")
    for stage in STAGES:
        stage_weights = model.weights.get(stage, {})
        for name, weight in stage_weights.items():
            if name not in seen:
                add(f"weights.{stage.value}.{name}", f"Weight for a measure that is not defined: {name!r}.")
            if not np.isfinite(weight):
                add(f"weights.{stage.value}.{name}", "Weights must be finite numbers.")
            elif weight < 0:
                add(f"weights.{stage.value}.{name}", "Weights must not be negative.")
        if sum(w for w in stage_weights.values() if np.isfinite(w) and w > 0) <= 0:
            add(f"weights.{stage.value}", "At least one weight in each stage must be positive.")
    for stage in model.weights:
        if stage not in STAGES:
            add(f"weights.{stage}", f"Unknown stage {stage!r}.")
    b = model.bands
    if not (0 <= b.poor < b.good <= 100):
        add("bands", "Band cut-offs must satisfy 0 <= poor < good <= 100.")
    if not (0 <= model.neutral_score <= 100):
        add("neutral_score", "The neutral score must be between 0 and 100.")
    stage_rules = model.stage_rules
    if stage_rules.onboarding_max_days < 0:
        add("stages.onboarding_max_days", "Must not be negative.")
    if stage_rules.pre_renewal_days < 0:
        add("stages.pre_renewal_days", "Must not be negative.")
    for path, messages in check_rules(model.rules).items():
        errors.setdefault(path, []).extend(messages)
    return errors


def model_from_dict(data: dict[str, Any]) -> ScoringModel:
    """Build a model from the JSON form: the one reader of a config, for the API (after its schema
    checked the shape), the shipped default and every stored version.

    Raises ``ScoringConfigError`` with the collected meaning errors by field path (unknown
    measures, negative or all-zero weights, unordered thresholds or band cut-offs, inconsistent
    event rules), or one ``_schema`` error for a document of the wrong shape. A config without
    ``"rules"`` (stored before rules existed) gets the default rule catalog.
    """
    try:
        return _build_model(data)
    except ScoringConfigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ScoringConfigError({"_schema": [f"Not a scoring config: {exc!r}."]}) from exc


def _build_model(data: dict[str, Any]) -> ScoringModel:
    stages = data.get("stages", {})
    bands = data.get("bands", {})
    known_stages = {stage.value for stage in STAGES}
    unknown = [stage for stage in data["weights"] if stage not in known_stages]
    if unknown:
        raise ScoringConfigError({f"weights.{stage}": [f"Unknown stage {stage!r}."] for stage in unknown})
    weights = {LifecycleStage(stage): dict(w) for stage, w in data["weights"].items()}
    return ScoringModel(
        measures=tuple(
            Measure(
                name=m["name"],
                label=m.get("label", ""),
                group=MeasureGroup(m["group"]),
                direction=Direction(m["direction"]),
                thresholds=tuple(float(t) for t in m["thresholds"]),
            )
            for m in data["measures"]
        ),
        weights=weights,
        bands=Bands(good=float(bands.get("good", 70.0)), poor=float(bands.get("poor", 40.0))),
        stage_rules=StageRules(**stages),
        neutral_score=float(data.get("neutral_score", 50.0)),
        rules=tuple(rule_from_dict(r) for r in data.get("rules", default_rules_list())),
    )


def default_config_dict() -> dict[str, Any]:
    """The shipped default scoring config (``scoring/default_config.json``) as JSON data."""
    text = resources.files("scoring").joinpath("default_config.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    data["rules"] = default_rules_list()
    return data
