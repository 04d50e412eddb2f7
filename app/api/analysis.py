"""Learning from outcomes: suggested weights (admin), the churn model (read by all who read, trained
by admins) and event lift (admins and managers). See docs/learning.md.

Suggestions and training take minutes on a large portfolio: they are queued as job requests
(202) and run by a worker; GET /api/v1/jobs/requests/<id> has the result.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError

from app.api.body import body_refusals, json_body_doc, load_json_body
from app.auth import ADMIN, READ, access, actor_name
from app.db import get_session
from app.errors import DomainValidationError
from app.limits import expensive_limit, limiter
from app.models import JobKind, JobRequest, Role
from app.schemas.analysis import (
    ChurnModelInfoSchema,
    ChurnModelTrainSchema,
    EventLiftQuerySchema,
    EventLiftSchema,
    PredictionQualitySchema,
    PredictionsQuerySchema,
    SuggestionsRequestSchema,
)
from app.schemas.jobs import LOCATION, JobRequestSchema, job_request_url
from app.schemas.plays import NoQuerySchema
from app.services.analysis import check_history, churn_model_info, compute_event_lift
from app.services.jobs.requests import request_learning_job
from app.services.predictions import evaluate_predictions

bp = Blueprint("analysis", __name__, url_prefix="/api/v1", description="Learning from outcomes")

_body_errors = body_refusals(
    bp, "Invalid input (field messages under errors.json), or too few outcomes (errors.outcomes)"
)


def _queue(kind: JobKind, schema: Schema) -> tuple[JobRequest, int, dict[str, str]]:
    """Load the options and queue a ``kind`` job: the 202 answer with its Location. An ``as_of``
    before any data, or a horizon longer than the history, is a 422 at once."""
    options = _options(schema)
    session = get_session()
    with session.begin():
        check_history(session, as_of=options["as_of"], horizon_days=options["horizon_days"])
        queued = request_learning_job(session, kind, options, actor_name())
    return queued, 202, {"Location": job_request_url(queued.id)}


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
@limiter.limit(expensive_limit)
@bp.response(202, JobRequestSchema, headers=LOCATION)
@_body_errors
@bp.doc(**json_body_doc(SuggestionsRequestSchema, required=False))
def suggestions() -> tuple[JobRequest, int, dict[str, str]]:
    """Queue suggested per-stage weights learned from outcomes (class-balanced L2 logistic
    regression per stage, pooled where a stage has too few outcomes), with ROC AUC, top-decile lift
    and the share of churned in the poor band for the proposal and the active config side by side,
    from a validation that trains on earlier observations and tests on later ones, keeping each
    account's on one side. Answers at once (202) with the job request (its URL is the Location);
    once it succeeded its ``result`` holds the suggestions, whose ``new_version`` is the body to
    POST to /scoring/config/versions. Changes nothing. Too few outcomes: 422 at once when the
    counts on record rule it out, else the request fails saying so."""
    return _queue(JobKind.SUGGESTIONS, SuggestionsRequestSchema())


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


@bp.get("/analysis/predictions")
@access(Role.ADMIN, Role.MANAGER)
@bp.arguments(PredictionsQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, PredictionQualitySchema)
def predictions(as_of: dt.date | None, **query: Any) -> dict[str, Any]:
    """How good the stored daily churn predictions were: ROC AUC, Brier score and calibration by
    decile (with counts) of every (account, day) prediction from ``from`` to ``to`` whose
    ``horizon_days`` closed by ``as_of``, against the churn outcomes (docs/learning.md)."""
    session = get_session()
    with session.begin():
        return evaluate_predictions(session, as_of=as_of or dt.datetime.now(dt.UTC).date(), **query)


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
@limiter.limit(expensive_limit)
@bp.response(202, JobRequestSchema, headers=LOCATION)
@_body_errors
@bp.doc(**json_body_doc(ChurnModelTrainSchema, required=False))
def train() -> tuple[JobRequest, int, dict[str, str]]:
    """Queue the training of a churn model (trained by the caller; recorded in job_runs as
    train-churn-model, stored as the newest version; the next scoring run adds each account's
    churn probability). Answers at once (202) with the job request (its URL is the Location); once
    it succeeded its ``result`` holds the model's metadata and validation."""
    return _queue(JobKind.TRAIN_CHURN_MODEL, ChurnModelTrainSchema())
