"""Band overrides: a CSM's band for an account, with a mandatory reason and an expiry.

An override is *live* while it is neither revoked nor expired (``expires_at <= now`` reads as
not live: it reverts by itself, no job needed). The computed score, band and history are never
touched; reads show the override beside them. Every override ever made stays in
``band_overrides`` (the audit trail), and each create and revoke is also in the audit log.

Creating an override while one is live is refused (409): revoke it first, so every change of
mind is explicit in the trail. The partial unique index allows one row with ``revoked_at IS
NULL`` per account, so creating one after the previous expired first closes the expired row
(``revoked_at`` = its expiry, ``revoked_by`` = ``EXPIRED``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import as_utc
from app.errors import Conflict, NotFound
from app.models import BandOverride
from app.services.audit import record
from app.services.common import require_account
from scoring.bands import Band

#: ``revoked_by`` of an override closed because it had expired (not revoked by a person).
EXPIRED = "(expired)"


def live_override_clause(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(BandOverride.revoked_at.is_(None), BandOverride.expires_at > now)


def override_fields(row: BandOverride) -> dict[str, Any]:
    return {
        "band": row.band,
        "reason": row.reason,
        "author": row.author,
        "created_at": as_utc(row.created_at),
        "expires_at": as_utc(row.expires_at),
    }


def live_override(session: Session, account_id: int, now: dt.datetime) -> dict[str, Any] | None:
    """The account's live override (band, reason, author, created_at, expires_at), or None."""
    row = session.scalar(
        sa.select(BandOverride).where(BandOverride.account_id == account_id, live_override_clause(now))
    )
    return None if row is None else override_fields(row)


def create_override(
    session: Session, account_id: int, *, band: Band, reason: str, expires_at: dt.datetime, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """Override the account's band until ``expires_at`` (already validated by the API: in the future, not
    too far ahead).

    ``NotFound`` for an unknown account; ``Conflict`` while another override is live.
    """
    require_account(session, account_id)
    open_row = session.scalar(
        sa.select(BandOverride).where(BandOverride.account_id == account_id, BandOverride.revoked_at.is_(None))
    )
    if open_row is not None:
        if as_utc(open_row.expires_at) > now:
            raise Conflict(
                f"Account {account_id} has a live override ({open_row.band.value} until "
                f"{as_utc(open_row.expires_at).isoformat()}); revoke it first."
            )
        open_row.revoked_at, open_row.revoked_by = open_row.expires_at, EXPIRED
        session.flush()
    row = BandOverride(
        account_id=account_id,
        band=band,
        reason=reason,
        author=actor,
        created_at=now,
        expires_at=as_utc(expires_at),
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # another override was created between the check and the insert
        raise Conflict(f"Account {account_id} has a live override; revoke it first.") from None
    record(
        session,
        actor=actor,
        action="override.create",
        target=f"account:{account_id}",
        details={"override_id": row.id, "band": band.value, "reason": reason, "expires_at": row.expires_at.isoformat()},
    )
    return override_item(row, now)


def revoke_override(session: Session, account_id: int, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Revoke the live override. ``NotFound`` for an unknown account or when none is live."""
    require_account(session, account_id)
    row = session.scalar(
        sa.select(BandOverride).where(BandOverride.account_id == account_id, live_override_clause(now))
    )
    if row is None:
        raise NotFound(f"Account {account_id} has no live override.")
    row.revoked_at, row.revoked_by = now, actor
    session.flush()
    record(
        session,
        actor=actor,
        action="override.revoke",
        target=f"account:{account_id}",
        details={"override_id": row.id, "band": row.band.value},
    )
    return override_item(row, now)


def list_overrides(session: Session, account_id: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Every override of the account, newest first, each with its state (live, expired, revoked)."""
    require_account(session, account_id)
    rows = session.scalars(
        sa.select(BandOverride)
        .where(BandOverride.account_id == account_id)
        .order_by(BandOverride.created_at.desc(), BandOverride.id.desc())
    )
    return [override_item(row, now) for row in rows]


def override_item(row: BandOverride, now: dt.datetime) -> dict[str, Any]:
    expires_at = as_utc(row.expires_at)
    if row.revoked_at is not None and row.revoked_by != EXPIRED:
        state = "revoked"
    elif expires_at <= now:
        state = "expired"
    else:
        state = "live"
    return {
        "id": row.id,
        "account_id": row.account_id,
        **override_fields(row),
        "state": state,
        "revoked_at": None if row.revoked_at is None or state != "revoked" else as_utc(row.revoked_at),
        "revoked_by": row.revoked_by if state == "revoked" else None,
    }
