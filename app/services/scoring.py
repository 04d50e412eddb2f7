"""The scoring run: measures by SQL, one vectorized scoring pass, history and latest scores written in bulk."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import HealthScore, LatestScore
from app.services.bulk import bulk_insert
from app.services.metrics import compute_measures, scatter
from app.services.scoring_config import get_active_model
from scoring.health import BANDS, NO_BAND, compute_health
from scoring.stage import STAGES, assign_stages

#: Steps reported to a progress callback, in order.
STEPS = ("measures", "score", "history", "latest")

ProgressCallback = Callable[[str], None]

_STAGE_NAMES = np.array([stage.value for stage in STAGES], dtype=object)
_BAND_NAMES = np.array([band.value for band in BANDS] + [None], dtype=object)  # NO_BAND (-1) -> None
_json_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


@dataclass(frozen=True, slots=True)
class ScoringRunSummary:
    as_of: dt.date
    config_version: int
    accounts_scored: int
    accounts_without_score: int
    by_band: dict[str, int]
    by_stage: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, object]:
        return {
            "accounts_scored": self.accounts_scored,
            "accounts_without_score": self.accounts_without_score,
            "by_band": self.by_band,
            "by_stage": self.by_stage,
            "config_version": self.config_version,
            "seconds": self.seconds,
        }

    def one_line(self) -> str:
        bands = ", ".join(f"{band} {count}" for band, count in self.by_band.items())
        return (
            f"Scored {self.accounts_scored} accounts as of {self.as_of.isoformat()} with config "
            f"v{self.config_version} ({bands}; {self.accounts_without_score} without data) "
            f"in {sum(self.seconds.values()):.2f}s"
        )


def _nullable(values: np.ndarray) -> list[object]:
    """Float array to a list with None for NaN (what the drivers bind as NULL)."""
    out = values.astype(object)
    out[np.isnan(values)] = None
    return out.tolist()  # type: ignore[no-any-return]


def _previous_scores(session: Session, day: dt.date, ids: np.ndarray) -> np.ndarray:
    """Each account's score on ``day`` (NaN where none), aligned with ``ids`` (ascending)."""
    rows = (
        session.connection()
        .execute(sa.select(HealthScore.account_id, HealthScore.score).where(HealthScore.day == day))
        .all()
    )
    found = np.array([tuple(row) for row in rows], dtype=np.float64).reshape(len(rows), 2)
    return scatter(ids, found[:, 0].astype(np.int64), found[:, 1])


def run_scoring(session: Session, *, as_of: dt.date, progress: ProgressCallback | None = None) -> ScoringRunSummary:
    """Score every account that is not churned as of ``as_of`` with the active config.

    Writes one history row per account for the day (replacing that day's rows, so a re-run
    never duplicates) and refreshes the latest score of accounts whose latest is not newer
    than ``as_of``. A fixed number of queries whatever the portfolio size. Never commits.
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def done(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 4)
        clock = now
        if progress is not None:
            progress(step)

    version, model = get_active_model(session)
    portfolio = compute_measures(session, as_of=as_of, first_value_signal=model.stage_rules.first_value_signal)
    done("measures")

    stage = assign_stages(
        as_of, portfolio.contract_start, portfolio.renewal_date, portfolio.first_value_on, model.stage_rules
    )
    raw = portfolio.matrix(model.measure_names)
    result = compute_health(raw, stage, model)
    ids = portfolio.account_id
    stage_names = _STAGE_NAMES[stage].tolist()
    band_names = _BAND_NAMES[result.band].tolist()
    scores = _nullable(np.round(result.score, 4))
    completeness = np.round(result.completeness, 6).tolist()
    values = np.round(raw, 6).T.astype(object)
    values[np.isnan(raw.T)] = None
    measure_json = list(map(_json_encode, values.tolist()))
    id_list = ids.tolist()
    done("score")

    session.execute(sa.delete(HealthScore).where(HealthScore.day == as_of))
    history_columns = (
        "account_id", "day", "config_version", "stage", "score", "band", "completeness", "measure_values",
    )  # fmt: skip
    history_values = (
        id_list, [as_of] * ids.size, [version] * ids.size, stage_names, scores, band_names, completeness, measure_json,
    )  # fmt: skip
    bulk_insert(session, HealthScore.__table__, history_columns, zip(*history_values, strict=True))  # type: ignore[arg-type]
    done("history")

    # Latest: drop the rows this run supersedes (and those of accounts no longer scored), keep
    # newer ones, and bulk-load this run's rows. (An INSERT ... SELECT from history joined to
    # itself was tried: on a history table without fresh statistics PostgreSQL planned it as a
    # nested loop and took minutes at 100k accounts. This path is linear whatever the plan.)
    session.execute(sa.delete(LatestScore).where(LatestScore.day <= as_of))
    newer = np.array(session.scalars(sa.select(LatestScore.account_id)).all(), dtype=np.int64)
    keep = ~np.isin(ids, newer)
    change_7d = _nullable(np.round(result.score - _previous_scores(session, as_of - dt.timedelta(days=7), ids), 4))
    change_30d = _nullable(np.round(result.score - _previous_scores(session, as_of - dt.timedelta(days=30), ids), 4))
    rows = zip(*history_values, change_7d, change_30d, keep.tolist(), strict=True)
    bulk_insert(
        session,
        LatestScore.__table__,  # type: ignore[arg-type]
        (*history_columns, "score_change_7d", "score_change_30d"),
        (row[:-1] for row in rows if row[-1]),
    )
    done("latest")

    band_counts = np.bincount(result.band[result.band != NO_BAND], minlength=len(BANDS))
    stage_counts = np.bincount(stage, minlength=len(STAGES))
    return ScoringRunSummary(
        as_of=as_of,
        config_version=version,
        accounts_scored=int(ids.size),
        accounts_without_score=int(np.count_nonzero(result.band == NO_BAND)),
        by_band={band.value: int(c) for band, c in zip(BANDS, band_counts, strict=True)},
        by_stage={s.value: int(c) for s, c in zip(STAGES, stage_counts, strict=True)},
        seconds=seconds,
    )
