"""Events (milestones and risks the scoring run fired) and the rule catalog that fires them."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from app.auth import READ, access, book
from app.db import get_session
from app.schemas.plays import (
    AccountEventQuerySchema,
    EventPageSchema,
    EventQuerySchema,
    NoQuerySchema,
    RuleListSchema,
)
from app.services.events import EventFilters, list_events, list_rules

bp = Blueprint("events", __name__, url_prefix="/api/v1", description="Milestone and risk events, and their rules")


@bp.get("/events")
@access(*READ)
@bp.arguments(EventQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, EventPageSchema)
def list_(page: int, per_page: int, scope: str, **filters: Any) -> dict[str, Any]:
    """Events of every account, newest first; filters: since, kind, rule, stage, owner (the CSM), severity."""
    session = get_session()
    with session.begin():
        owners = book(session, scope, filters.get("owner"))
        items, total = list_events(
            session, filters=EventFilters(**filters, owners=owners), page=page, per_page=per_page
        )
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/accounts/<int:account_id>/events")
@access(*READ)
@bp.arguments(AccountEventQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, EventPageSchema)
@bp.alt_response(404, description="No such account")
def of_account(account_id: int, page: int, per_page: int, **filters: Any) -> dict[str, Any]:
    """One account's events, newest first; filters: since, kind."""
    session = get_session()
    with session.begin():
        items, total = list_events(
            session, filters=EventFilters(**filters), page=page, per_page=per_page, account_id=account_id
        )
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/rules")
@access(*READ)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, RuleListSchema)
def rules(_query: dict[str, Any]) -> dict[str, Any]:
    """The active scoring config's event rules, read-only: they change with new scoring config versions."""
    session = get_session()
    with session.begin():
        return list_rules(session)
