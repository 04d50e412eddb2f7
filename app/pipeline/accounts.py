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
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from app.models import DATED_FIELDS, Account, AccountHistory
from app.pipeline.arrays import day_column, fetch_rows, float_columns
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


# Column positions in the query's rows: the account's own fields, then the chosen history row's.
_N = len(DATED_FIELDS)
_OWN, _ROW = 1, 1 + _N
_VALID_FROM = 1 + 2 * _N
_AT = {name: i for i, name in enumerate(DATED_FIELDS)}


def _chosen_day(as_of: dt.date) -> sa.ColumnElement[dt.date]:
    """The history row a day reads: the newest on or before it, else the account's first."""
    in_force = (
        sa.select(sa.func.max(AccountHistory.valid_from))
        .where(AccountHistory.account_id == Account.id, AccountHistory.valid_from <= as_of)
        .scalar_subquery()
    )
    first = sa.select(sa.func.min(AccountHistory.valid_from)).where(AccountHistory.account_id == Account.id)
    return sa.func.coalesce(in_force, first.scalar_subquery())


def accounts_as_of(conn: sa.Connection, *, as_of: dt.date, include_churned: bool = False) -> AccountsAsOf:
    """The accounts scored on ``as_of`` (those ``not_churned_by(as_of)``, or every account with
    ``include_churned``) with their dated fields as of that day; see the module docstring.

    One query whatever the number of accounts: each account's row to read is picked by two index
    seeks on ``account_history``'s key, then joined once. Nothing recorded as taking effect after
    ``as_of`` is read, except the first row's values for a day before it (renewal date excepted).
    """
    # Imported here: app.pipeline.measures imports this module for its accounts query.
    from app.pipeline.measures import not_churned_by

    picked = (
        sa.select(
            Account.id.label("id"),
            *(getattr(Account, name).label(f"own_{name}") for name in DATED_FIELDS),
            _chosen_day(as_of).label("chosen"),
        )
        .where(sa.true() if include_churned else not_churned_by(as_of))
        .subquery()
    )
    statement = (
        sa.select(
            picked.c.id,
            *(picked.c[f"own_{name}"] for name in DATED_FIELDS),
            *(getattr(AccountHistory, name) for name in DATED_FIELDS),
            AccountHistory.valid_from,
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


def _columns(as_of: dt.date, rows: list[tuple[object, ...]]) -> AccountsAsOf:
    """The query's rows as columns: the history row's value where there is one, else the account's."""
    n = len(rows)
    valid_from = day_column(rows, _VALID_FROM)
    has_row = ~np.isnat(valid_from)
    day = np.datetime64(as_of, "D")
    before_first = has_row & (valid_from > day)

    def pick(name: str) -> np.ndarray:
        own, row = [r[_OWN + _AT[name]] for r in rows], [r[_ROW + _AT[name]] for r in rows]
        return np.array([v if h else o for v, o, h in zip(row, own, has_row.tolist(), strict=True)], dtype=object)

    def pick_day(name: str) -> np.ndarray:
        return np.where(has_row, day_column(rows, _ROW + _AT[name]), day_column(rows, _OWN + _AT[name]))

    numbers = float_columns([(r[0], r[_OWN], r[_OWN + 1], r[_ROW], r[_ROW + 1]) for r in rows], 5)
    ids, own_arr, own_seats, row_arr, row_seats = numbers
    term = pick("billing_term")
    contract_start = pick_day("contract_start")
    months = term_months(term)
    renewal = pick_day("renewal_date")
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
        arr=np.where(has_row, row_arr, own_arr),
        seats=np.where(has_row, row_seats, own_seats),
        contract_start=contract_start,
        renewal_date=renewal,
        term=term,
        plan=pick("plan"),
        owner=pick("owner"),
        segment=pick("segment"),
    )
