"""``bulk_insert`` writes what it is given, on both backends: on PostgreSQL as a binary COPY when
the rows fit the columns' binary types, JSON columns included (values are already-encoded JSON
text), and as text otherwise."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.bulk import _binary_types, bulk_insert

_TABLE = sa.Table(
    "bulk_check",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("day", sa.Date),
    sa.Column("value", sa.Double),
    sa.Column("label", sa.String(20)),
    sa.Column("doc", sa.JSON),
    sa.Column("docb", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)
_COLUMNS = ("id", "day", "value", "label", "doc", "docb")


def _round_trip(session: Session, rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    _TABLE.create(session.connection(), checkfirst=True)
    session.commit()
    try:
        assert bulk_insert(session, _TABLE, _COLUMNS, iter(rows)) == len(rows)
        found = session.connection().execute(sa.select(_TABLE).order_by(_TABLE.c.id)).all()
    finally:
        session.rollback()
        _TABLE.drop(session.connection(), checkfirst=True)
        session.commit()
    return [tuple(row) for row in found]


def test_json_and_plain_columns_round_trip(db_session: Session) -> None:
    rows = [
        (1, dt.date(2026, 6, 30), None, "a", "[null, 0.5]", '{"k": [1, 2]}'),
        (2, dt.date(2026, 7, 1), 2.25, None, None, None),
        (3, None, -1.0, "c\tt", '"text"', "[1.5e-7]"),
    ]
    assert _round_trip(db_session, rows) == [
        (1, dt.date(2026, 6, 30), None, "a", [None, 0.5], {"k": [1, 2]}),
        (2, dt.date(2026, 7, 1), 2.25, None, None, None),
        (3, None, -1.0, "c\tt", "text", [1.5e-7]),
    ]


def test_rows_that_do_not_fit_binary_types_go_as_text(db_session: Session) -> None:
    # An int in a float column: the first row decides, so these go as text, and still load.
    rows = [(1, dt.date(2026, 6, 30), 3, "x", "[]", "{}"), (2, dt.date(2026, 6, 30), 2.5, "y", "[]", "{}")]
    dialect = db_session.connection().dialect
    assert _binary_types(_TABLE, _COLUMNS, rows[0], dialect) is None
    assert [r[2] for r in _round_trip(db_session, rows)] == [3.0, 2.5]


def test_nothing_to_insert(db_session: Session) -> None:
    assert _round_trip(db_session, []) == []
