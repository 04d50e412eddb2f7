"""A frozen copy of the measure step as it was before the measure language (commit 720f9a4):
the oracle the migration test compares the language's default config with. Not used by the app.

Raw measure values for every scored account as of a date, by set-based SQL.

A fixed number of queries per run, whatever the number of accounts: each query aggregates one
raw table per account and returns at most one row per account; numpy aligns the results.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import (
    Account,
    AccountStatus,
    DailyUsage,
    Feedback,
    FeedbackKind,
    Goal,
    GoalStatus,
    LicenseSnapshot,
    Outcome,
    OutcomeKind,
    SupportTicket,
    TicketPriority,
    UsageSignal,
)
from app.pipeline.arrays import align, day_column, fetch_rows, float_columns, scatter

USAGE_WINDOW_DAYS = 30  # current window; the trend compares it with the 30 days before
TICKET_LOOKBACK_DAYS = 365
SLA_WINDOW_DAYS = 90
FEEDBACK_WINDOW_DAYS = 180
#: days_since_last_login when the account has usage but no login in the two usage windows
NO_RECENT_LOGIN_DAYS = 2 * USAGE_WINDOW_DAYS + 1

PRIORITY_WEIGHT = {
    TicketPriority.URGENT: 4.0,
    TicketPriority.HIGH: 2.0,
    TicketPriority.NORMAL: 1.0,
    TicketPriority.LOW: 0.5,
}


@dataclass(frozen=True, slots=True)
class PortfolioMeasures:
    """Every scored account's inputs as of a date, as column arrays in account-id order."""

    as_of: dt.date
    account_id: np.ndarray  # int64, ascending
    arr: np.ndarray  # float64
    contract_start: np.ndarray  # datetime64[D]
    renewal_date: np.ndarray  # datetime64[D], NaT when unknown
    first_value_on: np.ndarray  # datetime64[D], NaT when first value not reached by as_of
    raw: dict[str, np.ndarray]  # measure name -> float64 (n,), NaN where there is no data
    owner: np.ndarray  # object: the account's CSM (None when unassigned)
    ever_used: np.ndarray  # bool: any daily-usage row on or before as_of
    login_days_30d: np.ndarray  # float64: days with a login in the current 30-day window
    # (column, days) -> (sum over the last `days` days, sum over the `days` before), for event rules
    usage_windows: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]

    def matrix(self, names: tuple[str, ...]) -> np.ndarray:
        """The (m, n) raw matrix in the order of ``names`` (a model's measures)."""
        if not names:
            return np.empty((0, self.account_id.size))
        return np.vstack([self.raw[name] for name in names])


def not_churned_by(as_of: dt.date) -> sa.ColumnElement[bool]:
    """Accounts to score as of ``as_of``: not churned, or churned only later (their first churn
    outcome is after ``as_of``), so a back-filled history scores them before they left. A churned
    account without a churn outcome is never scored (when it left is unknown)."""
    first_churn = (
        sa.select(sa.func.min(Outcome.day))
        .where(Outcome.account_id == Account.id, Outcome.kind == OutcomeKind.CHURNED)
        .scalar_subquery()
    )
    return sa.or_(Account.status != AccountStatus.CHURNED, first_churn > as_of)


def compute_measures(
    session: Session,
    *,
    as_of: dt.date,
    first_value_signal: str,
    usage_windows: frozenset[tuple[str, int]] = frozenset(),
    include_churned: bool = False,
) -> PortfolioMeasures:
    """Compute every catalog measure for every account not churned as of ``as_of`` (see
    ``not_churned_by``).

    Nothing dated after ``as_of`` is read. A measure is NaN (no data) when its raw table has
    nothing for the account in the measure's window: no usage row ever (adoption), no license
    snapshot, no ticket in the last year (support), no response in the last 180 days
    (feedback), no goal due or achieved (outcomes). See docs/scoring.md for each definition.
    ``usage_windows`` adds the (column, days) window sums the event rules compare to the same
    pass over daily usage, widening it when a rule's two windows reach further back.
    ``include_churned`` keeps accounts whose status is churned *now* (the status is today's, not
    as of ``as_of``): learning from outcomes observes accounts before they churned.
    """
    # Core execution on the session's connection: these are plain column queries, and the ORM
    # result machinery would only add per-row overhead.
    conn = session.connection()
    _tune_postgresql(conn)
    accounts = _accounts(conn, as_of=as_of, include_churned=include_churned)
    ids = accounts.ids
    first_value_on = _first_value_on(conn, as_of=as_of, signal=first_value_signal, ids=ids)
    usage = _usage(conn, as_of=as_of, accounts=accounts, usage_windows=usage_windows)
    active_user_ratio, trend, key_feature, days_since_login = _usage_measures(as_of, accounts, usage)
    open_load, breaches = _ticket_measures(conn, as_of=as_of, ids=ids)
    nps, csat = _feedback_measures(conn, as_of=as_of, ids=ids)
    goals_ratio = _goal_measures(conn, as_of=as_of, ids=ids)
    raw = {
        "goals_achieved_ratio": goals_ratio,
        "active_user_ratio": active_user_ratio,
        "usage_trend_pct": trend,
        "key_feature_adoption_ratio": key_feature,
        "days_since_last_login": days_since_login,
        "license_utilization_ratio": _license_utilization(accounts),
        "open_ticket_load": open_load,
        "sla_breaches_90d": breaches,
        "nps": nps,
        "csat_avg": csat,
        "csm_sentiment": accounts.sentiment,
    }
    return PortfolioMeasures(
        as_of,
        ids,
        accounts.arr,
        accounts.contract_start,
        accounts.renewal_date,
        first_value_on,
        raw,
        accounts.owner,
        accounts.ever_used,
        usage.login_days,
        usage.window_sums,
    )


