"""Raw measure values for every scored account as of a date, by set-based SQL.

The config's measures (``scoring.measures``) are grouped by source table; each table is read by
one statement of conditional aggregates over the widest window its measures need
(``app/pipeline/sources.py``), plus one per table for ``latest`` values, whatever the number of
accounts or measures. numpy aligns the results and derives each measure's value.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Account, AccountStatus, DailyUsage, Outcome, OutcomeKind, SupportTicket, UsageSignal
from app.pipeline.accounts import AccountsAsOf, accounts_as_of
from app.pipeline.arrays import align, day_column, fetch_rows, float_columns, scatter
from app.pipeline.sources import (
    Need,
    Values,
    reach_of,
    read_feedback,
    read_goals,
    read_license,
    read_signals,
    read_tickets,
    read_usage,
)
from scoring.measures import Form, Measure, finish_values, source_info
from scoring.model import ScoringModel

#: The ``login_days_30d`` fact of the event rules: days with a login in the last 30 days.
LOGIN_DAYS_WINDOW = 30
_USAGE_FIELDS = {
    "usage.active_users": "active_users",
    "usage.logins": "logins",
    "usage.key_feature_uses": "key_feature_uses",
}
_LICENSE_FIELDS = {
    "license.purchased": "seats_purchased",
    "license.assigned": "seats_assigned",
    "license.active": "seats_active",
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
    # As of the day (app/pipeline/accounts.py): object arrays of str or None (None: not known at all).
    term: np.ndarray | None = None  # the billing term (BillingTerm value)
    plan: np.ndarray | None = None
    segment: np.ndarray | None = None

    def matrix(self, names: tuple[str, ...]) -> np.ndarray:
        """The (m, n) raw matrix in the order of ``names`` (a model's measures)."""
        if not names:
            return np.empty((0, self.account_id.size))
        return np.vstack([self.raw[name] for name in names])


def not_churned_by(as_of: dt.date) -> sa.ColumnElement[bool]:
    """Accounts to score as of ``as_of``: customers by then (their contract started on or before
    it) and not churned, or churned only later (their first churn outcome is after ``as_of``), so a
    back-filled history scores them before they left, and not before they arrived. A churned
    account without a churn outcome is never scored (when it left is unknown)."""
    first_churn = (
        sa.select(sa.func.min(Outcome.day))
        .where(Outcome.account_id == Account.id, Outcome.kind == OutcomeKind.CHURNED)
        .scalar_subquery()
    )
    return sa.and_(
        Account.contract_start <= as_of, sa.or_(Account.status != AccountStatus.CHURNED, first_churn > as_of)
    )


def compute_measures(
    session: Session,
    *,
    as_of: dt.date,
    model: ScoringModel,
    usage_windows: frozenset[tuple[str, int]] = frozenset(),
    include_churned: bool = False,
) -> PortfolioMeasures:
    """Compute ``model``'s measures for every account not churned as of ``as_of`` (see
    ``not_churned_by``).

    Nothing dated after ``as_of`` is read. A measure is NaN (no data) as docs/scoring.md defines
    per source (no usage row ever, no signal row ever, no ticket within ``data_days``...).
    ``usage_windows`` adds the (column, days) window sums the event rules compare to the same pass
    over daily usage. ``include_churned`` keeps accounts whose status is churned *now* (the status
    is today's, not as of ``as_of``): learning from outcomes observes accounts before they churned.
    """
    (portfolio,) = compute_measures_over(
        session, dates=[as_of], model=model, usage_windows=usage_windows, include_churned=include_churned
    )
    return portfolio


def compute_measures_over(
    session: Session,
    *,
    dates: Sequence[dt.date],
    model: ScoringModel,
    usage_windows: frozenset[tuple[str, int]] = frozenset(),
    include_churned: bool = False,
) -> Iterator[PortfolioMeasures]:
    """``compute_measures`` on each of ``dates`` in turn (learning's observation dates): the same
    values as one call per date, with what does not depend on the date read once for them all (the
    first day of each account's signals, tickets and first value; the first usage day of the
    accounts with no usage row in a date's scan). A generator: one date's arrays at a time."""
    # Core execution on the session's connection: these are plain column queries, and the ORM
    # result machinery would only add per-row overhead.
    conn = session.connection()
    _tune_postgresql(conn)
    plan = _Plan.of(model.measures, usage_windows)
    usage_needs = set(plan.needs["usage"])
    scanned = Need("rows", "", reach_of(n for n in usage_needs if n.op != "latest"))
    usage_needs.add(scanned)  # an account with a row in the scan has used the product by the day
    signal_from = _first_days(conn, UsageSignal.day, UsageSignal.account_id) if plan.signals_ever else None
    tickets_from = _first_days(conn, SupportTicket.opened_at, SupportTicket.account_id) if plan.tickets_ever else None
    last = max(dates, default=None)
    first_value = _first_value_days(conn, as_of=last, signal=model.stage_rules.first_value_signal) if last else None
    used_from: dict[int, float] = {}  # first usage day (epoch seconds) of the accounts probed so far
    for day in dates:
        dated = accounts_as_of(conn, as_of=day, include_churned=include_churned)
        ids = dated.ids
        usage = read_usage(conn, as_of=day, ids=ids, needs=usage_needs)
        in_scan = usage[scanned] > 0
        ever_used = in_scan | _used_by(conn, ids[~in_scan], day, used_from, ids)
        needs = plan.needs
        read = _Read(
            usage=usage,
            signal=read_signals(conn, as_of=day, ids=ids, needs=needs["signal"]) if needs["signal"] else {},
            tickets=read_tickets(conn, as_of=day, ids=ids, needs=needs["tickets"]) if needs["tickets"] else {},
            feedback=read_feedback(conn, as_of=day, ids=ids, needs=needs["feedback"]) if needs["feedback"] else {},
            license=read_license(conn, as_of=day, ids=ids, needs=needs["license"]) if needs["license"] else {},
            goals=read_goals(conn, as_of=day, ids=ids) if plan.goals else None,
            signals_ever=None if signal_from is None else _on_or_before(signal_from, ids, day),
            tickets_ever=None if tickets_from is None else _on_or_before(tickets_from, ids, day),
        )
        yield _portfolio(
            day,
            _Accounts.of(dated, ever_used),
            read,
            model=model,
            usage_windows=usage_windows,
            first_value_on=_first_value_on(first_value, ids, day),
        )


def _portfolio(
    as_of: dt.date,
    accounts: _Accounts,
    read: _Read,
    *,
    model: ScoringModel,
    usage_windows: frozenset[tuple[str, int]],
    first_value_on: np.ndarray,
) -> PortfolioMeasures:
    ctx = _Context(as_of, accounts, read)
    base = {m.name: _base_value(m, ctx) for m in model.measures if m.ratio is None}
    raw = finish_values(model.measures, base)
    usage = read.usage
    login_days = _fill(usage[Need("days", "logins", LOGIN_DAYS_WINDOW)], accounts.ever_used)
    windows = {
        (column, days): (
            _fill(usage[Need("sum", column, days)], accounts.ever_used, zero_without_data=True),
            _fill(usage[Need("sum", column, days, days)], accounts.ever_used, zero_without_data=True),
        )
        for column, days in usage_windows
    }
    return PortfolioMeasures(
        as_of,
        accounts.ids,
        accounts.arr,
        accounts.contract_start,
        accounts.renewal_date,
        first_value_on,
        raw,
        accounts.owner,
        accounts.ever_used,
        login_days,
        windows,
        term=accounts.term,
        plan=accounts.plan,
        segment=accounts.segment,
    )


def _tune_postgresql(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        # The usage aggregate hashes one entry per account: keep it in memory rather than
        # spilling to disk at the 4 MB default, and skip JIT compilation, which costs more
        # than it saves on these short, simple plans. SET LOCAL ends with the transaction.
        conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))
        conn.execute(sa.text("SET LOCAL jit = off"))


