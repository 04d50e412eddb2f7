"""Account history: a dated row whenever an account's dated fields change (``account_history``).

Every writer of accounts (pushed and pulled account records, Segment ``group`` calls, the demo)
hands the states it wrote here, each with the day it took effect. A state equal to the one in
force on its day writes nothing; a different one becomes the row for that day (replacing a row of
the same day). A state that took effect before the account's newest row (a late correction) is
kept in history, and the account's current columns are put back to the newest row's values.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.bulk import bulk_insert
from app.db import utcnow
from app.models import DATED_FIELDS, Account, AccountHistory

#: Account ids per IN list on SQLite.
LOOKUP_CHUNK = 1_000
_COLUMNS = ("account_id", "valid_from", *DATED_FIELDS, "recorded_at")


@dataclass(frozen=True, slots=True)
class AccountState:
    """What an account's dated fields were from ``effective_on`` (values in ``DATED_FIELDS`` order)."""

    account_id: int
    effective_on: dt.date
    values: tuple[Any, ...]


def state_of(account_id: int, effective_on: dt.date, fields: dict[str, Any]) -> AccountState:
    """The state of a loaded account record or row (a mapping holding every dated field)."""
    return AccountState(account_id, effective_on, _normal(tuple(fields[name] for name in DATED_FIELDS)))


def _normal(values: Sequence[Any]) -> tuple[Any, ...]:
    """Comparable values: enum members as their values, ARR as float, seats as int."""
    out = [v.value if hasattr(v, "value") else v for v in values]
    out[0] = float(out[0] or 0.0)
    out[1] = int(out[1] or 0)
    return tuple(out)


def _history_of(session: Session, ids: list[int]) -> dict[int, list[tuple[dt.date, tuple[Any, ...]]]]:
    """The stored rows of ``ids``, per account in day order."""
    columns = [getattr(AccountHistory, name) for name in ("account_id", "valid_from", *DATED_FIELDS)]
    found: dict[int, list[tuple[dt.date, tuple[Any, ...]]]] = {}
    if session.get_bind().dialect.name == "postgresql":
        chunks: Iterable[list[int]] = [ids]
    else:
        chunks = (ids[i : i + LOOKUP_CHUNK] for i in range(0, len(ids), LOOKUP_CHUNK))
    for chunk in chunks:
        if session.get_bind().dialect.name == "postgresql":
            match = AccountHistory.account_id == sa.any_(sa.cast(sa.bindparam("ids", chunk), ARRAY(sa.Integer)))
        else:
            match = AccountHistory.account_id.in_(chunk)
        for row in session.execute(sa.select(*columns).where(match).order_by(AccountHistory.valid_from)):
            found.setdefault(row[0], []).append((row[1], _normal(row[2:])))
    return found


def record_account_history(session: Session, states: Sequence[AccountState]) -> int:
    """Write the history rows ``states`` imply (set-based: one read, one bulk write); never
    commits. Within ``states`` a later entry for the same account and day wins. Returns the
    rows written."""
    if not states:
        return 0
    latest: dict[tuple[int, dt.date], AccountState] = {(s.account_id, s.effective_on): s for s in states}
    history = _history_of(session, sorted({s.account_id for s in states}))
    written: dict[tuple[int, dt.date], tuple[Any, ...]] = {}
    for (account_id, day), state in sorted(latest.items()):
        rows = history.setdefault(account_id, [])
        days = [d for d, _ in rows]
        at = bisect.bisect_right(days, day)
        if at and rows[at - 1][1] == state.values:
            continue  # what was already in force that day
        if at and rows[at - 1][0] == day:
            rows[at - 1] = (day, state.values)
        else:
            rows.insert(at, (day, state.values))
        written[(account_id, day)] = state.values
    now = utcnow()
    bulk_insert(
        session,
        AccountHistory.__table__,  # type: ignore[arg-type]
        _COLUMNS,
        [(account_id, day, *values, now) for (account_id, day), values in written.items()],
        conflict_key=("account_id", "valid_from"),
    )
    _restore_current(session, history, latest)
    return len(written)


def _restore_current(
    session: Session,
    history: dict[int, list[tuple[dt.date, tuple[Any, ...]]]],
    latest: dict[tuple[int, dt.date], AccountState],
) -> None:
    """Accounts whose newest written state is older than their newest history row get that row's
    values back in their current columns (the record's upsert wrote the older state there)."""
    newest_written: dict[int, dt.date] = {}
    for account_id, day in latest:
        newest_written[account_id] = max(day, newest_written.get(account_id, day))
    restore = [
        {"id": account_id, **dict(zip(DATED_FIELDS, history[account_id][-1][1], strict=True))}
        for account_id, day in newest_written.items()
        if history[account_id] and history[account_id][-1][0] > day
    ]
    if restore:
        session.execute(sa.update(Account), restore)
