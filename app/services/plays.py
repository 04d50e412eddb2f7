"""The play library (``/api/v1/plays``): list, read, add and replace plays.

The scoring run's plays step, which starts play runs, is ``app/pipeline/plays.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
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


def active_rule_ids(session: Session) -> frozenset[str]:
    """The rule ids a play's trigger may name: the active scoring config's."""
    _, model = get_active_model(session)
    return frozenset(model.rule_ids)


def create_play(session: Session, play: Play, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Add a play (loaded against ``active_rule_ids``) to the library; ``Conflict`` when its id is taken."""
    ensure_default_plays(session)  # before the first insert, or the defaults would never be seeded
    if session.get(PlayDefinition, play.id) is not None:
        raise Conflict(f"Play {play.id!r} already exists; PUT /api/v1/plays/{play.id} replaces it.")
    row = new_play_row(play, author=actor, now=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # created by a concurrent request between the check and the insert
        raise Conflict(f"Play {play.id!r} already exists.") from None
    return _play_fields(row)


def lock_play(session: Session, play_id: str) -> int:
    """Lock a play for a replacement (the defaults seeded first) and return its version;
    ``NotFound`` when there is no such play."""
    ensure_default_plays(session)
    return _play_row(session, play_id, for_update=True).version


def require_version(play_id: str, current: int, expected: int | None) -> None:
    """``Conflict`` unless ``expected`` (the version a client read, when it sent one) is ``current``."""
    if expected is not None and expected != current:
        raise Conflict(f"Play {play_id!r} is at version {current}, not {expected}: it changed since it was read.")


def replace_play(session: Session, play: Play, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Replace a locked play's definition (``lock_play``), bumping its version."""
    row = _play_row(session, play.id, for_update=True)
    row.definition = play.to_dict()
    row.enabled = play.enabled
    row.version = row.version + 1
    row.updated_at = now
    row.updated_by = actor
    session.flush()
    return _play_fields(row)
