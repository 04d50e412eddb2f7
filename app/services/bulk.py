"""Bulk writes: COPY on PostgreSQL, the driver's executemany on SQLite, never ORM objects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy's own SQLite storage formats, so rows written here read back through the ORM.
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def bulk_insert(session: Session, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` inside the session's transaction.

    JSON columns take already-encoded JSON text. Returns the number of rows written.
    """
    connection = session.connection()
    dialect = connection.dialect.name
    dbapi = connection.connection.dbapi_connection
    quoted = ", ".join(connection.dialect.identifier_preparer.quote(c) for c in columns)
    name = connection.dialect.identifier_preparer.format_table(table)
    count = 0
    if dialect == "postgresql":
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        cursor.close()
        return count
    if dialect == "sqlite":
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {name} ({quoted}) VALUES ({placeholders})"
        # Only date and time columns need converting; touching every value costs more than SQLite.
        temporal = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, (sa.Date, sa.DateTime))]
        batch: list[Sequence[Any]] = []
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        for row in rows:
            if temporal:
                values = list(row)
                for i in temporal:
                    values[i] = _sqlite_value(values[i])
                row = values  # noqa: PLW2901 - the converted copy replaces the row
            batch.append(row)
            if len(batch) >= 50_000:
                cursor.executemany(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            count += len(batch)
        cursor.close()
        return count
    # Any other dialect: SQLAlchemy Core executemany (slower, but correct).
    materialized = [dict(zip(columns, row, strict=True)) for row in rows]
    if materialized:
        connection.execute(table.insert(), materialized)
    return len(materialized)
