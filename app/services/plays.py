"""The play library (``/api/v1/plays``): list, read, add and replace plays.

The scoring run's plays step, which starts play runs, is ``app/pipeline/plays.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, DomainValidationError, NotFound
from app.field_errors import nest_play_errors
from app.models import PlayDefinition
from app.pipeline.plays import ensure_default_plays, new_play_row
from app.services.scoring_config.active import get_active_model
from playbooks.plays import Play, check_play


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


def _check_trigger_rules(session: Session, play: Play) -> None:
    """A play loaded by the API's schema names only rules of the active config in its trigger."""
    _, model = get_active_model(session)
    errors = check_play(play, frozenset(model.rule_ids))
    if errors:
        raise DomainValidationError("The play is invalid.", errors={"json": nest_play_errors(errors)})


def create_play(session: Session, play: Play, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Add a play to the library; ``Conflict`` when its id is taken."""
    ensure_default_plays(session)  # before the first insert, or the defaults would never be seeded
    _check_trigger_rules(session, play)
    if session.get(PlayDefinition, play.id) is not None:
        raise Conflict(f"Play {play.id!r} already exists; PUT /api/v1/plays/{play.id} replaces it.")
    row = new_play_row(play, author=actor, now=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # created by a concurrent request between the check and the insert
        raise Conflict(f"Play {play.id!r} already exists.") from None
    return _play_fields(row)


def replace_play(
    session: Session, play: Play, *, expected_version: int | None, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """Replace a play's definition, bumping its version. ``expected_version``, when given, must be the
    current one (``Conflict`` otherwise: someone changed it since). An invalid play changes nothing."""
    ensure_default_plays(session)
    row = _play_row(session, play.id, for_update=True)
    if expected_version is not None and expected_version != row.version:
        raise Conflict(
            f"Play {play.id!r} is at version {row.version}, not {expected_version}: it changed since it was read."
        )
    _check_trigger_rules(session, play)
    row.definition = play.to_dict()
    row.enabled = play.enabled
    row.version = row.version + 1
    row.updated_at = now
    row.updated_by = actor
    session.flush()
    return _play_fields(row)