# --- the plan: which aggregates each table must give -------------------------------------------


@dataclass(slots=True)
class _Plan:
    """The aggregates the measures need, per table family, and the "ever" probes."""

    needs: dict[str, set[Need]] = field(default_factory=lambda: defaultdict(set))
    signals_ever: bool = False
    tickets_ever: bool = False
    goals: bool = False  # goal measures are read whole (achieved and due), not as needs

    @classmethod
    def of(cls, measures: tuple[Measure, ...], usage_windows: frozenset[tuple[str, int]]) -> _Plan:
        plan = cls()
        plan.needs["usage"].add(Need("days", "logins", LOGIN_DAYS_WINDOW))
        for column, days in usage_windows:
            plan.needs["usage"].update({Need("sum", column, days), Need("sum", column, days, days)})
        for m in measures:
            if m.ratio is None:
                for family, need in _needs_of(m):
                    plan.needs[family].add(need)
                info = source_info(m.source)
                plan.goals |= info is not None and info.family == "goals"
                if info is not None and m.data_days is None:
                    plan.signals_ever |= info.family == "signal"
                    plan.tickets_ever |= info.family == "tickets"
        return plan


def _series(m: Measure) -> tuple[str, str, str]:
    """(family, field, key) of a daily-series measure."""
    if m.source.startswith("signal."):
        return "signal", "count", m.source[len("signal.") :]
    return "usage", _USAGE_FIELDS[m.source], ""


