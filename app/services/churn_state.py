"""What the rest of the app needs to know about the churn model without the learning code.

``app.services.analysis`` (training, suggestions, applying the model) imports scikit-learn and
scipy, about two seconds of start-up; the web app, the CLI and the scoring run import it only
inside the functions that train, suggest or apply a model. The names here (the training job's
id, why an account has no churn probability, whether a model exists) are read by every account
and watchlist request, so they live in this module, which imports neither.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import ChurnModel
from scoring.churn import FORMAT as CHURN_FORMAT
from scoring.churn import RunMeasures, run_measures
from scoring.measures import Measure

TRAIN_JOB = "train-churn-model"

NO_MODEL_NOTE = (
    "No churn model has been trained yet (POST /api/v1/analysis/churn-model/train, or flask analysis train)."
)
NOT_SCORED_SINCE_NOTE = "Not scored since the churn model was trained: the next scoring run adds it."
NO_SCORE_NOTE = "The account has no score yet."


OLD_FORMAT_NOTE = (
    "The newest churn model (v{version}) was stored by an older version of the service (a model over "
    "the config's measures), which this version no longer applies: train a new one (POST "
    "/api/v1/analysis/churn-model/train, or flask analysis train)."
)


def model_format(params: dict[str, Any] | None) -> int:
    """The stored model's format (1: the first models, over measure scores)."""
    return int((params or {}).get("format", 1))


def churn_note(probability: float | None, *, scored: bool, model_exists: bool | str) -> str | None:
    """Why an account's churn probability is null (None when it is not). ``model_exists`` may be
    the note of a stored model this version ignores (``has_churn_model``)."""
    if probability is not None:
        return None
    if not scored:
        return NO_SCORE_NOTE
    if isinstance(model_exists, str):
        return model_exists
    return NOT_SCORED_SINCE_NOTE if model_exists else NO_MODEL_NOTE


def has_churn_model(session: Session) -> bool | str:
    """Whether a churn model exists; the old-format note when the newest is one this version ignores."""
    row = session.execute(
        sa.select(ChurnModel.version, ChurnModel.params).order_by(ChurnModel.version.desc()).limit(1)
    ).first()
    if row is None:
        return False
    return True if model_format(row.params) == CHURN_FORMAT else OLD_FORMAT_NOTE.format(version=row.version)


def churn_run_measures(session: Session, config: tuple[Measure, ...]) -> RunMeasures | None:
    """The newest churn model's measures as a scoring run computes them beside the ``config``'s
    (``scoring.churn.run_measures``); None without a model of the current format. Read from the
    stored definitions, without loading the model."""
    row = session.execute(sa.select(ChurnModel.params).order_by(ChurnModel.version.desc()).limit(1)).first()
    if row is None or model_format(row.params) != CHURN_FORMAT:
        return None
    return run_measures(row.params.get("measures") or (), config)
