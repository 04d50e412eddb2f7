"""Small helpers every service room shares: offset pagination and the account-exists check."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Account


def page_of(session: Session, query: Any, *, order_by: tuple[Any, ...], page: int, per_page: int) -> tuple[Any, int]:
    """The statement for page ``page`` (1-based) of ``query`` in ``order_by`` order, and the total count."""
    total = session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
    return query.order_by(*order_by).limit(per_page).offset((page - 1) * per_page), total


def require_account(session: Session, account_id: int) -> None:
    """``NotFound`` unless the account exists."""
    if session.scalar(sa.select(Account.id).where(Account.id == account_id)) is None:
        raise NotFound(f"Account {account_id} does not exist.")
