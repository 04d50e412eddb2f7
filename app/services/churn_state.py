"""What the rest of the app needs to know about the churn model without the learning code.

``app.services.analysis`` (training, suggestions, applying the model) imports scikit-learn and
scipy, about two seconds of start-up; the web app, the CLI and the scoring run import it only
inside the functions that train, suggest or apply a model. The names here (the training job's
id, why an account has no churn probability, whether a model exists) are read by every account
and watchlist request, so they live in this module, which imports neither.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import ChurnModel

TRAIN_JOB = "train-churn-model"

NO_MODEL_NOTE = (
    "No churn model has been trained yet (POST /api/v1/analysis/churn-model/train, or flask analysis train)."
)
NOT_SCORED_SINCE_NOTE = "Not scored since the churn model was trained: the next scoring run adds it."
NO_SCORE_NOTE = "The account has no score yet."


def churn_note(probability: float | None, *, scored: bool, model_exists: bool) -> str | None:
    """Why an account's churn probability is null (None when it is not)."""
    if probability is not None:
        return None
    if not scored:
        return NO_SCORE_NOTE
    return NOT_SCORED_SINCE_NOTE if model_exists else NO_MODEL_NOTE


def has_churn_model(session: Session) -> bool:
    return session.scalar(sa.select(ChurnModel.version).limit(1)) is not None
