"""The play library: what to do when an event (or a band) occurs. Read by all, edited by admins.

There is no authentication yet (the admin API issue adds tokens and roles): the author of a
change is the ``X-Actor`` header when present, else ``api``. Plays are never deleted (play runs
refer to them); ``"enabled": false`` retires one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import RAISE

from app.api.body import load_json_body
from app.auth import ADMIN, READ, access
from app.db import get_session
from app.errors import DomainValidationError
from app.schemas.plays import NoQuerySchema, PlayListSchema, PlayOutWithCreatedSchema, PlayReplaceSchema, PlaySchema
from app.services.workflow import create_play, get_play, list_plays, replace_play

bp = Blueprint("plays", __name__, url_prefix="/api/v1/plays", description="Success plays")


def _body_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Document the refusals shared by the two writes."""
    view = bp.alt_response(400, description="Malformed JSON")(view)
    view = bp.alt_response(415, description="Not JSON")(view)
    return bp.alt_response(422, description="An invalid play (field messages under errors.json); nothing changed")(view)


def _actor() -> str:
    actor = (request.headers.get("X-Actor") or "").strip()
    if len(actor) > 255:
        raise DomainValidationError(
            "The X-Actor header is too long.", errors={"headers": {"X-Actor": ["At most 255 characters."]}}
        )
    return actor or "api"


def _body_doc(schema: type, description: str) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    actor = {
        "in": "header",
        "name": "X-Actor",
        "required": False,
        "schema": {"type": "string", "maxLength": 255},
        "description": 'Who makes the change (recorded as updated_by; default "api") until tokens arrive.',
    }
    return {
        "requestBody": {"required": True, "content": content, "description": description},
        "parameters": [actor],
    }


@bp.get("")
@access(*READ)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, PlayListSchema)
def list_(_query: dict[str, Any]) -> dict[str, Any]:
    """Every play, disabled ones included, in id order."""
    session = get_session()
    with session.begin():
        return {"items": list_plays(session)}


@bp.get("/<string:play_id>")
@access(*READ)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, PlayOutWithCreatedSchema)
@bp.alt_response(404, description="No such play")
def detail(_query: dict[str, Any], play_id: str) -> dict[str, Any]:
    """One play with its version and who changed it last."""
    session = get_session()
    with session.begin():
        return get_play(session, play_id)


@bp.post("")
@access(*ADMIN)
@bp.response(201, PlayOutWithCreatedSchema)
@bp.alt_response(409, description="A play with this id exists")
@_body_errors
@bp.doc(**_body_doc(PlaySchema, "The play; its trigger rules must be rules of the active scoring config."))
def create() -> dict[str, Any]:
    """Add a play (author: the X-Actor header, else "api"; no authentication yet)."""
    data = load_json_body()
    session = get_session()
    with session.begin():
        return create_play(session, data, actor=_actor(), now=dt.datetime.now(dt.UTC))


@bp.put("/<string:play_id>")
@access(*ADMIN)
@bp.response(200, PlayOutWithCreatedSchema)
@bp.alt_response(404, description="No such play")
@bp.alt_response(409, description="The play changed since the version given in the body")
@_body_errors
@bp.doc(**_body_doc(PlayReplaceSchema, "The whole play; id optional (the path's), version optional (optimistic lock)."))
def replace(play_id: str) -> dict[str, Any]:
    """Replace a play: its version goes up by one; an invalid play is refused and the old one stays."""
    data = load_json_body()
    session = get_session()
    with session.begin():
        return replace_play(session, play_id, data, actor=_actor(), now=dt.datetime.now(dt.UTC))
