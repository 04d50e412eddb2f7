"""Why an account's score changed between two days: per-measure data and config effects.

Reads the two history rows (by primary key: never a scan), the config versions they were scored
with, and hands the pure split to ``scoring.attribution``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import DomainValidationError, NotFound
from app.models import HealthScore
from app.services.common import require_account
from app.services.scoring_config.active import load_scored_models
from scoring.attribution import ScoredDay, attribute
from scoring.stage import STAGE_CODE


def score_change(session: Session, account_id: int, start: dt.date, end: dt.date) -> dict[str, Any]:
    """The change of the account's score from ``start`` to ``end``, explained per measure.

    ``NotFound`` for an unknown account or a day without a score row; ``DomainValidationError``
    when ``start`` is after ``end`` or a day's row has no score (no measure had data).
    """
    if start > end:
        raise DomainValidationError(
            "'from' must not be after 'to'.", errors={"from": [f"{start.isoformat()} is after {end.isoformat()}."]}
        )
    require_account(session, account_id)
    rows = {
        row.day: row
        for row in session.scalars(
            sa.select(HealthScore).where(HealthScore.account_id == account_id, HealthScore.day.in_({start, end}))
        )
    }
    for day, field in ((start, "from"), (end, "to")):
        row = rows.get(day)
        if row is None:
            raise NotFound(f"Account {account_id} has no score on {day.isoformat()} ('{field}').")
        if row.score is None:
            raise DomainValidationError(
                f"Account {account_id} has no score on {day.isoformat()}: no measure had data that day.",
                errors={field: ["No score that day."]},
            )
    first, last = rows[start], rows[end]
    models = load_scored_models(session, {(row.day, row.config_version) for row in (first, last)})
    for row in (first, last):
        if (row.day, row.config_version) not in models:  # pragma: no cover - versions are never deleted
            raise NotFound(f"Scoring config version {row.config_version} does not exist.")
    try:
        result = attribute(
            ScoredDay(first.measure_values, STAGE_CODE[first.stage], models[(first.day, first.config_version)]),
            ScoredDay(last.measure_values, STAGE_CODE[last.stage], models[(last.day, last.config_version)]),
        )
    except ValueError as exc:  # pragma: no cover - stored values always match their version
        raise DomainValidationError(f"The stored scores cannot be explained: {exc}.") from None
    return {
        "account_id": account_id,
        "start": _day(first),
        "end": _day(last),
        # Recomputed from the stored values, so the effects add up to it exactly; the stored
        # scores (rounded to 4 decimals when written) are in "from" and "to".
        "change": result.change,
        "from_score": result.from_score,
        "to_score": result.to_score,
        "data_effect": result.data_effect,
        "config_effect": result.config_effect,
        "neutral_effect": result.neutral_effect,
        "measures": [
            {
                "measure": m.measure,
                "label": m.label,
                "from_value": m.from_value,
                "to_value": m.to_value,
                "from_score": m.from_score,
                "to_score": m.to_score,
                "from_contribution": m.from_contribution,
                "to_contribution": m.to_contribution,
                "data_effect": m.data_effect,
                "config_effect": m.config_effect,
                "total": m.total,
            }
            for m in result.measures
        ],
    }


def _day(row: HealthScore) -> dict[str, Any]:
    return {
        "day": row.day,
        "score": row.score,
        "band": row.band,
        "stage": row.stage,
        "completeness": row.completeness,
        "config_version": row.config_version,
    }
