"""Small helpers every service room shares: offset pagination and the account-exists check."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Account

#: The total of a list read with ``count=False``.
UNCOUNTED = -1


def page_of(
    session: Session, query: Any, *, order_by: tuple[Any, ...], page: int, per_page: int, count: bool = True
) -> tuple[Any, int]:
    """The statement for page ``page`` (1-based) of ``query`` in ``order_by`` order, and the total count
    (``UNCOUNTED`` when ``count`` is off: a page showing only the newest rows skips that query)."""
    total = UNCOUNTED
    if count:
        total = session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
    return query.order_by(*order_by).limit(per_page).offset((page - 1) * per_page), total


def rows(session: Session, statement: Any) -> sa.CursorResult[Any]:
    """A read of plain columns (no ORM entities) on the session's connection, as Core: the ORM's
    execution path costs about as much as the round trip for the small reads of a page. Pending
    changes are flushed first, as the ORM's autoflush would."""
    session.flush()
    return session.connection().execute(statement)


def require_account(session: Session, account_id: int) -> None:
    """``NotFound`` unless the account exists."""
    if rows(session, sa.select(Account.id).where(Account.id == account_id)).first() is None:
        raise NotFound(f"Account {account_id} does not exist.")