_SERIES_OP = {"sum": "sum", "count": "sum", "mean": "sum", "active_days": "days", "max": "max", "latest": "latest"}
_FEEDBACK_OPS = {"nps": ("n", "promoters", "detractors"), "mean": ("n", "sum"), "count": ("n",), "max": ("max",)}


def _needs_of(m: Measure) -> list[tuple[str, Need]]:
    """The (family, need) pairs one source measure reads."""
    info = source_info(m.source)
    assert info is not None, m.source
    n, aggregate = m.window_days, m.effective_aggregate
    out: list[tuple[str, Need]] = []
    if info.daily:
        family, column, key = _series(m)
        if m.form is Form.DAYS_SINCE:
            out.append((family, Need("last", column, n, 0, key)))
        else:
            out.append((family, Need(_SERIES_OP[aggregate], column, n, 0, key)))
        if m.form in (Form.CHANGE_PCT, Form.CHANGE_DIFF):
            assert n is not None
            out += [(family, Need(_SERIES_OP[aggregate], column, n, n, key)), (family, Need("rows", "", 2 * n, 0, key))]
        if m.data_days is not None:
            out.append((family, Need("rows", "", m.data_days, 0, key)))
    elif info.family == "tickets":
        out += _ticket_needs(m)
    elif info.family == "feedback":
        kind = m.source.split(".", 1)[1]
        ops = ("last",) if m.form is Form.DAYS_SINCE else _FEEDBACK_OPS.get(aggregate, (aggregate,))
        out += [("feedback", Need(op, "", n, 0, kind)) for op in ops]
        if m.data_days is not None:
            out.append(("feedback", Need("n", "", m.data_days, 0, kind)))
    elif info.family == "license":
        out.append(("license", Need(aggregate, _LICENSE_FIELDS[m.source], n)))
    if m.per in ("login", "active_user"):
        column = "logins" if m.per == "login" else "active_users"
        out.append(("usage", Need("sum", column, n)))
    if m.per == "licensed_seat":
        out.append(("license", Need("latest", "seats_purchased", None)))
    return out


def _ticket_needs(m: Measure) -> list[tuple[str, Need]]:
    key = ",".join(sorted(m.priority))
    n, field_name = m.window_days, m.source.split(".", 1)[1]
    if m.form is Form.DAYS_SINCE:
        ops: tuple[str, ...] = ("last",)
    elif field_name == "days_to_close":
        ops = ("close_days_sum", "closed") if m.effective_aggregate == "mean" else ("close_days_max",)
    else:
        ops = (field_name,)
    out = [("tickets", Need(op, "", n, 0, key)) for op in ops]
    if m.data_days is not None:
        out.append(("tickets", Need("rows", "", m.data_days)))
    return out


@dataclass(frozen=True, slots=True)
class _Read:
    usage: Values
    signal: Values
    tickets: Values
    feedback: Values
    license: Values
    goals: tuple[np.ndarray, np.ndarray] | None
    signals_ever: np.ndarray | None
    tickets_ever: np.ndarray | None


# --- first days: whether an account had any row by a date ---------------------------------------------


#: Accounts looked up at a time by id (a bounded IN list on both databases).
_ID_CHUNK = 5_000


