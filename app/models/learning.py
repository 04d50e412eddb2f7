"""Learning from outcomes: the trained churn models, newest version first in use."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


class ChurnModel(Base):
    """One trained churn model; the scoring run uses the highest version.

    ``model`` is the fitted scikit-learn estimator serialized by joblib (a pickle): it is read
    back only by this service, from its own database, never from user input. ``measure_names``
    are the measures its features came from (in order) and ``config_version`` the scoring config
    whose thresholds turned them into measure scores.
    """

    __tablename__ = "churn_models"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    trained_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    trained_by: Mapped[str] = mapped_column(sa.String(255))
    horizon_days: Mapped[int]
    config_version: Mapped[int]
    neutral_score: Mapped[float]
    measure_names: Mapped[list[str]] = mapped_column(_JSON)
    feature_names: Mapped[list[str]] = mapped_column(_JSON)
    params: Mapped[dict[str, Any]]
    counts: Mapped[dict[str, Any]]
    validation: Mapped[dict[str, Any]]
    model: Mapped[bytes] = mapped_column(sa.LargeBinary)
