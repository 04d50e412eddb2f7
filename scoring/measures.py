"""The catalog of measures the service can compute, and mapping raw values to 0-100."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class MeasureGroup(StrEnum):
    OUTCOMES = "outcomes"
    ADOPTION = "adoption"
    LICENSE = "license"
    SUPPORT = "support"
    FEEDBACK = "feedback"


@dataclass(frozen=True, slots=True)
class MeasureDefinition:
    """A raw value the metrics step knows how to compute from the raw tables, with its unit."""

    name: str
    unit: str
    description: str


#: Every raw measure the scoring run computes (``app/pipeline/measures.py``), whatever the config
#: uses. A scoring config may only name these.
MEASURE_CATALOG: dict[str, MeasureDefinition] = {
    m.name: m
    for m in (
        MeasureDefinition(
            "goals_achieved_ratio",
            "ratio 0-1",
            "Success-plan goals achieved out of those achieved, missed or due by the date.",
        ),
        MeasureDefinition(
            "active_user_ratio",
            "ratio",
            "Average daily active users over the last 30 days divided by seats purchased.",
        ),
        MeasureDefinition(
            "usage_trend_pct",
            "percent",
            "Change in active-user days, last 30 days against the 30 days before (percent).",
        ),
        MeasureDefinition(
            "key_feature_adoption_ratio",
            "ratio",
            "Key-feature uses per login over the last 30 days.",
        ),
        MeasureDefinition(
            "days_since_last_login",
            "days",
            "Days since the last day with a login (61 when none in the last 60 days).",
        ),
        MeasureDefinition(
            "license_utilization_ratio",
            "ratio 0-1",
            "Active seats divided by purchased seats, latest license snapshot.",
        ),
        MeasureDefinition(
            "open_ticket_load",
            "weighted tickets",
            "Open support tickets weighted by priority (urgent 4, high 2, normal 1, low 0.5).",
        ),
        MeasureDefinition(
            "sla_breaches_90d",
            "tickets",
            "Tickets opened in the last 90 days that breached their SLA.",
        ),
        MeasureDefinition(
            "nps",
            "NPS -100..100",
            "Net promoter score of the account's responses in the last 180 days.",
        ),
        MeasureDefinition(
            "csat_avg",
            "CSAT 1-5",
            "Average CSAT rating in the last 180 days.",
        ),
        MeasureDefinition(
            "csm_sentiment",
            "sentiment 1-5",
            "The CSM's latest sentiment rating in the last 180 days.",
        ),
    )
}


def score_measure(raw: np.ndarray, thresholds: np.ndarray, direction: Direction) -> np.ndarray:
    """Map raw values to 0-100 by linear interpolation between ascending ``thresholds``.

    The thresholds get evenly spaced scores: 0 for the first and 100 for the last when higher
    is better, the reverse when lower is better; values outside are clamped, +-inf included.
    NaN (no data) stays NaN. Written as a sum of clamped segments rather than ``np.interp``:
    the same values, about twice as fast, and NaN propagates through ``minimum``/``maximum``.
    """
    segments = thresholds.size - 1
    step = 100.0 / segments
    out = np.zeros(raw.shape, dtype=np.float64)
    tmp = np.empty(raw.shape, dtype=np.float64)
    # A huge finite raw value may overflow to +-inf on the way; the clamp makes that harmless.
    with np.errstate(over="ignore"):
        for i in range(segments):
            np.subtract(raw, thresholds[i], out=tmp)
            tmp *= step / (thresholds[i + 1] - thresholds[i])
            np.minimum(tmp, step, out=tmp)
            np.maximum(tmp, 0.0, out=tmp)
            out += tmp
    if direction == Direction.LOWER_IS_BETTER:  # equality: a plain string works too
        np.subtract(100.0, out, out=out)
    return out
