"""Tables of records (as SQL sources pull them) land exactly as the same records pushed one by one,
and the PostgreSQL upsert paths (direct COPY of new keys, merge of the rest) agree."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app import bulk
from app.models import Account, DailyUsage, LicenseSnapshot
from app.records.fast import latest_accepted_day
from app.services.ingest.records import IngestResult, ingest_records, ingest_rows

pytestmark = [pytest.mark.e2e, pytest.mark.db]

DAY = dt.date(2026, 6, 1)
FUTURE = latest_accepted_day() + dt.timedelta(days=1)
USAGE = ("account", "day", "active_users", "logins")
TRICKY_USAGE = [
    ("acme", DAY, 5, 9),
    ("acme", DAY + dt.timedelta(days=1), 6, 0),
    ("initech", DAY, 2, 1),  # unknown account
    ("acme", "2026-06-03", 4, 4),  # a text day: the record path loads it
    ("acme", DAY + dt.timedelta(days=2), 7, 7),  # same key as the text day before it
    ("acme", DAY, 1, 1),  # same key as the first row
    ("acme", FUTURE, 1, 1),
    ("acme", "2026-06-05T12:00:00", 1, 1),  # a timestamp, as SqlSource passes them
    ("acme", DAY + dt.timedelta(days=5), None, 1),
    ("acme", DAY + dt.timedelta(days=6), -1, 1),
    ("acme", DAY + dt.timedelta(days=7), 3, True),
    ("acme", DAY + dt.timedelta(days=8), 3, 2.0),
    ("", DAY, 3, 2),
    ("x" * 129, DAY, 3, 2),
    (42, DAY, 3, 2),
    (["acme"], DAY, 3, 2),
    ("globex", DAY + dt.timedelta(days=9), 0, 0),
    ("initech", DAY + dt.timedelta(days=1), 2, 1),
]
LICENSES = ("account", "day", "seats_purchased", "seats_assigned", "seats_active")


@pytest.fixture
def accounts(db_session: Session) -> None:
    with db_session.begin():
        for external_id in ("acme", "globex"):
            db_session.add(Account(external_id=external_id, name=external_id, contract_start=dt.date(2025, 1, 1)))


def both_ways(
    session: Session, kind: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], model: type
) -> tuple[tuple[IngestResult, list[tuple[Any, ...]]], tuple[IngestResult, list[tuple[Any, ...]]]]:
    """(result, stored rows) through ``ingest_rows`` and through ``ingest_records``, each rolled back."""
    outcomes = []
    for way in ("rows", "records"):
        with session.begin():
            if way == "rows":
                result = ingest_rows(session, kind=kind, columns=columns, rows=rows, source="wh")
            else:
                records = [dict(zip(columns, row, strict=True)) for row in rows]
                result = ingest_records(session, kind=kind, records=records, source="wh")
            table = model.__table__  # type: ignore[attr-defined]
            stored = [tuple(r) for r in session.execute(sa.select(table).order_by(*table.primary_key.columns))]
            session.rollback()
        outcomes.append((result, stored))
    return outcomes[0], outcomes[1]


@pytest.mark.usefixtures("accounts")
def test_a_table_of_usage_lands_as_its_records_would(db_session: Session) -> None:
    by_rows, by_records = both_ways(db_session, "usage", USAGE, TRICKY_USAGE, DailyUsage)
    assert by_rows == by_records
    result, stored = by_rows
    assert result.landed == 4 and len(stored) == 4
    assert {r.index for r in result.rejected} == set(range(len(TRICKY_USAGE))) - {0, 1, 3, 16}


@pytest.mark.usefixtures("accounts")
def test_a_table_of_licenses_and_a_table_with_other_columns(db_session: Session) -> None:
    rows = [("acme", DAY, 20, 18, 12), ("acme", DAY, 20, 18, 11), ("globex", DAY, 5, 6, -1), ("acme", None, 1, 1, 1)]
    by_rows, by_records = both_ways(db_session, "licenses", LICENSES, rows, LicenseSnapshot)
    assert by_rows == by_records and by_rows[0].landed == 1
    odd_columns = ("account", "day", "active_users", "colour")  # not a usage field: the record path says so
    by_rows, by_records = both_ways(db_session, "usage", odd_columns, [("acme", DAY, 3, "red")], DailyUsage)
    assert by_rows == by_records and by_rows[0].landed == 0


values = st.one_of(
    st.sampled_from(["acme", "globex", "initech", "", "2026-06-02", "x" * 129]),
    st.dates(DAY, DAY + dt.timedelta(days=3)),
    st.just(FUTURE),
    st.integers(-2, 3),
    st.booleans(),
    st.none(),
    st.floats(0, 2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["acme", "globex", "initech"]), st.dates(DAY, DAY + dt.timedelta(days=3)), values,
                  values, values),
        max_size=12,
    )
)  # fmt: skip
@pytest.mark.usefixtures("accounts")
def test_any_table_of_usage_lands_as_its_records_would(db_session: Session, rows: list[tuple[Any, ...]]) -> None:
    columns = ("account", "day", "active_users", "logins", "key_feature_uses")
    # Some rows get an odd account or day too.
    rows = [(r[2], r[1], *r[2:]) if i % 3 == 2 else r for i, r in enumerate(rows)]
    by_rows, by_records = both_ways(db_session, "usage", columns, rows, DailyUsage)
    assert by_rows == by_records


def usage_rows(session: Session) -> dict[tuple[int, dt.date], tuple[Any, ...]]:
    with session.begin():
        return {(r.account_id, r.day): (r.active_users, r.logins) for r in session.scalars(sa.select(DailyUsage))}


@pytest.mark.usefixtures("accounts")
def test_upserts_agree_whichever_path_they_take(
    db_session: Session, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [("acme", DAY + dt.timedelta(days=d), d, d) for d in range(4)]
    with db_session.begin():
        ingest_rows(db_session, kind="usage", columns=USAGE, rows=first, source="wh")
    acme = next(iter(usage_rows(db_session)))[0]
    assert usage_rows(db_session) == {(acme, DAY + dt.timedelta(days=d)): (d, d) for d in range(4)}
    # Days 2-3 again (one changed) and two new days; on PostgreSQL also with the probe fooled into
    # a direct COPY, which meets the stored keys and falls back to the merge under its savepoint.
    again = [("acme", DAY + dt.timedelta(days=d), d + (d == 3), d) for d in range(2, 6)]
    if backend == "postgresql":
        monkeypatch.setattr(bulk, "_keys_may_exist", lambda *args, **kwargs: False)
    with db_session.begin():
        ingest_rows(db_session, kind="usage", columns=USAGE, rows=again, source="wh")
    expected = {(acme, DAY + dt.timedelta(days=d)): (d + (d == 3), d) for d in range(6)}
    assert usage_rows(db_session) == expected


def test_a_repull_of_the_same_rows_rewrites_none_of_them(db_session: Session, backend: str, accounts: None) -> None:
    if backend != "postgresql":
        pytest.skip("row versions (xmin) are PostgreSQL's")
    rows = [("acme", DAY + dt.timedelta(days=d), d, d) for d in range(3)]

    def versions() -> list[str]:
        with db_session.begin():
            return list(db_session.scalars(sa.text("SELECT xmin::text FROM daily_usage ORDER BY day")))

    with db_session.begin():
        ingest_rows(db_session, kind="usage", columns=USAGE, rows=rows, source="wh")
    before = versions()
    with db_session.begin():
        ingest_rows(db_session, kind="usage", columns=USAGE, rows=rows, source="wh")
    assert versions() == before
    with db_session.begin():
        ingest_rows(db_session, kind="usage", columns=USAGE, rows=[("acme", DAY, 9, 9)], source="wh")
    after = versions()
    assert after[0] != before[0] and after[1:] == before[1:]


@pytest.mark.usefixtures("accounts")
def test_counts_too_large_for_the_database_are_rejected_not_a_crash(db_session: Session) -> None:
    rows = [("acme", DAY, 3, 4), ("acme", DAY + dt.timedelta(days=1), 2**31, 4), ("globex", DAY, 1, 2**40)]
    by_rows, by_records = both_ways(db_session, "usage", USAGE, rows, DailyUsage)
    assert by_rows == by_records
    result, stored = by_rows
    assert result.landed == 1 and len(stored) == 1
    assert {r.index for r in result.rejected} == {1, 2}
