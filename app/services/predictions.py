"""The stored daily churn predictions judged against what happened: ROC AUC, Brier score and
calibration by decile (``GET /api/v1/analysis/predictions``, ``flask analysis predictions``).

Every scored day's history row holds the churn model's probability (``health_scores``). An
(account, day) prediction counts as churned when the account's first churn outcome falls in the
``horizon_days`` after the day, and as not churned when it does not and the whole horizon has
passed by ``as_of``; predictions whose horizon is still open on ``as_of`` are left out (counted as
``censored``), since their outcome is not known yet. Set-based: the database groups the
predictions into probability buckets (``scoring.prediction_quality``) by model version and
whether the horizon closed, so the answer costs one aggregate query whatever the number of
predictions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import ChurnModel, HealthScore, Outcome, OutcomeKind
from scoring.prediction_quality import RESOLUTION, merge_buckets, prediction_quality

NO_PREDICTIONS_NOTE = (
    "No stored prediction with a closed horizon in this range: score days with a churn model "
    "(flask score run --as-of DAY --days N), or widen the range."
)


def _days_between(later: Any, earlier: Any, dialect: str) -> sa.ColumnElement[Any]:
    """Whole days from ``earlier`` to ``later`` (date columns) in SQL."""
    if dialect == "postgresql":
        return later - earlier  # type: ignore[no-any-return]
    return sa.func.julianday(later) - sa.func.julianday(earlier)


def _floor(value: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """floor() of a non-negative number (SQLite's CAST truncates, which is the same there)."""
    return sa.cast(sa.func.floor(value) if dialect == "postgresql" else value, sa.Integer)


def _models(session: Session) -> dict[int, dt.date | None]:
    """Each churn model's training day (``params.as_of``): outcomes after it were unknown to it."""
    rows = session.execute(sa.select(ChurnModel.version, ChurnModel.params)).all()
    return {
        version: dt.date.fromisoformat(params["as_of"]) if params.get("as_of") else None for version, params in rows
    }


def _out_of_sample(models: dict[int, dt.date | None]) -> sa.ColumnElement[bool]:
    """Predictions made on or after their model's training day (nothing later was known to it)."""
    known = [
        sa.and_(HealthScore.churn_model_version == version, HealthScore.day >= trained)
        for version, trained in models.items()
        if trained is not None
    ]
    return sa.or_(*known) if known else sa.false()


def evaluate_predictions(
    session: Session,
    *,
    start: dt.date | None,
    end: dt.date | None,
    horizon_days: int,
    as_of: dt.date,
    out_of_sample: bool = False,
) -> dict[str, Any]:
    """AUC, Brier score and calibration by decile of the predictions stored for the days from
    ``start`` to ``end`` (inclusive; None: unbounded) whose horizon closed by ``as_of``; see the
    module docstring. ``out_of_sample`` keeps only predictions made on or after the training day
    of the model that made them. Plain data, never raises for an empty range."""
    dialect = session.get_bind().dialect.name
    models = _models(session)
    closed_by = as_of - dt.timedelta(days=horizon_days)
    in_range: list[sa.ColumnElement[bool]] = [HealthScore.churn_probability.is_not(None)]
    if start is not None:
        in_range.append(HealthScore.day >= start)
    if end is not None:
        in_range.append(HealthScore.day <= end)
    if out_of_sample:
        in_range.append(_out_of_sample(models))
    first_churn = (
        sa.select(Outcome.account_id, sa.func.min(Outcome.day).label("day"))
        .where(Outcome.kind == OutcomeKind.CHURNED)
        .group_by(Outcome.account_id)
        .subquery()
    )
    ahead = _days_between(first_churn.c.day, HealthScore.day, dialect)
    churned = sa.case((sa.and_(first_churn.c.day > HealthScore.day, ahead <= horizon_days), 1), else_=0)
    p = HealthScore.churn_probability
    bucket = _floor(p * RESOLUTION, dialect).label("bucket")
    version = HealthScore.churn_model_version
    closed = sa.case((HealthScore.day <= closed_by, 1), else_=0).label("closed")
    # One pass: grouped by bucket, model version and whether the horizon closed; numpy merges.
    rows = session.execute(
        sa.select(
            bucket,
            version,
            closed,
            sa.func.count(),
            sa.func.sum(churned),
            sa.func.sum(p),
            sa.func.sum(p * p),
            sa.func.sum(p * churned),
            sa.func.min(p),
            sa.func.max(p),
            sa.func.sum(sa.case((_out_of_sample(models), 1), else_=0)),
        )
        .select_from(HealthScore)
        .outerjoin(first_churn, first_churn.c.account_id == HealthScore.account_id)
        .where(*in_range)
        .group_by(bucket, version, closed)
    ).all()
    table = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(len(rows), 11)
    done = table[:, 2] == 1
    quality = prediction_quality(merge_buckets(table[done, 0], table[done, 3:10]))
    censored = int(table[~done, 3].sum())
    return {
        "start": start,
        "end": end,
        "horizon_days": horizon_days,
        "as_of": as_of,
        "out_of_sample": out_of_sample,
        "predictions": quality.predictions,
        "churned": quality.churned,
        "censored": censored,
        "base_rate": quality.base_rate,
        "mean_probability": quality.mean_probability,
        "auc": quality.auc,
        "brier": quality.brier,
        "deciles": [asdict(row) for row in quality.deciles],
        "models": _model_counts(table[done], models),
        "note": None if quality.predictions else NO_PREDICTIONS_NOTE,
    }


def _model_counts(table: np.ndarray, models: dict[int, dt.date | None]) -> list[dict[str, Any]]:
    """Per model version: its training day and the evaluated predictions it made (all, and those
    on or after its training day), from the grouped rows (version in column 1, count in 3, made
    on or after the training day in 10)."""
    out = []
    for v in np.unique(table[:, 1]).tolist():
        mine = table[:, 1] == v
        out.append(
            {
                "version": int(v),
                "trained_as_of": models.get(int(v)),
                "predictions": int(table[mine, 3].sum()),
                "out_of_sample": int(table[mine, 10].sum()),
            }
        )
    return out