def _first_days(conn: sa.Connection, day: Any, account_id: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every account's first ``day`` (a date or a timestamp) in a table: (account ids ascending,
    epoch seconds of the first day or moment), one grouped pass."""
    rows = fetch_rows(conn, sa.select(account_id, sa.func.min(day)).group_by(account_id).order_by(account_id))
    found = np.array([r[0] for r in rows], dtype=np.int64)
    return found, _epoch_seconds([r[1] for r in rows])


def _epoch_seconds(values: list[Any]) -> np.ndarray:
    """Dates (PostgreSQL ``date``, SQLite ISO text) or timestamps as epoch seconds (UTC)."""
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        v = value
        if v is None:
            out[i] = np.nan
            continue
        if isinstance(v, str):
            v = dt.datetime.fromisoformat(v) if len(v) > 10 else dt.date.fromisoformat(v)
        if isinstance(v, dt.datetime):
            out[i] = (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp()
        else:
            out[i] = (v.toordinal() - _EPOCH_ORDINAL) * 86400.0
    return out


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _on_or_before(first: tuple[np.ndarray, np.ndarray] | None, ids: np.ndarray, day: dt.date) -> np.ndarray:
    """Per account of ``ids``: its first row (``_first_days``) is on or before ``day``."""
    if first is None:
        return np.zeros(ids.size, dtype=bool)
    found, seconds = first
    end = (day.toordinal() - _EPOCH_ORDINAL + 1) * 86400.0  # the first moment after the day
    return scatter(ids, found, (seconds < end).astype(np.float64), fill=0.0) > 0


def _used_by(
    conn: sa.Connection, missing: np.ndarray, day: dt.date, known: dict[int, float], ids: np.ndarray
) -> np.ndarray:
    """Per account of ``ids``: whether one of ``missing`` (accounts without a usage row in the day's
    scan) has a usage row on or before ``day``, from its first usage day: an index seek each for the
    accounts not looked up before (``known`` keeps them, NaN when they have no usage at all)."""
    new = [int(a) for a in missing.tolist() if int(a) not in known]
    first = sa.select(sa.func.min(DailyUsage.day)).where(DailyUsage.account_id == Account.id).scalar_subquery()
    for start in range(0, len(new), _ID_CHUNK):
        chunk = new[start : start + _ID_CHUNK]
        rows = fetch_rows(conn, sa.select(Account.id, first).where(Account.id.in_(chunk)))
        seconds = _epoch_seconds([r[1] for r in rows])
        known.update({int(r[0]): s for r, s in zip(rows, seconds, strict=True)})
        known.update({a: np.nan for a in chunk if a not in known})
    if not missing.size:
        return np.zeros(ids.size, dtype=bool)
    end = (day.toordinal() - _EPOCH_ORDINAL + 1) * 86400.0
    firsts = np.array([known[int(a)] for a in missing.tolist()], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        used = firsts < end
    return scatter(ids, missing.astype(np.int64), used.astype(np.float64), fill=0.0) > 0


# --- values: one measure from what was read --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    as_of: dt.date
    accounts: _Accounts
    read: _Read

    @property
    def days_since_start(self) -> np.ndarray:
        return (np.datetime64(self.as_of, "D") - self.accounts.contract_start).astype(np.int64)

    def days_in_window(self, n: int) -> np.ndarray:
        """Days of an ``n``-day window the account had (young accounts: since contract start)."""
        return np.clip(self.days_since_start + 1, 1, n).astype(np.float64)


def _fill(values: np.ndarray, has_data: np.ndarray, *, zero_without_data: bool = False) -> np.ndarray:
    """Accounts with data but no row in the window have 0; accounts without data NaN."""
    filled = np.where(np.isnan(values), 0.0, values)
    return filled if zero_without_data else np.where(has_data, filled, np.nan)


def _base_value(m: Measure, ctx: _Context) -> np.ndarray:
    family = source_info(m.source).family  # type: ignore[union-attr]
    if family in ("usage", "signal"):
        value = _series_value(m, ctx)
    elif family == "tickets":
        value = _ticket_value(m, ctx)
    elif family == "feedback":
        value = _feedback_value(m, ctx)
    elif family == "license":
        value = ctx.read.license[Need(m.effective_aggregate, _LICENSE_FIELDS[m.source], m.window_days)]
    elif family == "goals":
        value = _goal_value(m, ctx)
    else:
        value = _account_value(m, ctx)
    return _normalise(m, value, ctx)


def _has_data(m: Measure, ctx: _Context, values: Values, key: str = "") -> np.ndarray:
    family = source_info(m.source).family  # type: ignore[union-attr]
    if m.data_days is not None:
        op = "n" if family == "feedback" else "rows"
        return values[Need(op, "", m.data_days, 0, key)] > 0
    if family == "signal":
        assert ctx.read.signals_ever is not None
        return ctx.read.signals_ever
    if family == "tickets":
        assert ctx.read.tickets_ever is not None
        return ctx.read.tickets_ever
    return ctx.accounts.ever_used


def _series_value(m: Measure, ctx: _Context) -> np.ndarray:
    family, column, key = _series(m)
    values = ctx.read.usage if family == "usage" else ctx.read.signal
    has = _has_data(m, ctx, values, key)
    n = m.window_days
    assert n is not None
    if m.form is Form.DAYS_SINCE:
        last = values[Need("last", column, n, 0, key)]
        since = (np.datetime64(ctx.as_of, "D") - last).astype(np.int64).astype(np.float64)
        return np.where(has, np.where(np.isnat(last), float(n + 1), since), np.nan)
    op = _SERIES_OP[m.effective_aggregate]
    current = _fill(values[Need(op, column, n, 0, key)], has)
    if m.effective_aggregate == "mean":
        current = current / ctx.days_in_window(n)
    if m.form is Form.VALUE:
        return current
    previous = _fill(values[Need(op, column, n, n, key)], has)
    if m.effective_aggregate == "mean":
        previous = previous / float(n)
    old_enough = has & (ctx.days_since_start >= 2 * n)
    if m.form is Form.CHANGE_DIFF:
        return np.where(old_enough, current - previous, np.nan)
    rows = values[Need("rows", "", 2 * n, 0, key)] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        # Nothing before: any use now is +100 %; rows in the windows but no use in either: flat;
        # no row in either window, with use before them: it fell away (-100 %).
        pct = np.where(
            previous > 0,
            (current - previous) / previous * 100.0,
            np.where(current > 0, 100.0, np.where(rows, 0.0, -100.0)),
        )
    return np.where(old_enough, pct, np.nan)


def _ticket_value(m: Measure, ctx: _Context) -> np.ndarray:
    values = ctx.read.tickets
    key, n = ",".join(sorted(m.priority)), m.window_days
    has = _has_data(m, ctx, values)
    field_name = m.source.split(".", 1)[1]
    if m.form is Form.DAYS_SINCE:
        last = values[Need("last", "", n, 0, key)]
        since = (np.datetime64(ctx.as_of, "D") - last).astype(np.int64).astype(np.float64)
        return np.where(has, np.where(np.isnat(last), float((n or 0) + 1), since), np.nan)
    if field_name == "days_to_close":
        if m.effective_aggregate == "mean":
            closed = values[Need("closed", "", n, 0, key)]
            with np.errstate(invalid="ignore", divide="ignore"):
                value = np.where(closed > 0, values[Need("close_days_sum", "", n, 0, key)] / closed, np.nan)
        else:
            value = values[Need("close_days_max", "", n, 0, key)]
        return np.where(has, value, np.nan)
    return _fill(values[Need(field_name, "", n, 0, key)], has)


def _feedback_value(m: Measure, ctx: _Context) -> np.ndarray:
    values, kind, n = ctx.read.feedback, m.source.split(".", 1)[1], m.window_days
    if m.form is Form.DAYS_SINCE:
        last = values[Need("last", "", n, 0, kind)]
        since = (np.datetime64(ctx.as_of, "D") - last).astype(np.int64).astype(np.float64)
        value = np.where(np.isnat(last), float((n or 0) + 1), since)
    else:
        aggregate = m.effective_aggregate
        count = np.nan_to_num(values.get(Need("n", "", n, 0, kind), np.zeros(0)))
        with np.errstate(invalid="ignore", divide="ignore"):
            if aggregate == "nps":
                net = values[Need("promoters", "", n, 0, kind)] - values[Need("detractors", "", n, 0, kind)]
                value = np.where(count > 0, net / count * 100.0, np.nan)
            elif aggregate == "mean":
                value = np.where(count > 0, values[Need("sum", "", n, 0, kind)] / count, np.nan)
            elif aggregate == "count":
                value = count
            else:
                value = values[Need(aggregate, "", n, 0, kind)]
    if m.data_days is not None:
        value = np.where(_has_data(m, ctx, values, kind), value, np.nan)
    return value


def _goal_value(m: Measure, ctx: _Context) -> np.ndarray:
    assert ctx.read.goals is not None
    achieved, due = ctx.read.goals
    with np.errstate(invalid="ignore", divide="ignore"):
        if m.source == "goals.achieved_share":
            return np.where(due > 0, achieved / due, np.nan)
    if m.source == "goals.achieved":
        return achieved
    return due - achieved


def _account_value(m: Measure, ctx: _Context) -> np.ndarray:
    accounts, day = ctx.accounts, np.datetime64(ctx.as_of, "D")
    if m.source == "account.tenure_days":
        tenure = (day - accounts.contract_start).astype(np.int64).astype(np.float64)
        return np.where(np.isnat(accounts.contract_start), np.nan, tenure)
    if m.source == "account.days_to_renewal":
        to_renewal = (accounts.renewal_date - day).astype(np.int64).astype(np.float64)
        return np.where(np.isnat(accounts.renewal_date), np.nan, to_renewal)
    if m.source == "account.arr":
        return accounts.arr.astype(np.float64)
    return accounts.seats.astype(np.float64)


def _normalise(m: Measure, value: np.ndarray, ctx: _Context) -> np.ndarray:
    """Divide by the measure's ``per``: no data without a seat count; 0 with no logins or users."""
    if m.per is None:
        return value
    seats = np.where(ctx.accounts.seats > 0, ctx.accounts.seats, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if m.per == "seat":
            return value / seats
        if m.per == "licensed_seat":
            purchased = ctx.read.license[Need("latest", "seats_purchased", None)]
            return value / np.where(purchased > 0, purchased, seats)
        n = m.window_days or 1
        if m.per == "day":
            return value / ctx.days_in_window(n)
        column = "logins" if m.per == "login" else "active_users"
        denominator = np.nan_to_num(ctx.read.usage[Need("sum", column, m.window_days)])
        if m.per == "active_user":
            denominator = denominator / ctx.days_in_window(n)
        return np.where(denominator > 0, value / denominator, np.where(np.isnan(value), np.nan, 0.0))


# --- accounts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Accounts:
    """The scored accounts in id order (one query)."""

    ids: np.ndarray  # int64, ascending
    arr: np.ndarray
    seats: np.ndarray  # seats purchased on the account (NaN when unknown)
    ever_used: np.ndarray  # bool: any daily-usage row on or before as_of
    contract_start: np.ndarray  # datetime64[D]
    renewal_date: np.ndarray  # datetime64[D]
    owner: np.ndarray  # object
    term: np.ndarray  # object
    plan: np.ndarray  # object
    segment: np.ndarray  # object

    @classmethod
    def of(cls, dated: AccountsAsOf, ever_used: np.ndarray) -> _Accounts:
        return cls(
            ids=dated.ids,
            arr=dated.arr,
            seats=dated.seats,
            ever_used=ever_used,
            contract_start=dated.contract_start,
            renewal_date=dated.renewal_date,
            owner=dated.owner,
            term=dated.term,
            plan=dated.plan,
            segment=dated.segment,
        )


# --- usage signals: first value ------------------------------------------------------------------


def _first_value_days(conn: sa.Connection, *, as_of: dt.date, signal: str) -> tuple[np.ndarray, np.ndarray]:
    """Each account's first day of the configured product signal on or before ``as_of``: (account ids,
    datetime64[D] days)."""
    rows = fetch_rows(
        conn,
        sa.select(UsageSignal.account_id, sa.func.min(UsageSignal.day))
        .where(UsageSignal.signal == signal, UsageSignal.day <= as_of)
        .group_by(UsageSignal.account_id),
    )
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype="datetime64[D]")
    (found,) = float_columns([(r[0],) for r in rows], 1)
    return found.astype(np.int64), day_column(rows, 1)


def _first_value_on(first: tuple[np.ndarray, np.ndarray] | None, ids: np.ndarray, as_of: dt.date) -> np.ndarray:
    """The first day of the configured product signal (NaT when not reached by ``as_of``)."""
    first_value_on = np.full(ids.size, np.datetime64("NaT"), dtype="datetime64[D]")
    if first is not None and first[0].size:
        found, days = first
        pos, ok = align(ids, found)
        ok &= days <= np.datetime64(as_of, "D")
        first_value_on[pos[ok]] = days[ok]
    return first_value_on