def _tune_postgresql(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        # The usage aggregate hashes one entry per account: keep it in memory rather than
        # spilling to disk at the 4 MB default, and skip JIT compilation, which costs more
        # than it saves on these short, simple plans. SET LOCAL ends with the transaction.
        conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))
        conn.execute(sa.text("SET LOCAL jit = off"))


# --- accounts (with their latest license snapshot and CSM sentiment) ----------------------------


@dataclass(frozen=True, slots=True)
class _Accounts:
    """The scored accounts in id order, with what takes one index seek each (one query)."""

    ids: np.ndarray  # int64, ascending
    arr: np.ndarray
    seats: np.ndarray  # seats purchased on the account (NaN when unknown)
    ever_used: np.ndarray  # bool: any daily-usage row on or before as_of
    license_purchased: np.ndarray  # of the latest license snapshot (NaN without one)
    license_active: np.ndarray
    sentiment: np.ndarray  # the latest CSM sentiment within the feedback window
    contract_start: np.ndarray  # datetime64[D]
    renewal_date: np.ndarray  # datetime64[D]
    owner: np.ndarray  # object


def _accounts(conn: sa.Connection, *, as_of: dt.date, include_churned: bool) -> _Accounts:
    """The accounts to score, with whether they ever had usage, their latest license snapshot and
    their CSM's latest sentiment (latest-per-account by correlated subquery is portable and beats
    a GROUP BY + join on both databases)."""
    has_usage = sa.select(sa.literal(1)).where(DailyUsage.account_id == Account.id, DailyUsage.day <= as_of).exists()
    rows = fetch_rows(
        conn,
        sa.select(
            Account.id,
            Account.arr,
            Account.seats_purchased,
            sa.case((has_usage, 1), else_=0),
            _latest_license(LicenseSnapshot.seats_purchased, as_of),
            _latest_license(LicenseSnapshot.seats_active, as_of),
            _latest_sentiment(as_of),
            Account.contract_start,
            Account.renewal_date,
            Account.owner,
        )
        .where(sa.true() if include_churned else not_churned_by(as_of))
        .order_by(Account.id),
    )
    ids, arr, seats, usage, purchased, active, sentiment = float_columns([r[:7] for r in rows], 7)
    return _Accounts(
        ids=ids.astype(np.int64),
        arr=arr,
        seats=seats,
        ever_used=usage > 0,
        license_purchased=purchased,
        license_active=active,
        sentiment=sentiment,
        contract_start=day_column(rows, 7),
        renewal_date=day_column(rows, 8),
        owner=np.array([r[9] for r in rows], dtype=object),
    )


def _latest_license(column: Any, as_of: dt.date) -> sa.ScalarSelect[int]:
    return (
        sa.select(column)
        .where(LicenseSnapshot.account_id == Account.id, LicenseSnapshot.day <= as_of)
        .order_by(LicenseSnapshot.day.desc())
        .limit(1)
        .scalar_subquery()
    )


