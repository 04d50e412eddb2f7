"""Events and the rule catalog, as CSMs read them (``/api/v1/events``, ``/api/v1/rules``).

Every list is one count and one page query with the account joined in, never a query per row.
The scoring run's events step, which fires them, is ``app/pipeline/events.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Account, Event
from app.services.common import page_of, require_account, rows
from app.services.scoring_config.active import get_active_model
from scoring.rules import COMMON_FIELDS, describe


@dataclass(frozen=True, slots=True)
class EventFilters:
    since: dt.date | None = None
    kind: str | None = None
    rule: str | None = None
    stage: str | None = None
    owner: str | None = None
    severity: str | None = None
    owners: tuple[str, ...] | None = None  # the caller's book (see app.auth.default_owners)


_EVENT_COLUMNS = (
    Event.id,
    Event.account_id,
    Account.name.label("account_name"),
    Account.owner,
    Event.rule_id,
    Event.rule_name,
    Event.kind,
    Event.severity,
    Event.stage,
    Event.day,
    Event.score,
    Event.config_version,
    Event.trigger_values,
    Event.created_at,
)


def list_events(
    session: Session,
    *,
    filters: EventFilters,
    page: int,
    per_page: int,
    account_id: int | None = None,
    count: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """One page of events, newest first, each with its account's name and owner.

    ``account_id``: only that account's events (``NotFound`` when there is no such account).
    ``count=False``: the total is not counted (``UNCOUNTED``).
    """
    if account_id is not None:
        require_account(session, account_id)
    query = sa.select(*_EVENT_COLUMNS).join(Account, Account.id == Event.account_id)
    if account_id is not None:
        query = query.where(Event.account_id == account_id)
    if filters.since is not None:
        query = query.where(Event.day >= filters.since)
    if filters.kind is not None:
        query = query.where(Event.kind == filters.kind)
    if filters.rule is not None:
        query = query.where(Event.rule_id == filters.rule)
    if filters.stage is not None:
        query = query.where(Event.stage == filters.stage)
    if filters.severity is not None:
        query = query.where(Event.severity == filters.severity)
    if filters.owner is not None:
        query = query.where(Account.owner == filters.owner)
    elif filters.owners is not None:
        query = query.where(Account.owner.in_(filters.owners))
    statement, total = page_of(
        session, query, order_by=(Event.day.desc(), Event.id.desc()), page=page, per_page=per_page, count=count
    )
    return [row._asdict() for row in rows(session, statement)], total


# --- rules --------------------------------------------------------------------------------------


def list_rules(session: Session) -> dict[str, Any]:
    """The active scoring config's event rules, each with its type's parameters and a description."""
    version, model = get_active_model(session)
    items = []
    for rule in model.rules:
        data = rule.to_dict()
        items.append(
            {
                **{key: data[key] for key in ("id", "name", "kind", "severity", "type", "stages")},
                "parameters": {key: value for key, value in data.items() if key not in COMMON_FIELDS},
                "description": describe(rule),
                "notes": rule.description,
            }
        )
    return {"config_version": version, "items": items}
