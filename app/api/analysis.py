"""Learning from outcomes: suggested weights (admin), the churn model (read by all who read, trained
by admins) and event lift (admins and managers). See docs/learning.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError

from app.api.body import body_refusals, json_body_doc, load_json_body
from app.auth import ADMIN, READ, access, actor_name
from app.db import get_session, session_factory
from app.errors import DomainValidationError
from app.job_runs import run_recorded
from app.models import Role
from app.schemas.analysis import (
    ChurnModelInfoSchema,
    ChurnModelSchema,
    ChurnModelTrainSchema,
    EventLiftQuerySchema,
    EventLiftSchema,
    SuggestionsRequestSchema,
    SuggestionsSchema,
)
from app.schemas.plays import NoQuerySchema
from app.services.learning import (
    TRAIN_JOB,
    TrainSummary,
    churn_model_info,
    compute_event_lift,
    suggest_config,
    train_churn_model,
)

bp = Blueprint("analysis", __name__, url_prefix="/api/v1", description="Learning from outcomes")

_body_errors = body_refusals(
    bp, "Invalid input (field messages under errors.json), or too few outcomes (errors.outcomes)"
)


def _options(schema: Schema) -> dict[str, Any]:
    """The JSON body loaded by ``schema``; no body at all means every default."""
    data = load_json_body() if request.content_length or request.is_json else {}
    try:
        options: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        raise DomainValidationError("The options are invalid.", errors={"json": exc.normalized_messages()}) from None
    options["as_of"] = options["as_of"] or dt.datetime.now(dt.UTC).date()
    options["periodic_months"] = options["periodic_months"] if options.pop("periodic") else 0
    return options


@bp.post("/scoring/suggestions")
@access(*ADMIN)
@bp.response(200, SuggestionsSchema)
@_body_errors
@bp.doc(**json_body_doc(SuggestionsRequestSchema, required=False))
def suggestions() -> dict[str, Any]:
    """Suggested per-stage weights learned from outcomes (class-balanced L2 logistic regression per
    stage, pooled where a stage has too few outcomes), with ROC AUC, top-decile lift and the share
    of churned in the poor band for the proposal and the active config side by side, from a
    validation that trains on earlier observations and tests on later ones, keeping each account's
    on one side. ``new_version`` is the body to POST to /scoring/config/versions. Changes nothing."""
    options = _options(SuggestionsRequestSchema())
    session = get_session()
    with session.begin():
        return suggest_config(session, **options)


@bp.get("/analysis/event-lift")
@access(Role.ADMIN, Role.MANAGER)
@bp.arguments(EventLiftQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, EventLiftSchema)
def event_lift(window_days: int) -> dict[str, Any]:
    """For each event rule: how much more often accounts churned when the event fired in the
    ``window_days`` before the outcome than all outcomes did (lift, counts, a Wilson 95 % interval)."""
    session = get_session()
    with session.begin():
        return compute_event_lift(session, window_days=window_days)


@bp.get("/analysis/churn-model")
@access(*READ)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, ChurnModelInfoSchema)
def churn_model(_query: dict[str, Any]) -> dict[str, Any]:
    """The newest churn model: when and on what it was trained, and its validation figures (ROC
    AUC, Brier score, a reliability table) on later observations than it was fitted on."""
    session = get_session()
    with session.begin():
        return churn_model_info(session)


@bp.post("/analysis/churn-model/train")
@access(*ADMIN)
@bp.response(201, ChurnModelSchema)
@_body_errors
@bp.doc(**json_body_doc(ChurnModelTrainSchema, required=False))
def train() -> dict[str, Any]:
    """Train a churn model now and store it as the newest version (recorded in job_runs as
    train-churn-model); the next scoring run adds each account's churn probability."""
    options = _options(ChurnModelTrainSchema())
    actor = actor_name()
    params = {**options, "as_of": options["as_of"].isoformat(), "runner": f"api:{actor}"}
    summary = run_recorded(
        session_factory(),
        TRAIN_JOB,
        params,
        lambda session: TrainSummary(train_churn_model(session, actor=actor, **options)),
        TrainSummary.counts,
    )
    return summary.result
