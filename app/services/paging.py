"""Offset pagination shared by the list endpoints: one count and one page query."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


def page_of(session: Session, query: Any, *, order_by: tuple[Any, ...], page: int, per_page: int) -> tuple[Any, int]:
    """The statement for page ``page`` (1-based) of ``query`` in ``order_by`` order, and the total count."""
    total = session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
    return query.order_by(*order_by).limit(per_page).offset((page - 1) * per_page), total
