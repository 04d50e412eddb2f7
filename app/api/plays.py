"""The play library: what to do when an event (or a band) occurs. Read by all, edited by admins.

The author of a change is the calling token's user (recorded as ``updated_by`` and in the
audit log). Plays are never deleted (play runs refer to them); ``"enabled": false`` retires one.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from app.api.body import body_refusals, json_body_doc, load_json_body, load_with
from app.auth import ADMIN, READ, access, actor_name
from app.db import get_session
from app.errors import DomainValidationError
from app.schemas.plays import NoQuerySchema, PlayListSchema, PlayOutWithCreatedSchema, PlayReplaceSchema, PlaySchema
from app.services.audit import record
from app.services.plays import (
    active_rule_ids,
    create_play,
    get_play,
    list_plays,
    lock_play,
    replace_play,
    require_version,
)
from playbooks.plays import Play

bp = Blueprint("plays", __name__, url_prefix="/api/v1/plays", description="Success plays")


#: The refusals shared by the two writes.
_body_errors = body_refusals(bp, "An invalid play (field messages under errors.json); nothing changed")


def _plain(play: dict[str, Any]) -> dict[str, Any]:
    """The play as JSON data for the audit log (timestamps as ISO text)."""
    data: dict[str, Any] = json.loads(json.dumps(play, default=str))
    return data


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
@bp.doc(**json_body_doc(PlaySchema, "The play; its trigger rules must be rules of the active scoring config."))
def create() -> dict[str, Any]:
    """Add a play (its author: the caller)."""
    data = load_json_body()
    session = get_session()
    with session.begin():
        new = _load_play(data, active_rule_ids(session))
        play = create_play(session, new, actor=actor_name(), now=dt.datetime.now(dt.UTC))
        record(session, actor=actor_name(), action="play.create", target=f"play:{play['id']}", details=_plain(play))
        return play


@bp.put("/<string:play_id>")
@access(*ADMIN)
@bp.response(200, PlayOutWithCreatedSchema)
@bp.alt_response(404, description="No such play")
@bp.alt_response(409, description="The play changed since the version given in the body")
@_body_errors
@bp.doc(
    **json_body_doc(PlayReplaceSchema, "The whole play; id optional (the path's), version optional (optimistic lock).")
)
def replace(play_id: str) -> dict[str, Any]:
    """Replace a play: its version goes up by one; an invalid play is refused and the old one stays."""
    data = load_json_body()
    session = get_session()
    with session.begin():
        current = lock_play(session, play_id)
        fields, expected_version = _replacement(play_id, data)
        require_version(play_id, current, expected_version)
        new = _load_play(fields, active_rule_ids(session))
        play = replace_play(session, new, actor=actor_name(), now=dt.datetime.now(dt.UTC))
        record(session, actor=actor_name(), action="play.update", target=f"play:{play_id}", details=_plain(play))
        return play


def _load_play(data: Any, rule_ids: frozenset[str]) -> Play:
    """The play in a body, shape and meaning checked, its trigger against ``rule_ids``: one 422
    with every field's messages."""
    if not isinstance(data, dict):
        raise DomainValidationError(
            "Send the play as a JSON object.", errors={"json": {"_schema": ["Expected an object."]}}
        )
    play: Play = load_with(PlaySchema(rule_ids=rule_ids), data, "The play is invalid.")
    return play


def _replacement(play_id: str, data: Any) -> tuple[Any, int | None]:
    """The play fields of a ``PUT`` body and the version it was read at: the body's ``id`` must be the
    path's or absent, ``version`` (optional) a whole number."""
    expected = None
    if isinstance(data, dict):
        data = dict(data)
        if data.setdefault("id", play_id) != play_id:
            raise DomainValidationError(
                "The body's id differs from the play in the path.",
                errors={"json": {"id": [f"Must be {play_id!r} (the play in the path) or left out."]}},
            )
        expected = data.pop("version", None)
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
            raise DomainValidationError(
                "The version is not a whole number.", errors={"json": {"version": ["Not a valid integer."]}}
            )
    return data, expected
