"""What a measure can be built from: the sources of the measure language with the data the
portfolio holds for each (records, accounts, first and last day), and every product signal seen.

A handful of aggregate queries (one per raw table, one grouped by signal), whatever the portfolio.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Account, DailyUsage, Feedback, Goal, LicenseSnapshot, SupportTicket, UsageSignal
from scoring.measures import PERS, SIGNAL_SOURCE, SOURCES, TRANSFORMS, Form, Mapping01, Missing

_TABLE_STATS = {
    "usage": (DailyUsage, DailyUsage.day),
    "license": (LicenseSnapshot, LicenseSnapshot.day),
    "tickets": (SupportTicket, SupportTicket.opened_at),
    "goals": (Goal, Goal.created_on),
}
_ACCOUNT_FIELDS = {
    "account.tenure_days": Account.contract_start,
    "account.arr": Account.arr,
    "account.seats": Account.seats_purchased,
    "account.days_to_renewal": Account.renewal_date,
}


def _day(value: Any) -> str | None:
    return None if value is None else str(value)[:10]


def _stats(session: Session, table: Any, day: Any, *where: Any) -> dict[str, Any]:
    records, accounts, first, last = session.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(table.account_id)), sa.func.min(day), sa.func.max(day))
        .select_from(table)
        .where(*where)
    ).one()
    return {"records": records, "accounts": accounts, "first_day": _day(first), "last_day": _day(last)}


def measure_catalog(session: Session) -> dict[str, Any]:
    """The sources (with their aggregates and data), the product signals seen, and the language's
    options, for an admin building measures (see docs/scoring.md)."""
    by_family = {family: _stats(session, table, day) for family, (table, day) in _TABLE_STATS.items()}
    feedback = {
        kind.value: {"records": n, "accounts": accounts, "first_day": _day(first), "last_day": _day(last)}
        for kind, n, accounts, first, last in session.execute(
            sa.select(
                Feedback.kind,
                sa.func.count(),
                sa.func.count(sa.distinct(Feedback.account_id)),
                sa.func.min(Feedback.day),
                sa.func.max(Feedback.day),
            ).group_by(Feedback.kind)
        )
    }
    total_accounts = session.scalar(sa.select(sa.func.count()).select_from(Account)) or 0
    sources = []
    for name, info in SOURCES.items():
        if info.family == "feedback":
            data = feedback.get(
                name.split(".", 1)[1], {"records": 0, "accounts": 0, "first_day": None, "last_day": None}
            )
        elif info.family == "account":
            column = _ACCOUNT_FIELDS[name]
            known = session.scalar(sa.select(sa.func.count()).select_from(Account).where(column.is_not(None))) or 0
            data = {"records": known, "accounts": known, "first_day": None, "last_day": None}
        else:
            data = by_family[info.family]
        sources.append(_source(name, info, data))
    rows = session.execute(
        sa.select(
            UsageSignal.signal,
            sa.func.count(),
            sa.func.count(sa.distinct(UsageSignal.account_id)),
            sa.func.sum(UsageSignal.count),
            sa.func.min(UsageSignal.day),
            sa.func.max(UsageSignal.day),
        )
        .group_by(UsageSignal.signal)
        .order_by(UsageSignal.signal)
    )
    signals = [
        {
            **_source(
                f"signal.{signal}",
                SIGNAL_SOURCE,
                {"records": n, "accounts": accounts, "first_day": _day(first), "last_day": _day(last)},
            ),
            "signal": signal,
            "events": int(events or 0),
        }
        for signal, n, accounts, events, first, last in rows
    ]
    return {
        "accounts": total_accounts,
        "sources": sources,
        "signals": signals,
        "options": {
            "per": list(PERS),
            "form": [f.value for f in Form],
            "transform": list(TRANSFORMS),
            "missing": [m.value for m in Missing],
            "mapping": [m.value for m in Mapping01],
        },
    }


def _source(name: str, info: Any, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": name,
        "family": info.family,
        "aggregates": list(info.aggregates),
        "windowed": info.windowed,
        "daily": info.daily,
        "description": info.description or "A named product signal: events per day.",
        **data,
    }