def _latest_sentiment(as_of: dt.date) -> sa.ScalarSelect[Any]:
    return (
        sa.select(Feedback.score)
        .where(
            Feedback.account_id == Account.id,
            Feedback.kind == FeedbackKind.CSM_SENTIMENT,
            Feedback.day > as_of - dt.timedelta(days=FEEDBACK_WINDOW_DAYS),
            Feedback.day <= as_of,
        )
        .order_by(Feedback.day.desc(), Feedback.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _license_utilization(accounts: _Accounts) -> np.ndarray:
    """Active over purchased seats of the latest snapshot on or before as_of (the account's own
    seat count when the snapshot has none)."""
    seats, purchased = accounts.seats, accounts.license_purchased
    purchased = np.where(np.isnan(purchased) | (purchased <= 0), np.where(seats > 0, seats, np.nan), purchased)
    with np.errstate(invalid="ignore", divide="ignore"):
        return accounts.license_active / purchased


# --- usage signals: first value ------------------------------------------------------------------


def _first_value_on(conn: sa.Connection, *, as_of: dt.date, signal: str, ids: np.ndarray) -> np.ndarray:
    """The first day of the configured product signal (NaT when not reached by as_of)."""
    rows = fetch_rows(
        conn,
        sa.select(UsageSignal.account_id, sa.func.min(UsageSignal.day))
        .where(UsageSignal.signal == signal, UsageSignal.day <= as_of)
        .group_by(UsageSignal.account_id),
    )
    first_value_on = np.full(ids.size, np.datetime64("NaT"), dtype="datetime64[D]")
    if rows:
        (found,) = float_columns([(r[0],) for r in rows], 1)
        pos, ok = align(ids, found.astype(np.int64))
        first_value_on[pos[ok]] = day_column(rows, 1)[ok]
    return first_value_on


# --- daily usage ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RuleWindows:
    """The event rules' (column, days) usage windows as extra sums in the daily-usage pass."""

    windows: list[tuple[str, int]]  # sorted
    #: Where each window's two sums come from: a name of the base sums, or an index into ``extra``.
    sources: list[tuple[str | int, str | int]]
    extra: list[sa.ColumnElement[Any]]
    scan_days: int  # how far back the pass reads


#: The measures' own 30-day sums serve rules on the same window, so those cost nothing more.
_BASE_CURRENT = {"active_users": "cur", "logins": "logins", "key_feature_uses": "key_uses"}


def _rule_windows(as_of: dt.date, usage_windows: frozenset[tuple[str, int]]) -> _RuleWindows:
    windows = sorted(usage_windows)
    scan_days = max([2 * USAGE_WINDOW_DAYS, *(2 * days for _, days in windows)])
    extra: list[sa.ColumnElement[Any]] = []
    sources: list[tuple[str | int, str | int]] = []
    for column, days in windows:
        value = getattr(DailyUsage, column)
        boundary = as_of - dt.timedelta(days=days)
        before = sa.and_(DailyUsage.day <= boundary, DailyUsage.day > boundary - dt.timedelta(days=days))
        current: str | int
        previous: str | int
        if days == USAGE_WINDOW_DAYS:
            current = _BASE_CURRENT[column]
        else:
            current = len(extra)
            extra.append(sa.func.sum(sa.case((DailyUsage.day > boundary, value), else_=0)))
        if days == USAGE_WINDOW_DAYS and column == "active_users":
            previous = "prev"
        else:
            previous = len(extra)
            extra.append(sa.func.sum(sa.case((before, value), else_=0)))
        sources.append((current, previous))
    return _RuleWindows(windows, sources, extra, scan_days)


def _usage_statement(as_of: dt.date, rules: _RuleWindows) -> sa.Select[Any]:
    """Usage over the last two 30-day windows (the heaviest query: one pass, conditional sums),
    plus the rules' window sums; columns: account, current and previous active users, current
    logins, key-feature uses and login days, rows in the windows, ``rules.extra``, last login."""
    window_start = as_of - dt.timedelta(days=2 * USAGE_WINDOW_DAYS)
    in_current = DailyUsage.day > as_of - dt.timedelta(days=USAGE_WINDOW_DAYS)
    if rules.scan_days > 2 * USAGE_WINDOW_DAYS:
        in_windows: sa.ColumnElement[bool] = DailyUsage.day > window_start
        in_previous = sa.and_(in_windows, ~in_current)
        last_login_case = sa.case((sa.and_(in_windows, DailyUsage.logins > 0), DailyUsage.day), else_=None)
        rows_in_windows: sa.ColumnElement[Any] = sa.func.sum(sa.case((in_windows, 1), else_=0))
    else:  # the scan is the two windows: no extra condition in the hot aggregate
        in_previous = ~in_current
        last_login_case = sa.case((DailyUsage.logins > 0, DailyUsage.day), else_=None)
        rows_in_windows = sa.func.count()
    return (
        sa.select(
            DailyUsage.account_id,
            sa.func.sum(sa.case((in_current, DailyUsage.active_users), else_=0)),
            sa.func.sum(sa.case((in_previous, DailyUsage.active_users), else_=0)),
            sa.func.sum(sa.case((in_current, DailyUsage.logins), else_=0)),
            sa.func.sum(sa.case((in_current, DailyUsage.key_feature_uses), else_=0)),
            sa.func.sum(sa.case((sa.and_(in_current, DailyUsage.logins > 0), 1), else_=0)),
            rows_in_windows,
            *rules.extra,
            sa.func.max(last_login_case),
        )
        .where(DailyUsage.day > as_of - dt.timedelta(days=rules.scan_days), DailyUsage.day <= as_of)
        .group_by(DailyUsage.account_id)
    )


@dataclass(frozen=True, slots=True)
class _Usage:
    """Daily usage per account in the run's order; accounts with usage history but no row in
    the two 30-day windows had no activity (zeros), accounts without usage ever are NaN."""

    in_window: np.ndarray  # bool: a row in the two 30-day windows
    current_active: np.ndarray  # active users summed over the current window
    previous_active: np.ndarray  # and over the window before
    logins: np.ndarray
    key_uses: np.ndarray
    last_login: np.ndarray  # datetime64[D], NaT without a login in the scanned days
    login_days: np.ndarray  # days with a login in the current window
    window_sums: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]  # the rules' windows


def _usage(
    conn: sa.Connection, *, as_of: dt.date, accounts: _Accounts, usage_windows: frozenset[tuple[str, int]]
) -> _Usage:
    ids = accounts.ids
    rules = _rule_windows(as_of, usage_windows)
    rows = fetch_rows(conn, _usage_statement(as_of, rules))
    width = 7 + len(rules.extra)
    u_ids, u_cur, u_prev, u_logins, u_kf, u_login_days, u_rows, *u_extra = float_columns(
        [r[:width] for r in rows], width
    )
    u_ids = u_ids.astype(np.int64)
    in_window = np.isin(ids, u_ids[u_rows > 0])
    zero_if_used = np.where(accounts.ever_used, 0.0, np.nan)
    last_login = np.full(ids.size, np.datetime64("NaT"), dtype="datetime64[D]")
    if rows:
        pos, ok = align(ids, u_ids)
        last_login[pos[ok]] = day_column(rows, width)[ok]
    base = {"cur": u_cur, "prev": u_prev, "logins": u_logins, "key_uses": u_kf}

    def window_sum(source: str | int) -> np.ndarray:
        return scatter(ids, u_ids, base[source] if isinstance(source, str) else u_extra[source], fill=0.0)

    return _Usage(
        in_window=in_window,
        current_active=np.where(in_window, scatter(ids, u_ids, u_cur), zero_if_used),
        previous_active=np.where(in_window, scatter(ids, u_ids, u_prev), zero_if_used),
        logins=np.where(in_window, scatter(ids, u_ids, u_logins), zero_if_used),
        key_uses=np.where(in_window, scatter(ids, u_ids, u_kf), zero_if_used),
        last_login=last_login,
        login_days=np.where(in_window, scatter(ids, u_ids, u_login_days), zero_if_used),
        window_sums={
            key: (window_sum(current), window_sum(previous))
            for key, (current, previous) in zip(rules.windows, rules.sources, strict=True)
        },
    )


def _usage_measures(
    as_of: dt.date, accounts: _Accounts, usage: _Usage
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Active-user ratio, usage trend %, key-feature adoption ratio and days since last login."""
    as_of_day = np.datetime64(as_of, "D")
    ever_used, seats = accounts.ever_used, accounts.seats
    cur_active, prev_active = usage.current_active, usage.previous_active
    days_since_start = (as_of_day - accounts.contract_start).astype(np.int64)
    # Young accounts: average over the days since contract start, not the whole window.
    days_in_window = np.clip(days_since_start + 1, 1, USAGE_WINDOW_DAYS).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        active_user_ratio = np.where(seats > 0, cur_active / days_in_window / seats, np.nan)
        # Rows in the windows but no active users in either: flat (0 %); usage history but no row
        # in the windows: it fell away (-100 %). Accounts younger than both windows have no trend.
        trend = np.where(
            prev_active > 0,
            (cur_active - prev_active) / prev_active * 100.0,
            np.where(cur_active > 0, 100.0, np.where(usage.in_window, 0.0, -100.0)),
        )
        trend = np.where(ever_used & (days_since_start >= 2 * USAGE_WINDOW_DAYS), trend, np.nan)
        key_feature = np.where(usage.logins > 0, usage.key_uses / usage.logins, np.where(ever_used, 0.0, np.nan))
    days_since_login = np.where(
        np.isnat(usage.last_login),
        np.where(ever_used, float(NO_RECENT_LOGIN_DAYS), np.nan),
        (as_of_day - usage.last_login).astype(np.int64).astype(np.float64),
    )
    return active_user_ratio, trend, key_feature, days_since_login


# --- support tickets, feedback, goals ------------------------------------------------------------


def _ticket_measures(conn: sa.Connection, *, as_of: dt.date, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Open load by priority as of the date, and SLA breaches in 90 days (tickets of the last year)."""
    end_ts = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    ticket_since = dt.datetime.combine(as_of - dt.timedelta(days=TICKET_LOOKBACK_DAYS), dt.time(), tzinfo=dt.UTC)
    sla_since = end_ts - dt.timedelta(days=SLA_WINDOW_DAYS)
    is_open = sa.and_(
        SupportTicket.opened_at < end_ts,
        sa.or_(SupportTicket.closed_at.is_(None), SupportTicket.closed_at >= end_ts),
    )
    priority_weight = sa.case(
        *((SupportTicket.priority == p, sa.literal(w, sa.Float)) for p, w in PRIORITY_WEIGHT.items()),
        else_=sa.literal(1.0, sa.Float),
    )
    rows = fetch_rows(
        conn,
        sa.select(
            SupportTicket.account_id,
            sa.func.sum(sa.case((is_open, priority_weight), else_=sa.literal(0.0, sa.Float))),
            sa.func.sum(
                sa.case((sa.and_(SupportTicket.sla_breached, SupportTicket.opened_at >= sla_since), 1), else_=0)
            ),
        )
        .where(SupportTicket.opened_at >= ticket_since, SupportTicket.opened_at < end_ts)
        .group_by(SupportTicket.account_id),
    )
    t_ids, t_load, t_breaches = float_columns(rows, 3)
    return scatter(ids, t_ids.astype(np.int64), t_load), scatter(ids, t_ids.astype(np.int64), t_breaches)


def _feedback_measures(conn: sa.Connection, *, as_of: dt.date, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Account NPS and CSAT average over the last 180 days (sentiment comes with the accounts)."""
    nps_kind = Feedback.kind == FeedbackKind.NPS
    csat_kind = Feedback.kind == FeedbackKind.CSAT
    rows = fetch_rows(
        conn,
        sa.select(
            Feedback.account_id,
            sa.func.sum(sa.case((sa.and_(nps_kind, Feedback.score >= 9), 1), else_=0)),
            sa.func.sum(sa.case((sa.and_(nps_kind, Feedback.score <= 6), 1), else_=0)),
            sa.func.sum(sa.case((nps_kind, 1), else_=0)),
            sa.func.avg(sa.case((csat_kind, Feedback.score), else_=None)),
        )
        .where(Feedback.day > as_of - dt.timedelta(days=FEEDBACK_WINDOW_DAYS), Feedback.day <= as_of)
        .group_by(Feedback.account_id),
    )
    f_ids, f_pro, f_det, f_n, f_csat = float_columns(rows, 5)
    f_ids = f_ids.astype(np.int64)
    nps_n = scatter(ids, f_ids, f_n, fill=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nps = np.where(
            nps_n > 0,
            (scatter(ids, f_ids, f_pro) - scatter(ids, f_ids, f_det)) / nps_n * 100.0,
            np.nan,
        )
    return nps, scatter(ids, f_ids, f_csat)


def _goal_measures(conn: sa.Connection, *, as_of: dt.date, ids: np.ndarray) -> np.ndarray:
    """Success-plan goals: achieved out of achieved, missed or due by the date."""
    achieved = sa.and_(Goal.achieved_on.is_not(None), Goal.achieved_on <= as_of)
    due = sa.or_(achieved, sa.and_(Goal.due_on.is_not(None), Goal.due_on <= as_of))
    rows = fetch_rows(
        conn,
        sa.select(
            Goal.account_id,
            sa.func.sum(sa.case((achieved, 1), else_=0)),
            sa.func.sum(sa.case((due, 1), else_=0)),
        )
        .where(Goal.created_on <= as_of, Goal.status != GoalStatus.CANCELLED)
        .group_by(Goal.account_id),
    )
    g_ids, g_achieved, g_due = float_columns(rows, 3)
    g_ids = g_ids.astype(np.int64)
    goals_due = scatter(ids, g_ids, g_due, fill=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(goals_due > 0, scatter(ids, g_ids, g_achieved) / goals_due, np.nan)
