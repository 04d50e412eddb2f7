"""Reading accounts with their latest score, drivers and score history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Account, DailyUsage, Feedback, HealthScore, LatestScore, LicenseSnapshot, SupportTicket
from app.services.churn_state import churn_note, has_churn_model
from app.services.common import page_of
from app.services.scoring_config.active import load_scored_models
from app.services.watchlist.overrides import live_override
from scoring.bands import Band
from scoring.drivers import explain
from scoring.stage import STAGE_CODE

#: The SQL ordering of each sort the API accepts (``app.schemas.accounts.ACCOUNT_SORTS``).
SORTS = {
    "name": (Account.name.asc(), Account.id.asc()),
    "score": (LatestScore.score.asc().nulls_last(), Account.id.asc()),
    "-score": (LatestScore.score.desc().nulls_last(), Account.id.asc()),
    "arr": (Account.arr.asc(), Account.id.asc()),
    "-arr": (Account.arr.desc(), Account.id.asc()),
    "renewal_date": (Account.renewal_date.asc().nulls_last(), Account.id.asc()),
}


@dataclass(frozen=True, slots=True)
class AccountFilters:
    owner: str | None = None
    owners: tuple[str, ...] | None = None  # the caller's book (see app.auth.default_owners)
    segment: str | None = None
    status: str | None = None
    stage: str | None = None
    band: str | None = None


def _account_fields(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "external_id": account.external_id,
        "name": account.name,
        "owner": account.owner,
        "segment": account.segment,
        "arr": account.arr,
        "contract_start": account.contract_start,
        "renewal_date": account.renewal_date,
        "seats_purchased": account.seats_purchased,
        "billing_term": account.billing_term,
        "plan": account.plan,
        "status": account.status,
    }


def _latest_fields(latest: LatestScore | None) -> dict[str, Any] | None:
    if latest is None:
        return None
    return {
        "day": latest.day,
        "score": latest.score,
        "band": latest.band,
        "stage": latest.stage,
        "completeness": latest.completeness,
        "score_change_7d": latest.score_change_7d,
        "score_change_30d": latest.score_change_30d,
        "config_version": latest.config_version,
    }


def list_accounts(
    session: Session, *, filters: AccountFilters, page: int, per_page: int, sort: str = "name"
) -> tuple[list[dict[str, Any]], int]:
    """One page of accounts with their latest score (reads ``latest_scores``, never history)."""
    query = sa.select(Account, LatestScore).outerjoin(LatestScore, LatestScore.account_id == Account.id)
    if filters.owner is not None:
        query = query.where(Account.owner == filters.owner)
    elif filters.owners is not None:
        query = query.where(Account.owner.in_(filters.owners))
    if filters.segment is not None:
        query = query.where(Account.segment == filters.segment)
    if filters.status is not None:
        query = query.where(Account.status == filters.status)
    if filters.stage is not None:
        query = query.where(LatestScore.stage == filters.stage)
    if filters.band is not None:
        query = query.where(LatestScore.band == filters.band)
    statement, total = page_of(session, query, order_by=SORTS[sort], page=page, per_page=per_page)
    rows = session.execute(statement).all()
    return [{**_account_fields(account), "health": _latest_fields(latest)} for account, latest in rows], total


def get_account(session: Session, account_id: int, *, history_days: int = 90) -> dict[str, Any]:
    """One account: its latest score with drivers, and its score history (newest first).

    Raises ``NotFound`` for an unknown id.
    """
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"Account {account_id} does not exist.")
    latest = session.get(LatestScore, account_id)
    health = _latest_fields(latest)
    if latest is not None and health is not None:
        key = (latest.day, latest.config_version)
        model = load_scored_models(session, {key})[key]
        health["drivers"] = explain(latest.measure_values, STAGE_CODE[latest.stage], model)
    newest = session.scalar(sa.select(sa.func.max(HealthScore.day)).where(HealthScore.account_id == account_id))
    since = (newest or dt.date.min + dt.timedelta(days=history_days)) - dt.timedelta(days=history_days)
    history = session.execute(
        sa.select(
            HealthScore.day,
            HealthScore.score,
            HealthScore.band,
            HealthScore.stage,
            HealthScore.completeness,
            HealthScore.config_version,
            HealthScore.churn_probability,
            HealthScore.expected_arr_at_risk,
            HealthScore.churn_model_version,
        )
        .where(HealthScore.account_id == account_id, HealthScore.day > since)
        .order_by(HealthScore.day.desc())
    ).all()
    override = live_override(session, account_id, dt.datetime.now(dt.UTC))
    probability = None if latest is None else latest.churn_probability
    reasons = None
    if latest is not None and probability is not None:
        from app.services.analysis import churn_reasons  # the learning code: scikit-learn, on demand

        reasons = churn_reasons(
            session, version=latest.churn_model_version, values=latest.churn_values, stage=STAGE_CODE[latest.stage]
        )
    return {
        **_account_fields(account),
        "health": health,
        "churn_probability": probability,
        "expected_arr_at_risk": None if latest is None else latest.expected_arr_at_risk,
        "churn_model_version": None if latest is None else latest.churn_model_version,
        "churn_reasons": reasons,
        "churn_probability_note": None
        if probability is not None
        else churn_note(None, scored=latest is not None, model_exists=has_churn_model(session)),
        # A CSM's live band override, beside the computed band (which stays in ``health``).
        "override": override,
        "effective_band": override["band"] if override else (latest.band if latest else None),
        "history": [row._asdict() for row in history],
    }


def score_series(session: Session, account_ids: list[int], *, since: dt.date) -> dict[int, list[float]]:
    """Each account's daily scores from ``since`` on, oldest first (the watchlist's sparklines): one
    query for the page's accounts, two plain columns (no ORM rows: 50 accounts x 30 days is 1,500)."""
    series: dict[int, list[float]] = {account_id: [] for account_id in account_ids}
    if not account_ids:
        return series
    rows = session.connection().execute(
        sa.select(HealthScore.account_id, HealthScore.score)
        .where(HealthScore.account_id.in_(account_ids), HealthScore.day >= since, HealthScore.score.is_not(None))
        .order_by(HealthScore.account_id, HealthScore.day)
    )
    for account_id, score in rows:
        if score is not None:
            series[account_id].append(score)
    return series


