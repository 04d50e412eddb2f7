"""Every scored account's dated fields as they were on a day (point in time), by one set-based query.

What a day reads, per account (docs/scoring.md, "Account data on a past day"):

- the ``account_history`` row in force that day (the newest with ``valid_from`` on or before it);
- before the account's first row: that first row, except the renewal date, which is not known
  yet (a renewal date recorded later must not leak into an earlier day);
- an account with no history row at all (written straight into ``accounts``): its current
  values on every day.

Then, for a billing term of fixed length (monthly, quarterly, annual): an unknown renewal date is
the first renewal after the day, counting whole terms from the contract start, and a renewal date
that has already passed rolls forward by whole terms (a monthly account pushed once keeps
renewing). Without such a term an unknown renewal date stays unknown and a passed one stays as
recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from app.models import DATED_FIELDS, Account, AccountHistory
from app.pipeline.arrays import fetch_rows, float_columns
from scoring.terms import next_term_boundary, term_months


@dataclass(frozen=True, slots=True)
class AccountsAsOf:
    """The scored accounts' dated fields on ``as_of``, as columns in ascending account id."""

    as_of: dt.date
    ids: np.ndarray  # int64, ascending
    arr: np.ndarray  # float64
    seats: np.ndarray  # float64: seats purchased on the account
    contract_start: np.ndarray  # datetime64[D]
    renewal_date: np.ndarray  # datetime64[D], NaT when unknown
    term: np.ndarray  # object: BillingTerm value or None
    plan: np.ndarray  # object: str or None
    owner: np.ndarray  # object: the CSM, or None
    segment: np.ndarray  # object: str or None


#: The dated fields read as Python objects (the others come back as numbers).
_OBJECTS = ("billing_term", "plan", "owner", "segment")
_JULIAN_EPOCH = 2440587.5  # julianday('1970-01-01') on SQLite


def _picked(as_of: dt.date, where: sa.ColumnElement[bool], dialect: str) -> sa.Subquery:
    """The scored accounts (``where``) with their own dated fields and the day of the history row
    to read (``chosen``: the newest on or before ``as_of``, else the account's first; null without
    history). Two plans, each the faster on its database at 100k accounts (bench/pit_bench.py):
    PostgreSQL aggregates the history once and hash-joins it (0.70-0.84 s against 1.07 s for
    index seeks); SQLite seeks the key per account (0.99 s against 1.12 s for the aggregate)."""
    own = [Account.id.label("id"), *(getattr(Account, name).label(f"own_{name}") for name in DATED_FIELDS)]
    if dialect == "postgresql":
        chosen = (
            sa.select(
                AccountHistory.account_id.label("account_id"),
                sa.func.coalesce(
                    sa.func.max(sa.case((AccountHistory.valid_from <= as_of, AccountHistory.valid_from))),
                    sa.func.min(AccountHistory.valid_from),
                ).label("chosen"),
            )
            .group_by(AccountHistory.account_id)
            .subquery()
        )
        return (
            sa.select(*own, chosen.c.chosen)
            .outerjoin(chosen, chosen.c.account_id == Account.id)
            .where(where)
            .subquery()
        )
    in_force = (
        sa.select(sa.func.max(AccountHistory.valid_from))
        .where(AccountHistory.account_id == Account.id, AccountHistory.valid_from <= as_of)
        .scalar_subquery()
    )
    first = sa.select(sa.func.min(AccountHistory.valid_from)).where(AccountHistory.account_id == Account.id)
    return sa.select(*own, sa.func.coalesce(in_force, first.scalar_subquery()).label("chosen")).where(where).subquery()


def accounts_as_of(conn: sa.Connection, *, as_of: dt.date, include_churned: bool = False) -> AccountsAsOf:
    """The accounts scored on ``as_of`` (those ``not_churned_by(as_of)``, or every account with
    ``include_churned``) with their dated fields as of that day; see the module docstring.

    One query whatever the number of accounts: each account's row to read is picked (``_picked``),
    then joined once. Nothing recorded as taking effect after ``as_of`` is read, except the first
    row's values for a day before it (renewal date excepted).
    """
    # Imported here: app.pipeline.measures imports this module for its accounts query.
    from app.pipeline.measures import not_churned_by

    where = sa.true() if include_churned else not_churned_by(as_of)
    picked = _picked(as_of, where, conn.dialect.name)
    has_row = AccountHistory.valid_from.is_not(None)

    def field(name: str) -> sa.ColumnElement[Any]:
        # The history row's value where the account has one (even a null), else its own.
        return sa.case((has_row, getattr(AccountHistory, name)), else_=picked.c[f"own_{name}"])

    epoch = _epoch_days(conn.dialect.name)
    statement = (
        sa.select(
            picked.c.id,
            field("arr"),
            field("seats_purchased"),
            epoch(field("renewal_date")),
            epoch(field("contract_start")),
            epoch(AccountHistory.valid_from),
            *(field(name) for name in _OBJECTS),
        )
        .select_from(picked)
        .outerjoin(
            AccountHistory,
            sa.and_(AccountHistory.account_id == picked.c.id, AccountHistory.valid_from == picked.c.chosen),
        )
        .order_by(picked.c.id)
    )
    rows = fetch_rows(conn, statement)
    return _columns(as_of, rows)


def _epoch_days(dialect: str) -> Callable[[Any], sa.ColumnElement[Any]]:
    """Days since 1970-01-01 of a date column, in SQL: numbers convert to numpy in one call, where
    date objects or strings cost a Python step each."""
    if dialect == "postgresql":
        return lambda day: day - sa.cast(sa.literal("1970-01-01"), sa.Date)
    return lambda day: sa.func.julianday(day) - _JULIAN_EPOCH


def _days(values: np.ndarray) -> np.ndarray:
    """Epoch days (float, NaN for null) as datetime64[D] (NaT for null)."""
    out = np.full(values.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    known = ~np.isnan(values)
    out[known] = np.round(values[known]).astype(np.int64).astype("datetime64[D]")
    return out


def _columns(as_of: dt.date, rows: list[tuple[Any, ...]]) -> AccountsAsOf:
    """The query's rows as columns, with the renewal dates of the day (see the module docstring)."""
    n = len(rows)
    day = np.datetime64(as_of, "D")
    ids, arr, seats, renewal_days, start_days, valid_from_days = float_columns([r[:6] for r in rows], 6)
    before_first = _days(valid_from_days) > day  # NaT (no history) compares False
    objects = {name: np.array([r[6 + i] for r in rows], dtype=object) for i, name in enumerate(_OBJECTS)}
    term = objects["billing_term"]
    contract_start = _days(start_days)
    months = term_months(term)
    renewal = _days(renewal_days)
    # Before the first row the recorded renewal date is not known yet.
    renewal[before_first] = np.datetime64("NaT")
    # Unknown with a known term: the first renewal after the day, whole terms from the start.
    missing = np.isnat(renewal) & (months > 0)
    renewal[missing] = next_term_boundary(contract_start[missing], np.full(int(missing.sum()), day), months[missing])
    # A renewal date that has passed rolls forward by whole terms when the term is known.
    passed = ~np.isnat(renewal) & (renewal <= day) & (months > 0)
    renewal[passed] = next_term_boundary(renewal[passed], np.full(int(passed.sum()), day), months[passed])
    return AccountsAsOf(
        as_of=as_of,
        ids=ids.astype(np.int64) if n else np.empty(0, dtype=np.int64),
        arr=arr,
        seats=seats,
        contract_start=contract_start,
        renewal_date=renewal,
        term=term,
        plan=objects["plan"],
        owner=objects["owner"],
        segment=objects["segment"],
    )
