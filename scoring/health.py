"""The weighted health score, its completeness, band and drivers, over arrays of accounts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.bands import BANDS, NO_BAND, Band
from scoring.measures import score_measure
from scoring.model import ScoringModel
from scoring.stage import STAGES

__all__ = ["BANDS", "BLOCK_ROWS", "NO_BAND", "Band", "HealthResult", "band_codes", "compute_health"]

#: Accounts scored per block: keeps temporaries in cache and peak memory flat at any portfolio size.
BLOCK_ROWS = 65_536


@dataclass(frozen=True, slots=True)
class HealthResult:
    """Scores for ``n`` accounts over the model's ``m`` measures (measure-major arrays).

    ``score``: (n,) 0-100, NaN where no measure the stage weighs has data.
    ``completeness``: (n,) 0-1, the share of the stage's weight backed by data.
    ``band``: (n,) int8 codes into ``BANDS``, ``NO_BAND`` where there is no score.
    ``measure_scores``: (m, n) float32, each measure's 0-100 score, NaN without data.
    ``contributions``: (m, n) float32 drivers: each measure's signed contribution in points
    relative to the neutral score, so ``score == neutral + nansum(contributions, axis=0)``.
    NaN where the measure has no data; 0 where the stage gives it no weight.
    ``model``: the model as it scored this portfolio: percentile mappings resolved to the day's
    points and calibrated bands to the day's cut-offs (the given model when it has neither), so
    one account can later be explained the way the portfolio was scored.
    """

    score: np.ndarray
    completeness: np.ndarray
    band: np.ndarray
    measure_scores: np.ndarray
    contributions: np.ndarray
    model: ScoringModel


def band_codes(score: np.ndarray, good: float, poor: float) -> np.ndarray:
    """Band code per score: good at ``>= good``, poor below ``poor``, ``NO_BAND`` for NaN."""
    codes = np.full(score.shape, 1, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        codes[score >= good] = 0
        codes[score < poor] = 2
    codes[np.isnan(score)] = NO_BAND
    return codes


def compute_health(raw: np.ndarray, stage: np.ndarray, model: ScoringModel) -> HealthResult:
    """Score accounts from their raw measure values.

    ``raw`` is (m, n) float64, one row per measure in the order of ``model.measures`` and one
    column per account, NaN where there is no data; ``stage`` is (n,) stage codes (see
    ``scoring.stage.STAGES``). Pure and vectorized: each step is an array operation over a
    block of accounts; the only Python loops are over blocks and over the model's measures.
    Raises ``ValueError`` when the shapes do not match the model or a stage code is out of range.
    """
    if raw.ndim != 2:
        raise ValueError(f"raw must be 2-D (measures, accounts), got {raw.ndim}-D")
    m, n = raw.shape
    if m != len(model.measures):
        raise ValueError(f"raw has {m} measure rows, the model has {len(model.measures)}")
    if stage.shape != (n,):
        raise ValueError("stage must have one entry per account")
    # ``take`` below would silently read a negative code from the end (-1 as pre-renewal).
    if n and (stage.min() < 0 or stage.max() >= len(STAGES)):
        raise ValueError(f"stage codes must be in 0..{len(STAGES) - 1}")
    model = model.with_measures({m.name: raw[j] for j, m in enumerate(model.measures)})
    score = np.empty(n, dtype=np.float64)
    completeness = np.empty(n, dtype=np.float64)
    measure_scores = np.empty((m, n), dtype=np.float32)
    contributions = np.empty((m, n), dtype=np.float32)
    thresholds = [np.asarray(measure.thresholds, dtype=np.float64) for measure in model.measures]
    # weight_by_measure[j][code]: measure j's normalized weight in stage `code`.
    weight_by_measure = np.ascontiguousarray(model.weight_matrix.T)
    for start in range(0, n, BLOCK_ROWS):
        block = slice(start, min(start + BLOCK_ROWS, n))
        block_stage = stage[block]
        total = np.zeros(block.stop - start, dtype=np.float64)
        weighted = np.zeros_like(total)
        scores = []
        weights = []
        for j, measure in enumerate(model.measures):
            s = score_measure(raw[j, block], thresholds[j], measure.direction)
            has_data = ~np.isnan(s)
            w = weight_by_measure[j].take(block_stage)
            w *= has_data
            total += w
            weighted += np.where(has_data, s, 0.0) * w
            scores.append(s)
            weights.append(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            block_score = weighted / total  # NaN where no weighted measure has data
            inverse_total = np.where(total > 0, 1.0 / total, 0.0)
        # Rounding can land an ulp outside the bounds (100.00000000000001, completeness
        # 1.0000000000000002); clamp so 0-100 and 0-1 hold exactly. NaN passes through.
        score[block] = np.clip(block_score, 0.0, 100.0)
        completeness[block] = np.minimum(total, 1.0)
        for j, (s, w) in enumerate(zip(scores, weights, strict=True)):
            measure_scores[j, block] = s
            # (s - neutral) * w / total: NaN where s has no data, 0 where the stage has no weight.
            contribution = s - model.neutral_score
            contribution *= w
            contribution *= inverse_total
            contributions[j, block] = contribution
    model = model.with_bands(model.bands.resolve(score))
    band = band_codes(score, model.bands.good, model.bands.poor)
    return HealthResult(score, completeness, band, measure_scores, contributions, model)
