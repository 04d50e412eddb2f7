"""Tuning the health model: the active scoring config, its versions and their diff, new versions,
activation (and rollback), which queues a rescore, and the preview with a backtest against real
outcomes.

Everyone who reads may see the active config; everything else is for admins. See docs/tuning.md.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from app.api.body import body_refusals, json_body_doc, load_json_body, load_with
from app.auth import ADMIN, READ, access, actor_name
from app.db import get_session
from app.errors import DomainValidationError
from app.limits import expensive_limit, limiter
from app.schemas import PaginationQuerySchema
from app.schemas.config_admin import (
    ActivationSchema,
    ActiveVersionSchema,
    DiffSchema,
    MeasureCatalogSchema,
    NewVersionSchema,
    PatchQuerySchema,
    PreviewResultSchema,
    PreviewSchema,
    VersionPageSchema,
    VersionSchema,
)
from app.schemas.jobs import LOCATION, job_request_url
from app.schemas.plays import NoQuerySchema
from app.services.scoring_config.catalog import measure_catalog
from app.services.scoring_config.versions import (
    activate_version,
    active_config,
    active_version,
    create_version,
    diff_versions,
    get_version,
    list_versions,
    preview,
)
from scoring.model import patch_config

bp = Blueprint("scoring_config", __name__, url_prefix="/api/v1/scoring/config", description="Tuning the health model")


measures_bp = Blueprint(
    "scoring_measures", __name__, url_prefix="/api/v1/scoring/measures", description="Building measures"
)


@measures_bp.get("/catalog")
@access(*ADMIN)
@measures_bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@measures_bp.response(200, MeasureCatalogSchema)
def catalog(_query: dict[str, Any]) -> dict[str, Any]:
    """The sources a measure can read (usage fields, licenses, tickets, feedback, goals, account
    fields) and every product signal the portfolio has, each with its record and account counts and
    first and last days, and the options of the measure language (docs/scoring.md)."""
    session = get_session()
    with session.begin():
        return measure_catalog(session)


_body_errors = body_refusals(bp, "Invalid input (field messages under errors.json); nothing changed")


@bp.get("")
@access(*READ)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, ActiveVersionSchema)
@bp.alt_response(404, description="No version is active")
def active(_query: dict[str, Any]) -> dict[str, Any]:
    """The active scoring config version (version 1, the shipped default, on a fresh database);
    ``rescore_pending`` is true while the rescore an activation queued has not finished, so the
    latest scores may still be from the version active before."""
    session = get_session()
    with session.begin():
        return active_version(session)


@bp.get("/versions")
@access(*ADMIN)
@bp.arguments(PaginationQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, VersionPageSchema)
def versions(page: int, per_page: int) -> dict[str, Any]:
    """Every version, newest first, without its config."""
    session = get_session()
    with session.begin():
        items, total = list_versions(session, page=page, per_page=per_page)
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/versions/<int:version>")
@access(*ADMIN)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, VersionSchema)
@bp.alt_response(404, description="No such version")
def version_detail(_query: dict[str, Any], version: int) -> dict[str, Any]:
    """One version with its config."""
    session = get_session()
    with session.begin():
        return get_version(session, version)


@bp.get("/versions/<int:version_from>/diff/<int:version_to>")
@access(*ADMIN)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, DiffSchema)
@bp.alt_response(404, description="No such version")
def diff(_query: dict[str, Any], version_from: int, version_to: int) -> dict[str, Any]:
    """What changed from one version to another: bands, stage rules, neutral score, measures,
    per-stage weights (with the change of each measure's normalized share) and event rules."""
    session = get_session()
    with session.begin():
        return diff_versions(session, version_from, version_to)


@bp.post("/versions")
@access(*ADMIN)
@bp.response(201, VersionSchema)
@bp.alt_response(409, description="A concurrent request took the version number; send it again")
@_body_errors
@bp.doc(**json_body_doc(NewVersionSchema, "A whole scoring config and a comment; stored inactive."))
def create() -> dict[str, Any]:
    """Store a new version (inactive; author: the token's user). Audited as scoring_config.create."""
    new = load_with(NewVersionSchema(), load_json_body(), "The scoring config is invalid; nothing was stored.")
    session = get_session()
    with session.begin():
        return create_version(session, new, actor=actor_name())


@bp.patch("")
@access(*ADMIN)
@bp.arguments(PatchQuerySchema, location="query", unknown=RAISE)
@bp.response(201, VersionSchema)
@bp.alt_response(409, description="A concurrent request took the version number; send it again")
@_body_errors
@bp.doc(
    requestBody={
        "required": True,
        "description": "A JSON merge patch (RFC 7386) of the active config; measures and rules may be "
        "objects keyed by measure name / rule id to change, add (new key) or remove (null) one item.",
        "content": {"application/merge-patch+json": {"schema": {"type": "object"}}},
    }
)
def patch(query: dict[str, Any]) -> dict[str, Any]:
    """A new version (inactive) made from the active one plus a partial change, without re-posting
    every measure and rule; checked exactly like a whole config. Audited as scoring_config.create."""
    body = load_json_body()
    if not isinstance(body, dict):
        raise DomainValidationError(
            "Send a JSON object: a merge patch of the active config.",
            errors={"json": {"_schema": ["Expected an object."]}},
        )
    session = get_session()
    with session.begin():
        merged = patch_config(active_config(session), body)
        new = load_with(
            NewVersionSchema(),
            {"config": merged, "comment": query["comment"]},
            "The patched scoring config is invalid; nothing was stored.",
        )
        return create_version(session, new, actor=actor_name())


@bp.post("/versions/<int:version>/activate")
@access(*ADMIN)
@limiter.limit(expensive_limit)
@bp.response(202, ActivationSchema, headers=LOCATION)
@bp.alt_response(404, description="No such version")
@bp.alt_response(409, description="The version is already active, or another activation won")
def activate(version: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Activate a version (or roll back to an older one), audited as scoring_config.activate, and
    queue the rescore of the portfolio as of the latest scored day, in one transaction. Answers at
    once (202): a worker (the scheduler's job-requests job, or flask jobs work) runs the rescore;
    follow it at ``rescore.url`` (also the Location header). Until it ends, GET /scoring/config
    says ``rescore_pending``."""
    session = get_session()
    with session.begin():
        activation = activate_version(session, version, actor=actor_name())
    return activation, 202, {"Location": job_request_url(activation["rescore"].id)}


@bp.post("/preview")
@access(*ADMIN)
@limiter.limit(expensive_limit)
@bp.response(200, PreviewResultSchema)
@_body_errors
@bp.doc(**json_body_doc(PreviewSchema, "A proposed scoring config, the backtest horizon and the list size."))
def preview_config() -> dict[str, Any]:
    """What a proposed config would change, without changing anything: band moves of the latest
    scores by stage (with the accounts that move), and a backtest against real outcomes (ROC AUC of
    100 - score against churn at the horizon, proposed and active side by side)."""
    args = load_with(PreviewSchema(), load_json_body(), "The proposed scoring config is invalid.")
    session = get_session()
    try:
        return preview(session, args.pop("config"), **args)
    finally:
        session.rollback()  # a preview never writes; this makes sure of it
