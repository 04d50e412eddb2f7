"""Pins: putting an account on the watchlist by hand, with a reason and an optional expiry, and taking it off."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import as_utc
from app.errors import Conflict, NotFound
from app.models import WatchlistPin
from app.services.audit import record
from app.services.common import require_account

#: ``removed_by`` of a pin closed because it had expired (not taken off by a person).
EXPIRED = "(expired)"


def _live_pin(session: Session, account_id: int, now: dt.datetime) -> WatchlistPin | None:
    return session.scalar(
        sa.select(WatchlistPin).where(
            WatchlistPin.account_id == account_id,
            WatchlistPin.removed_at.is_(None),
            sa.or_(WatchlistPin.expires_at.is_(None), WatchlistPin.expires_at > now),
        )
    )


def live_pin(session: Session, account_id: int, now: dt.datetime) -> dict[str, Any] | None:
    """The account's live pin (not removed, not expired), or None."""
    pin = _live_pin(session, account_id, now)
    return None if pin is None else pin_fields(pin)


def pin_fields(pin: WatchlistPin) -> dict[str, Any]:
    return {
        "id": pin.id,
        "account_id": pin.account_id,
        "reason": pin.reason,
        "author": pin.author,
        "created_at": as_utc(pin.created_at),
        "expires_at": None if pin.expires_at is None else as_utc(pin.expires_at),
        "removed_at": None if pin.removed_at is None else as_utc(pin.removed_at),
        "removed_by": pin.removed_by,
    }


def pin_account(
    session: Session, account_id: int, *, reason: str, expires_at: dt.datetime | None, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """Pin the account on the watchlist. ``NotFound`` for an unknown account, ``Conflict`` when
    it has a live pin. An expired pin left open is closed first (``removed_by`` = ``EXPIRED``)."""
    require_account(session, account_id)
    open_pin = session.scalar(
        sa.select(WatchlistPin).where(WatchlistPin.account_id == account_id, WatchlistPin.removed_at.is_(None))
    )
    if open_pin is not None:
        if open_pin.expires_at is None or as_utc(open_pin.expires_at) > now:
            raise Conflict(f"Account {account_id} is already pinned (by {open_pin.author}); unpin it first.")
        open_pin.removed_at, open_pin.removed_by = open_pin.expires_at, EXPIRED
        session.flush()
    pin = WatchlistPin(
        account_id=account_id,
        reason=reason,
        author=actor,
        created_at=now,
        expires_at=None if expires_at is None else as_utc(expires_at),
    )
    session.add(pin)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # pinned by a concurrent request between the check and the insert
        raise Conflict(f"Account {account_id} is already pinned; unpin it first.") from None
    record(
        session,
        actor=actor,
        action="watchlist.pin",
        target=f"account:{account_id}",
        details={
            "pin_id": pin.id,
            "reason": reason,
            "expires_at": None if pin.expires_at is None else pin.expires_at.isoformat(),
        },
    )
    return pin_fields(pin)


def unpin_account(session: Session, account_id: int, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """End the account's live pin. ``NotFound`` for an unknown account or when it has none."""
    require_account(session, account_id)
    pin = _live_pin(session, account_id, now)
    if pin is None:
        raise NotFound(f"Account {account_id} has no live pin.")
    pin.removed_at, pin.removed_by = now, actor
    session.flush()
    record(session, actor=actor, action="watchlist.unpin", target=f"account:{account_id}", details={"pin_id": pin.id})
    return pin_fields(pin)
