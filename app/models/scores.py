"""Scoring-config versions, daily health-score history, the latest score per account, and job runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.models.enums import enum_type
from scoring.bands import Band
from scoring.stage import LifecycleStage


class ScoringConfigVersion(Base):
    """One version of the health model; exactly one is active."""

    __tablename__ = "scoring_config_versions"
    __table_args__ = (
        # At most one active version, enforced by the database on both dialects.
        sa.Index(
            "uq_scoring_config_versions_active",
            "active",
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        ),
    )

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    config: Mapped[dict[str, Any]]
    author: Mapped[str] = mapped_column(sa.String(255))
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    active: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class _ScoreColumns:
    """Columns shared by the history and the latest-score tables.

    These tables have no foreign keys, on purpose: only the scoring run writes them, from the
    accounts and the config version it reads in the same transaction, so the references hold by
    construction, and per-row foreign-key checks would double the cost of writing 100k rows.
    Deleting an account must delete its scores explicitly (``info["account_scoped"]``).
    """

    day: Mapped[dt.date] = mapped_column(sa.Date)
    config_version: Mapped[int]
    stage: Mapped[LifecycleStage] = mapped_column(enum_type(LifecycleStage, "lifecycle_stage"))
    score: Mapped[float | None]
    band: Mapped[Band | None] = mapped_column(enum_type(Band, "health_band"))
    completeness: Mapped[float]
    # Raw measure values in the order of the config version's measures (null: no data). Scores
    # and drivers are derived from them and the (immutable) config version when read.
    measure_values: Mapped[list[float | None]]
    # From the newest churn model when the score was made (null: no model then), on every scored
    # day, so stored predictions can be judged against outcomes; see docs/learning.md.
    churn_probability: Mapped[float | None]
    expected_arr_at_risk: Mapped[float | None]  # churn_probability x the account's ARR
    churn_model_version: Mapped[int | None]


class ScoreCalibration(Base):
    """How a config that depends on the day's portfolio (percentile mapping, bands by share) scored
    one day: the percentile measures' points and the band cut-offs, so a stored score of that day
    can be explained, one account at a time, exactly as the portfolio was scored."""

    __tablename__ = "score_calibrations"

    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    config_version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    calibration: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class HealthScore(_ScoreColumns, Base):
    """Score history: one row per account per day; re-scoring a day replaces its rows."""

    __tablename__ = "health_scores"
    __table_args__ = (sa.Index("ix_health_scores_day", "day"), {"info": {"account_scoped": True}})

    account_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)


class LatestScore(_ScoreColumns, Base):
    """The most recent score per account: what every read path uses instead of scanning history."""

    __tablename__ = "latest_scores"
    __table_args__ = (sa.Index("ix_latest_scores_band_score", "band", "score"), {"info": {"account_scoped": True}})

    account_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    score_change_7d: Mapped[float | None]
    score_change_30d: Mapped[float | None]
    # Which event rules are on for the account (bit i: the config version's i-th rule); see scoring/rules.py.
    rule_state: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # The churn model's inputs, in its ``measure_names`` order (null: no model, or not yet scored
    # with it): what the account's churn reasons are explained from (docs/learning.md).
    churn_values: Mapped[list[float | None] | None] = mapped_column(sa.JSON, nullable=True)
    scored_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now())
