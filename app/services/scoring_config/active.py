"""Scoring-config versions: the active health model, and seeding version 1 from the default file."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import DomainValidationError, NotFound
from app.field_errors import nest_error_paths
from app.models import ScoreCalibration, ScoringConfigVersion
from scoring.model import ScoringConfigError, ScoringModel, default_config_dict, model_from_dict


def ensure_default_config(session: Session, *, author: str = "system") -> ScoringConfigVersion:
    """Store the shipped default config as version 1 and activate it, unless a version exists.

    Returns the active version. Idempotent.
    """
    active = session.scalar(sa.select(ScoringConfigVersion).where(ScoringConfigVersion.active))
    if active is not None:
        return active
    if session.scalar(sa.select(sa.func.count()).select_from(ScoringConfigVersion)):
        raise NotFound("No scoring config version is active; activate one.")
    data = default_config_dict()
    try:
        model_from_dict(data)  # the core's own check of a config, as for every stored version
    except ScoringConfigError as exc:
        raise DomainValidationError(
            "The default scoring config file is invalid.", errors=nest_error_paths(exc.errors)
        ) from exc
    version = ScoringConfigVersion(version=1, config=data, author=author, comment="Default scoring config", active=True)
    session.add(version)
    session.flush()
    return version


def get_active_model(session: Session) -> tuple[int, ScoringModel]:
    """The active config version number and its model (creating version 1 on a fresh database)."""
    version = ensure_default_config(session)
    return version.version, model_from_dict(version.config)


def load_models(session: Session, versions: set[int]) -> dict[int, ScoringModel]:
    """The models of the given config versions (for explaining stored scores)."""
    if not versions:
        return {}
    rows = session.execute(
        sa.select(ScoringConfigVersion.version, ScoringConfigVersion.config).where(
            ScoringConfigVersion.version.in_(versions)
        )
    ).all()
    return {version: _model(config) for version, config in rows}


#: Models by their config's text (sorted keys): a stored version never changes, and building and
#: checking a model costs a few ms an account page. Keyed by content, not number: version 3 of one
#: database is not version 3 of another (tests, benchmarks).
_MODELS: dict[bytes, ScoringModel] = {}
_MODELS_MAX = 64


def _model(config: dict[str, Any]) -> ScoringModel:
    key = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
    model = _MODELS.get(key)
    if model is None:
        model = model_from_dict(config)
        if len(_MODELS) >= _MODELS_MAX:
            _MODELS.clear()
        _MODELS[key] = model
    return model


def load_scored_models(session: Session, keys: set[tuple[dt.date, int]]) -> dict[tuple[dt.date, int], ScoringModel]:
    """The model each (day, config version) scored with: the version's model, calibrated with that
    day's stored percentile points and band cut-offs when the config depends on the portfolio."""
    models = load_models(session, {version for _, version in keys})
    dependent = {(day, version) for day, version in keys if version in models and models[version].portfolio_dependent}
    calibrations: dict[tuple[dt.date, int], dict[str, Any]] = {}
    if dependent:
        rows = session.execute(
            sa.select(ScoreCalibration.day, ScoreCalibration.config_version, ScoreCalibration.calibration).where(
                ScoreCalibration.config_version.in_({version for _, version in dependent}),
                ScoreCalibration.day.in_({day for day, _ in dependent}),
            )
        )
        calibrations = {(day, version): calibration for day, version, calibration in rows}
    return {
        (day, version): models[version].calibrated(calibrations.get((day, version)))
        for day, version in keys
        if version in models
    }