def measure_freshness(session: Session, account_id: int) -> dict[str, dt.date | None]:
    """The newest day of each kind of raw data the account's measures read (how fresh they are)."""
    kinds = {
        "usage": (DailyUsage.day, DailyUsage.account_id),
        "licenses": (LicenseSnapshot.day, LicenseSnapshot.account_id),
        "tickets": (SupportTicket.opened_at, SupportTicket.account_id),
        "feedback": (Feedback.day, Feedback.account_id),
    }
    # One round trip: the account (None when it does not exist) and each kind's newest day.
    newest = [
        sa.select(sa.func.max(day)).where(owner == account_id).scalar_subquery().label(kind)
        for kind, (day, owner) in kinds.items()
    ]
    row = session.execute(sa.select(Account.id, *newest).where(Account.id == account_id)).first()
    if row is None:
        raise NotFound(f"Account {account_id} does not exist.")
    fresh: dict[str, dt.date | None] = {}
    for kind in kinds:
        value = getattr(row, kind)
        fresh[kind] = value.date() if isinstance(value, dt.datetime) else value
    return fresh


def _book(query: Any, owners: tuple[str, ...] | None) -> Any:
    return query if owners is None else query.where(Account.owner.in_(owners))


def latest_scored_day(session: Session) -> dt.date | None:
    """The newest day with a stored score (the day 'now' means for the book's figures)."""
    day: dt.date | None = session.scalar(sa.select(sa.func.max(HealthScore.day)))
    return day


def arr_by_band(session: Session, *, owners: tuple[str, ...] | None, day: dt.date) -> dict[str, dict[str, float]]:
    """Accounts and ARR of a book by computed band on ``day`` (from score history; unscored left out)."""
    rows = session.execute(
        _book(
            sa.select(HealthScore.band, sa.func.count(), sa.func.sum(Account.arr))
            .join(Account, Account.id == HealthScore.account_id)
            .where(HealthScore.day == day, HealthScore.band.is_not(None)),
            owners,
        ).group_by(HealthScore.band)
    ).all()
    found = {band.value if hasattr(band, "value") else str(band): (count, arr) for band, count, arr in rows}
    return {
        band: {"accounts": int(found.get(band, (0, 0))[0]), "arr": float(found.get(band, (0, 0))[1] or 0)}
        for band in ("good", "average", "poor")
    }


def moved_into_poor(
    session: Session, *, owners: tuple[str, ...] | None, since: dt.date, day: dt.date
) -> list[dict[str, Any]]:
    """The book's accounts poor on ``day`` that were not poor on ``since`` (scored both days), ARR first."""
    before = sa.orm.aliased(HealthScore)
    rows = session.execute(
        _book(
            sa.select(Account.id, Account.name, Account.owner, Account.arr, HealthScore.score, before.band)
            .join(HealthScore, HealthScore.account_id == Account.id)
            .join(before, sa.and_(before.account_id == Account.id, before.day == since))
            .where(HealthScore.day == day, HealthScore.band == Band.POOR, before.band != Band.POOR),
            owners,
        ).order_by(Account.arr.desc(), Account.id)
    ).all()
    return [
        {"id": i, "name": n, "owner": o, "arr": a, "score": s, "band_before": getattr(b, "value", b)}
        for i, n, o, a, s, b in rows
    ]


def all_owners(session: Session) -> tuple[str, ...]:
    """Every account owner (the whole portfolio as a book: an admin's digest)."""
    return tuple(sorted(o for o in session.scalars(sa.select(Account.owner).distinct()) if o))
