"""A lease in the database that one process at a time may hold: how one scheduler leads."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import as_utc
from app.models import SchedulerLease


def acquire_lease(session: Session, *, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl``; True when ``holder`` has it.

    Atomic on both databases: one conditional UPDATE (ours, or expired) and, when that touched
    nothing, an INSERT ... ON CONFLICT DO NOTHING. Never commits; call it in a short transaction
    of its own so the lease is visible to other processes at once.
    """
    expires = now + ttl
    updated = session.execute(
        sa.update(SchedulerLease)
        .where(
            SchedulerLease.name == name,
            sa.or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now),
        )
        .values(
            holder=holder,
            expires_at=expires,
            # A takeover starts a new tenure; a renewal keeps the original start.
            acquired_at=sa.case((SchedulerLease.holder == holder, SchedulerLease.acquired_at), else_=now),
        )
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount:  # type: ignore[attr-defined]
        return True
    # No row yet (or someone else's live one): insert, doing nothing if a row exists by now.
    # ON CONFLICT DO NOTHING exists in both PostgreSQL and SQLite, so a race never raises.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted = session.execute(
        insert(SchedulerLease)
        .values(name=name, holder=holder, acquired_at=now, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(SchedulerLease.name)  # a row back only when this insert won
    )
    return inserted.first() is not None


def release_lease(session: Session, *, name: str, holder: str) -> None:
    """Give the lease up at once (on a clean shutdown) so a standby takes over without waiting."""
    session.execute(
        sa.delete(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .execution_options(synchronize_session=False)
    )


def lease_holder(session: Session, *, name: str, now: dt.datetime) -> str | None:
    """Who holds lease ``name`` now (None when nobody does or it expired)."""
    lease = session.get(SchedulerLease, name)
    if lease is None or as_utc(lease.expires_at) < now:
        return None
    return lease.holder
