"""Previewing a scoring config: rescoring stored measure values, band moves, and a backtest on outcomes.

Stored score rows keep the raw measure values in the order of *their* config version's measures
(``health_scores.measure_values``), so any config can rescore them without touching the raw
tables: align each version's values to the target model's measures by name (a measure the row
lacks is NaN, no data) and run ``compute_health``. The stage is the one stored with the row.

Pure: numpy and scikit-learn in, plain data out; the database reads live in
``app/services/scoring_config/versions.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scoring.bands import BANDS, NO_BAND, Band
from scoring.health import compute_health
from scoring.model import ScoringModel
from scoring.stage import STAGES

#: Band names by code, with ``None`` for ``NO_BAND`` (-1, the last entry).
BAND_LABELS: tuple[str | None, ...] = (*(band.value for band in BANDS), None)
POOR = BANDS.index(Band.POOR)


@dataclass(frozen=True, slots=True)
class ValueBlock:
    """Stored rows of one config version: ``values`` is (m, k) in ``names`` order, NaN for no data;
    ``stage`` is (k,) stage codes; ``rows`` is (k,) the positions of these rows in the output."""

    names: tuple[str, ...]
    values: np.ndarray
    stage: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True, slots=True)
class Rescored:
    """Scores (NaN: no weighted measure has data) and band codes (``NO_BAND`` then) per row."""

    score: np.ndarray
    band: np.ndarray


def align_values(values: np.ndarray, names: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """Rows of ``values`` (one per name in ``names``) reordered to ``target``; NaN for a target
    measure ``names`` lacks. Names in ``names`` that ``target`` lacks are dropped."""
    if values.ndim != 2 or values.shape[0] != len(names):
        raise ValueError(f"values must be ({len(names)}, k), got {values.shape}")
    out = np.full((len(target), values.shape[1]), np.nan, dtype=np.float64)
    position = {name: i for i, name in enumerate(names)}
    for j, name in enumerate(target):
        i = position.get(name)
        if i is not None:
            out[j] = values[i]
    return out


def rescore(blocks: Sequence[ValueBlock], n: int, model: ScoringModel) -> Rescored:
    """Score ``n`` rows, given as blocks of stored values by config version, with ``model``.

    Each block is aligned to the model's measures and scored in one ``compute_health`` call.
    Rows no block covers get NaN and ``NO_BAND``.
    """
    score = np.full(n, np.nan, dtype=np.float64)
    band = np.full(n, NO_BAND, dtype=np.int8)
    target = model.measure_names
    for block in blocks:
        if block.rows.size == 0:
            continue
        raw = align_values(block.values, block.names, target)
        result = compute_health(raw, block.stage, model)
        score[block.rows] = result.score
        band[block.rows] = result.band
    return Rescored(score, band)


# --- band changes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BandMove:
    stage: str
    band_from: str | None
    band_to: str | None
    accounts: int


def band_moves(stage: np.ndarray, band_from: np.ndarray, band_to: np.ndarray) -> list[BandMove]:
    """Counts of rows per (stage, from band, to band) where the band changes (``None``: no score).

    One ``bincount`` over a combined code; ordered by stage, then from band, then to band.
    """
    bands = len(BANDS) + 1  # the last slot stands for NO_BAND
    f = np.where(band_from == NO_BAND, len(BANDS), band_from).astype(np.int64)
    t = np.where(band_to == NO_BAND, len(BANDS), band_to).astype(np.int64)
    changed = f != t
    code = (stage[changed].astype(np.int64) * bands + f[changed]) * bands + t[changed]
    counts = np.bincount(code, minlength=len(STAGES) * bands * bands)
    moves = []
    for flat in np.flatnonzero(counts):
        s, rest = divmod(int(flat), bands * bands)
        a, b = divmod(rest, bands)
        moves.append(BandMove(STAGES[s].value, BAND_LABELS[a], BAND_LABELS[b], int(counts[flat])))
    return moves


def largest_changes(score_from: np.ndarray, score_to: np.ndarray, changed: np.ndarray, limit: int) -> np.ndarray:
    """Indexes of the ``changed`` rows, largest absolute score change first (NaN sides count as
    the largest change), at most ``limit`` of them; ties by index."""
    index = np.flatnonzero(changed)
    delta = np.abs(score_to[index] - score_from[index])
    delta = np.where(np.isnan(delta), np.inf, delta)
    order = np.lexsort((index, -delta))
    return index[order[:limit]]


# --- the backtest ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BacktestMetrics:
    """How well one config's scores at the horizon foretold churn.

    ``auc``: ROC AUC of ``100 - score`` against churn (1: every churned account scored below
    every renewed one; 0.5: no better than chance); ``None`` with ``auc_note`` saying why.
    ``churned_in_poor_share``: churned outcomes whose account was in the poor band at the horizon.
    ``renewed_in_poor_share``: the same for renewals (the false alarms).
    """

    auc: float | None
    auc_note: str | None
    churned_in_poor_share: float | None
    renewed_in_poor_share: float | None
    mean_score_churned: float | None
    mean_score_renewed: float | None


def churn_auc(score: np.ndarray, churned: np.ndarray) -> tuple[float | None, str | None]:
    """ROC AUC of ``100 - score`` against ``churned`` (scores without NaN), or None and the reason."""
    if score.size == 0:
        return None, "No outcome has a score at the horizon."
    positives = int(np.count_nonzero(churned))
    if positives == 0:
        return None, "Only renewals among the outcomes used: AUC needs churned accounts too."
    if positives == score.size:
        return None, "Only churns among the outcomes used: AUC needs renewed accounts too."
    # Imported here: scikit-learn brings scipy, two seconds of start-up for every process that
    # imports the config service (the web app, the CLI), and only a backtest needs it.
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(churned.astype(np.int8), 100.0 - score)), None


def _share(mask: np.ndarray, of: np.ndarray) -> float | None:
    total = int(np.count_nonzero(of))
    return None if total == 0 else round(int(np.count_nonzero(mask & of)) / total, 6)


def _mean(values: np.ndarray) -> float | None:
    return None if values.size == 0 else round(float(values.mean()), 4)


def backtest_metrics(score: np.ndarray, band: np.ndarray, churned: np.ndarray) -> BacktestMetrics:
    """Metrics of one config over outcomes that all have a score (no NaN in ``score``)."""
    if np.isnan(score).any():
        raise ValueError("backtest_metrics takes scored rows only")
    auc, note = churn_auc(score, churned)
    poor = band == POOR
    return BacktestMetrics(
        auc=None if auc is None else round(auc, 6),
        auc_note=note,
        churned_in_poor_share=_share(poor, churned),
        renewed_in_poor_share=_share(poor, ~churned),
        mean_score_churned=_mean(score[churned]),
        mean_score_renewed=_mean(score[~churned]),
    )
