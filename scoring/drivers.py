"""Explaining one stored score: each measure's raw value, 0-100 score, weight share and contribution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.health import compute_health
from scoring.measures import Direction, MeasureGroup
from scoring.model import ScoringModel


@dataclass(frozen=True, slots=True)
class Driver:
    """One measure's part in a score. ``contribution`` is in points relative to the neutral score."""

    measure: str
    label: str
    group: MeasureGroup
    direction: Direction
    raw_value: float | None
    score: float | None
    weight: float  # the measure's share of the weight that has data (0-1)
    contribution: float | None


def explain(values: list[float | None], stage_code: int, model: ScoringModel) -> list[Driver]:
    """Drivers of one account's score from its raw ``values`` (in the model's measure order).

    Sorted from the most negative contribution to the most positive; measures without data come
    last with ``None`` score and contribution. Raises ``ValueError`` if ``values`` does not
    match the model's measures.
    """
    if len(values) != len(model.measures):
        raise ValueError(f"{len(values)} values for a model of {len(model.measures)} measures")
    raw = np.array([[np.nan if v is None else v] for v in values], dtype=np.float64)
    result = compute_health(raw, np.array([stage_code], dtype=np.int8), model)
    weights = model.weight_matrix[stage_code] * ~np.isnan(result.measure_scores[:, 0])
    total = weights.sum()
    drivers = []
    for j, measure in enumerate(model.measures):
        score = float(result.measure_scores[j, 0])
        contribution = float(result.contributions[j, 0])
        drivers.append(
            Driver(
                measure=measure.name,
                label=measure.label or measure.name,
                group=measure.group,
                direction=measure.direction,
                raw_value=values[j],
                score=None if np.isnan(score) else round(score, 2),
                weight=round(float(weights[j] / total), 4) if total > 0 else 0.0,
                contribution=None if np.isnan(contribution) else round(contribution, 2),
            )
        )
    return sorted(drivers, key=lambda d: (d.contribution is None, d.contribution or 0.0))
