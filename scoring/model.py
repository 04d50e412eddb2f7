"""The health model (a scoring config): measures, thresholds, per-stage weights and band cut-offs."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import numpy as np

from scoring.measures import (
    LEGACY_DEFINITIONS,
    MAX_THRESHOLD,
    MIN_THRESHOLD_GAP,
    Mapping01,
    Measure,
    check_measures,
    measure_from_dict,
    resolve_percentiles,
)
from scoring.rules import Rule, check_rules, default_rules_list, rule_from_dict
from scoring.stage import STAGES, LifecycleStage, StageRules, check_stage_rules, stage_rules_from_dict

__all__ = ["MAX_THRESHOLD", "MAX_WEIGHT", "MIN_THRESHOLD_GAP", "Bands", "Measure", "ScoringConfigError", "ScoringModel"]

#: Weights are relative; a bound keeps sums and products finite whatever the config.
MAX_WEIGHT = 1e6


class ScoringConfigError(ValueError):
    """A scoring config that breaks an invariant; ``errors`` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid scoring config: " + json.dumps(errors, sort_keys=True))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Bands:
    """Score cut-offs: ``score >= good`` is good, ``score < poor`` is poor, average between.

    With ``good_share`` and ``poor_share`` (0-1) the cut-offs are calibrated each scored day
    instead: the best ``good_share`` of the portfolio's scores are good and the worst
    ``poor_share`` poor (``good``/``poor`` are then the day's resolved cut-offs)."""

    good: float = 70.0
    poor: float = 40.0
    good_share: float | None = None
    poor_share: float | None = None

    @property
    def calibrated(self) -> bool:
        return self.good_share is not None

    def resolve(self, score: np.ndarray) -> Bands:
        """The day's fixed cut-offs for ``score`` (self when fixed, or when nothing has a score):
        at most ``poor_share`` of the scores lie below ``poor`` and at most ``good_share`` at or
        above ``good``; ties at a cut-off fall on the average side, so no band exceeds its share."""
        if not self.calibrated:
            return self
        ordered = np.sort(score[~np.isnan(score)])
        n = ordered.size
        if n == 0:
            return self
        assert self.good_share is not None and self.poor_share is not None
        k_poor = int(np.floor(self.poor_share * n + 1e-9))
        k_good = int(np.floor(self.good_share * n + 1e-9))
        poor = float(ordered[k_poor]) if k_poor < n else float(np.nextafter(ordered[-1], np.inf))
        good = float(np.nextafter(ordered[n - k_good - 1], np.inf)) if k_good < n else float(ordered[0])
        return Bands(good=good, poor=min(poor, good))

    def to_dict(self) -> dict[str, float]:
        if self.calibrated:
            return {"good_share": float(self.good_share or 0.0), "poor_share": float(self.poor_share or 0.0)}
        return {"good": self.good, "poor": self.poor}


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
            row = np.array([float(self.weights.get(stage, {}).get(n, 0.0)) for n in names], dtype=np.float64)
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

    @property
    def portfolio_dependent(self) -> bool:
        """Whether a score depends on the day's portfolio (percentile mapping, calibrated bands)."""
        return self.bands.calibrated or any(m.mapping is Mapping01.PERCENTILE for m in self.measures)

    def with_measures(self, raw: dict[str, np.ndarray]) -> ScoringModel:
        """This model with its percentile mappings resolved to the day's points (self when none)."""
        if not any(m.mapping is Mapping01.PERCENTILE for m in self.measures):
            return self
        return self._derive(measures=resolve_percentiles(self.measures, raw))

    def with_unweighted(self, extra: tuple[Measure, ...]) -> ScoringModel:
        """This model with ``extra`` measures added at weight 0 in every stage: one measure pass
        computes them beside the weighted ones (measure discovery's candidates, a churn model's
        own measures), and the score is the same."""
        if not extra:
            return self
        weights = {stage: {**w, **{m.name: 0.0 for m in extra}} for stage, w in self.weights.items()}
        return replace(self, measures=(*self.measures, *extra), weights=weights)

    def with_bands(self, bands: Bands) -> ScoringModel:
        return self if bands == self.bands else self._derive(bands=bands)

    def _derive(self, **changes: Any) -> ScoringModel:
        """This model with resolved parts (the day's points or cut-offs; same measure names, so the
        weight matrix holds). Not re-checked as a config: a day's cut-offs may meet (every score
        equal), which no config may say but a calibrated day may be."""
        derived = copy.copy(self)
        for key, value in changes.items():
            object.__setattr__(derived, key, value)
        return derived

    def calibration(self, resolved: ScoringModel) -> dict[str, Any] | None:
        """What ``resolved`` (this model as it scored one day's portfolio) fixed: the percentile
        measures' points and the band cut-offs (None when this model does not depend on the day)."""
        if not self.portfolio_dependent:
            return None
        points = {
            m.name: list(r.thresholds)
            for m, r in zip(self.measures, resolved.measures, strict=True)
            if m.mapping is Mapping01.PERCENTILE
        }
        return {"thresholds": points, "bands": {"good": resolved.bands.good, "poor": resolved.bands.poor}}

    def calibrated(self, calibration: Mapping[str, Any] | None) -> ScoringModel:
        """This model as it scored the day ``calibration`` was stored for (self without one)."""
        if not calibration or not self.portfolio_dependent:
            return self
        points = calibration.get("thresholds", {})
        measures = tuple(
            replace(m, thresholds=tuple(points[m.name]), mapping=Mapping01.THRESHOLDS) if m.name in points else m
            for m in self.measures
        )
        cut = calibration.get("bands") or {}
        bands = Bands(good=float(cut["good"]), poor=float(cut["poor"])) if self.bands.calibrated and cut else self.bands
        return self._derive(measures=measures, bands=bands)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of this model, as stored in a scoring-config version."""
        return {
            "stages": self.stage_rules.to_dict(),
            "bands": self.bands.to_dict(),
            "neutral_score": self.neutral_score,
            "measures": [m.to_dict() for m in self.measures],
            "weights": {stage.value: dict(self.weights.get(stage, {})) for stage in STAGES},
            "rules": [rule.to_dict() for rule in self.rules],
        }


def check_model(model: ScoringModel) -> dict[str, list[str]]:
    """Return the meaning errors of a model keyed by field path (empty when it is valid)."""
    errors: dict[str, list[str]] = dict(check_measures(model.measures))

    def add(path: str, message: str) -> None:
        errors.setdefault(path, []).append(message)

    seen = {m.name for m in model.measures}
    for stage in STAGES:
        stage_weights = model.weights.get(stage, {})
        for name, weight in stage_weights.items():
            if name not in seen:
                add(f"weights.{stage.value}.{name}", f"Weight for a measure that is not defined: {name!r}.")
            if not np.isfinite(weight):
                add(f"weights.{stage.value}.{name}", "Weights must be finite numbers.")
            elif weight < 0:
                add(f"weights.{stage.value}.{name}", "Weights must not be negative.")
            elif weight > MAX_WEIGHT:
                add(f"weights.{stage.value}.{name}", f"Weights are relative: at most {MAX_WEIGHT:g}.")
        if sum(w for w in stage_weights.values() if np.isfinite(w) and 0 < w <= MAX_WEIGHT) <= 0:
            add(f"weights.{stage.value}", "At least one weight in each stage must be positive.")
    for stage in model.weights:
        if stage not in STAGES:
            add(f"weights.{stage}", f"Unknown stage {stage!r}.")
    _check_bands(model.bands, add)
    if not (0 <= model.neutral_score <= 100):
        add("neutral_score", "The neutral score must be between 0 and 100.")
    for path, messages in check_stage_rules(model.stage_rules).items():
        errors.setdefault(path, []).extend(messages)
    for path, messages in check_rules(model.rules, measure_names=seen).items():
        errors.setdefault(path, []).extend(messages)
    return errors


def _check_bands(b: Bands, add: Any) -> None:
    if b.calibrated or b.poor_share is not None:
        good, poor = b.good_share, b.poor_share
        if good is None or poor is None:
            add("bands", "Give both good_share and poor_share.")
        elif not (0 <= good < 1 and 0 <= poor < 1 and good + poor < 1):
            add("bands", "Shares lie in 0-1 and good_share + poor_share stays below 1.")
    elif not (0 <= b.poor < b.good <= 100):
        add("bands", "Band cut-offs must satisfy 0 <= poor < good <= 100.")


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
    weights = {LifecycleStage(stage): {k: float(v) for k, v in w.items()} for stage, w in data["weights"].items()}
    rules = tuple(rule_from_dict(r) for r in data.get("rules", default_rules_list()))
    return ScoringModel(
        measures=tuple(measure_from_dict(m) for m in _with_rule_measures(data["measures"], rules)),
        weights=weights,
        bands=_bands_from_dict(bands),
        stage_rules=stage_rules_from_dict(stages),
        neutral_score=float(data.get("neutral_score", 50.0)),
        rules=rules,
    )


def _with_rule_measures(measures: list[dict[str, Any]], rules: tuple[Rule, ...]) -> list[dict[str, Any]]:
    """A config stored before the measure language (every measure a name alone) let its threshold
    rules read any of the old measures, weighted or not: those the rules read are added, with their
    old definitions and no weight, so the config reads forward unchanged. A config in the language
    names every measure it reads."""
    if not measures or any("source" in m or "ratio" in m for m in measures):
        return measures
    have = {m.get("name") for m in measures}
    wanted = sorted({r.value for r in rules if r.value in LEGACY_DEFINITIONS and r.value not in have})
    if not wanted:
        return measures
    defaults = {m["name"]: m for m in json.loads(_default_text())["measures"]}
    return [*measures, *(defaults[name] for name in wanted)]


def _bands_from_dict(bands: dict[str, Any]) -> Bands:
    if "good_share" in bands or "poor_share" in bands:
        good, poor = bands.get("good_share"), bands.get("poor_share")
        return Bands(good_share=None if good is None else float(good), poor_share=None if poor is None else float(poor))
    return Bands(good=float(bands.get("good", 70.0)), poor=float(bands.get("poor", 40.0)))


@functools.cache
def _default_text() -> str:
    """The shipped default config's text, read once (old configs read forward from it)."""
    return resources.files("scoring").joinpath("default_config.json").read_text(encoding="utf-8")


