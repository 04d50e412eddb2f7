"""Accounts: the portfolio list with latest scores, and one account with drivers and history."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from app.auth import READ, access, book
from app.db import get_session
from app.schemas.accounts import (
    AccountDetailQuerySchema,
    AccountDetailSchema,
    AccountListQuerySchema,
    AccountPageSchema,
)
from app.services.accounts import AccountFilters, get_account, list_accounts

bp = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts", description="Accounts and their health")


@bp.get("")
@access(*READ)
@bp.arguments(AccountListQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, AccountPageSchema)
def list_(page: int, per_page: int, sort: str, scope: str, **filters: Any) -> dict[str, Any]:
    """List accounts with their latest score, band, stage and completeness."""
    session = get_session()
    with session.begin():
        items, total = list_accounts(
            session,
            filters=AccountFilters(**filters, owners=book(session, scope, filters.get("owner"))),
            page=page,
            per_page=per_page,
            sort=sort,
        )
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/<int:account_id>")
@access(*READ)
@bp.arguments(AccountDetailQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, AccountDetailSchema)
@bp.alt_response(404, description="No such account")
def detail(account_id: int, history_days: int) -> dict[str, Any]:
    """One account: latest score with its drivers, and score history (newest first)."""
    session = get_session()
    with session.begin():
        return get_account(session, account_id, history_days=history_days)
