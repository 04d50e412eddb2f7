"""Why a score changed between two days: per-measure contributions, split into a data effect and
a config effect that add up to the change.

Each stored score row has its own raw values, lifecycle stage and config version. The change
``score(to) - score(from)`` is split in two steps through a middle point, the *to* day's data
scored with the *from* day's config:

- **data effect** = (to-data, from-config) - (from-data, from-config): what the data changed;
- **config effect** = (to-data, to-config) - (to-data, from-config): what the config changed.

Both are given per measure (each measure's contribution at one point minus at the other), plus
a ``neutral`` part of the config effect when the two configs have different neutral scores, so
that ``data_effect + config_effect == change`` up to float rounding. The stage of each day is
data (the stage stored with that day's score).

Conventions, so the split is defined in every case:

- A measure one config does not have contributes 0 under that config.
- A measure the *to* config dropped has no *to* value; the middle point assumes its data did not
  change (uses its *from* value), so dropping it shows as a config effect, not a data effect.
- A point where no measure the stage weighs has data has no score; it counts as the config's
  neutral score with every contribution 0 (this can only happen at the middle point: the two
  stored rows have scores).

Pure numpy, float64 throughout (the stored drivers are float32 and would not sum exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scoring.measures import score_measure
from scoring.model import ScoringModel
from scoring.stage import STAGES


@dataclass(frozen=True, slots=True)
class Point:
    """One scored state: the score, and per measure name its 0-100 score and contribution.

    Measures without data (or without weight in the stage) contribute 0; ``measure_scores`` is
    ``None`` where a measure has no data.
    """

    score: float
    neutral: float
    measure_scores: dict[str, float | None]
    contributions: dict[str, float]
    has_score: bool


@dataclass(frozen=True, slots=True)
class MeasureAttribution:
    measure: str
    label: str
    from_value: float | None
    to_value: float | None
    from_score: float | None  # the measure's 0-100 score on the from day (from-config)
    to_score: float | None  # on the to day (to-config)
    from_contribution: float  # points relative to the neutral score; 0 without data
    to_contribution: float
    data_effect: float
    config_effect: float

    @property
    def total(self) -> float:
        return self.data_effect + self.config_effect


@dataclass(frozen=True, slots=True)
class Attribution:
    from_score: float
    to_score: float
    change: float
    data_effect: float
    config_effect: float  # includes ``neutral_effect``
    neutral_effect: float  # the change of the neutral score between the two configs
    measures: tuple[MeasureAttribution, ...]


def score_point(values: dict[str, float | None], stage_code: int, model: ScoringModel) -> Point:
    """Score one account from raw values by measure name under ``model`` (float64).

    Names the model does not have are ignored; model measures missing from ``values`` have no
    data. The same formula as ``scoring.health.compute_health``: the weighted mean of the
    measure scores with data, contributions ``w / W * (s - neutral)``.
    Raises ``ValueError`` for a stage code out of range.
    """
    if not 0 <= stage_code < len(STAGES):
        raise ValueError(f"stage code must be in 0..{len(STAGES) - 1}")
    names = model.measure_names
    raw = np.array([_nan(values.get(name)) for name in names], dtype=np.float64)
    scores = np.full(len(names), np.nan, dtype=np.float64)
    for j, measure in enumerate(model.measures):
        thresholds = np.asarray(measure.thresholds, dtype=np.float64)
        scores[j] = score_measure(raw[j : j + 1], thresholds, measure.direction)[0]
    has_data = ~np.isnan(scores)
    weights = model.weight_matrix[stage_code] * has_data
    total = float(weights.sum())
    neutral = float(model.neutral_score)
    if total > 0:
        shares = weights / total
        contributions = np.where(has_data, scores - neutral, 0.0) * shares
        score = float(np.dot(np.where(has_data, scores, 0.0), shares))
    else:
        contributions = np.zeros(len(names), dtype=np.float64)
        score = neutral
    return Point(
        score=score,
        neutral=neutral,
        measure_scores={n: (None if np.isnan(s) else float(s)) for n, s in zip(names, scores, strict=True)},
        contributions={n: float(c) for n, c in zip(names, contributions, strict=True)},
        has_score=total > 0,
    )


@dataclass(frozen=True, slots=True)
class ScoredDay:
    """One stored score's inputs: raw values in ``model``'s measure order, the stage code, the model."""

    values: Sequence[float | None]
    stage: int
    model: ScoringModel


def attribute(start_day: ScoredDay, end_day: ScoredDay) -> Attribution:
    """Explain ``score(end_day) - score(start_day)``.

    Measures are listed in the from-config's order, then those only the to-config has.
    Raises ``ValueError`` when a values list does not match its model.
    """
    for day, which in ((start_day, "from"), (end_day, "to")):
        if len(day.values) != len(day.model.measures):
            raise ValueError(f"{len(day.values)} {which} values for a model of {len(day.model.measures)} measures")
    from_model, to_model = start_day.model, end_day.model
    from_stage, to_stage = start_day.stage, end_day.stage
    from_values, to_values = start_day.values, end_day.values
    from_by_name = dict(zip(from_model.measure_names, from_values, strict=True))
    to_by_name = dict(zip(to_model.measure_names, to_values, strict=True))
    # The middle point: to-data under the from-config; a measure the to-config dropped keeps its from value.
    middle_values = {name: to_by_name.get(name, from_by_name.get(name)) for name in from_model.measure_names}
    start = score_point(from_by_name, from_stage, from_model)
    middle = score_point(middle_values, to_stage, from_model)
    end = score_point(to_by_name, to_stage, to_model)

    labels = {m.name: m.label or m.name for m in to_model.measures}
    labels.update({m.name: m.label or m.name for m in from_model.measures})
    names = list(from_model.measure_names) + [n for n in to_model.measure_names if n not in from_by_name]
    measures = []
    for name in names:
        c_from = start.contributions.get(name, 0.0)
        c_middle = middle.contributions.get(name, 0.0)
        c_to = end.contributions.get(name, 0.0)
        measures.append(
            MeasureAttribution(
                measure=name,
                label=labels[name],
                from_value=from_by_name.get(name),
                to_value=to_by_name.get(name),
                from_score=start.measure_scores.get(name),
                to_score=end.measure_scores.get(name),
                from_contribution=c_from,
                to_contribution=c_to,
                data_effect=c_middle - c_from,
                config_effect=c_to - c_middle,
            )
        )
    neutral_effect = end.neutral - start.neutral
    data_effect = float(sum(m.data_effect for m in measures))
    config_effect = float(sum(m.config_effect for m in measures)) + neutral_effect
    return Attribution(
        from_score=start.score,
        to_score=end.score,
        change=end.score - start.score,
        data_effect=data_effect,
        config_effect=config_effect,
        neutral_effect=neutral_effect,
        measures=tuple(measures),
    )


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)