def default_config_dict() -> dict[str, Any]:
    """The shipped default scoring config (``scoring/default_config.json``) as JSON data."""
    data: dict[str, Any] = json.loads(_default_text())
    data["rules"] = default_rules_list()
    return data


# --- a new version from the active one: a JSON merge patch -------------------------------------------

#: Lists of a config that a patch may also give as an object keyed by this field, merged per item.
KEYED_LISTS = {"measures": "name", "rules": "id"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` removes a key, anything else
    (arrays included) replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def patch_config(config: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``config`` (JSON form) with ``patch`` applied as a merge patch, where ``measures`` and
    ``rules`` may also be objects keyed by measure name / rule id: each entry merges into the item
    of that key (``null`` removes it; a new key adds an item at the end), so one measure or rule
    changes without re-sending the others. An array replaces the whole list, as RFC 7386 says."""
    keyed = {key: patch[key] for key in KEYED_LISTS if isinstance(patch.get(key), dict)}
    out: dict[str, Any] = merge_patch(config, {k: v for k, v in patch.items() if k not in keyed})
    for key, changes in keyed.items():
        id_field = KEYED_LISTS[key]
        items = [dict(item) for item in out.get(key, [])]
        position = {item.get(id_field): i for i, item in enumerate(items)}
        removed: set[int] = set()
        for item_id, change in changes.items():
            if change is None:
                if item_id in position:
                    removed.add(position[item_id])
            elif item_id in position:
                items[position[item_id]] = merge_patch(items[position[item_id]], change)
            else:
                items.append({**merge_patch({}, change), id_field: item_id})
                position[item_id] = len(items) - 1
        out[key] = [item for i, item in enumerate(items) if i not in removed]
    return out
