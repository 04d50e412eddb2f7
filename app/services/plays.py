"""The play library (``/api/v1/plays``): list, read, add and replace plays.

The scoring run's plays step, which starts play runs, is ``app/pipeline/plays.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, DomainValidationError, NotFound
from app.models import PlayDefinition
from app.pipeline.plays import ensure_default_plays, new_play_row
from app.services.scoring_config.active import get_active_model
from playbooks.plays import Play


def _play_fields(row: PlayDefinition) -> dict[str, Any]:
    return {
        **row.definition,
        "enabled": row.enabled,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }


def list_plays(session: Session) -> list[dict[str, Any]]:
    """Every play of the library, disabled ones included, in id order (seeding the defaults first)."""
    ensure_default_plays(session)
    rows = session.scalars(sa.select(PlayDefinition).order_by(PlayDefinition.id))
    return [_play_fields(row) for row in rows]


def _play_row(session: Session, play_id: str, *, for_update: bool = False) -> PlayDefinition:
    query = sa.select(PlayDefinition).where(PlayDefinition.id == play_id)
    row = session.scalar(query.with_for_update() if for_update else query)
    if row is None:
        raise NotFound(f"Play {play_id!r} does not exist.")
    return row


def get_play(session: Session, play_id: str) -> dict[str, Any]:
    ensure_default_plays(session)
    return _play_fields(_play_row(session, play_id))


def _valid_play(session: Session, data: Any) -> Play:
    """The play in ``data`` checked against the schema and the active config's rule ids."""
    from app.schemas.plays import load_play  # the API's schema, as in app.pipeline.plays

    if not isinstance(data, dict):
        raise DomainValidationError(
            "Send the play as a JSON object.", errors={"json": {"_schema": ["Expected an object."]}}
        )
    _, model = get_active_model(session)
    try:
        return load_play(data, frozenset(model.rule_ids))
    except ValidationError as exc:
        raise DomainValidationError("The play is invalid.", errors={"json": exc.normalized_messages()}) from None


def create_play(session: Session, data: Any, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Add a play to the library; ``Conflict`` when its id is taken."""
    ensure_default_plays(session)  # before the first insert, or the defaults would never be seeded
    play = _valid_play(session, data)
    if session.get(PlayDefinition, play.id) is not None:
        raise Conflict(f"Play {play.id!r} already exists; PUT /api/v1/plays/{play.id} replaces it.")
    row = new_play_row(play, author=actor, now=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # created by a concurrent request between the check and the insert
        raise Conflict(f"Play {play.id!r} already exists.") from None
    return _play_fields(row)


def replace_play(session: Session, play_id: str, data: Any, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Replace a play's definition, bumping its version. The body's ``id`` must be the path's or absent;
    an optional ``version`` must be the current one (``Conflict`` otherwise: someone changed it since).
    An invalid play changes nothing."""
    ensure_default_plays(session)
    row = _play_row(session, play_id, for_update=True)
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
        if expected is not None and expected != row.version:
            raise Conflict(
                f"Play {play_id!r} is at version {row.version}, not {expected}: it changed since it was read."
            )
    play = _valid_play(session, data)
    row.definition = play.to_dict()
    row.enabled = play.enabled
    row.version = row.version + 1
    row.updated_at = now
    row.updated_by = actor
    session.flush()
    return _play_fields(row)
