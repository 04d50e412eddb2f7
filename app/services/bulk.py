"""Bulk writes: COPY on PostgreSQL, the driver's executemany on SQLite, never ORM objects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


class UnsupportedDialect(RuntimeError):
    """The operation is written for PostgreSQL and SQLite only."""


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy's own SQLite storage formats, so rows written here read back through the ORM.
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _upsert_clause(
    preparer: Any, table: str, columns: Sequence[str], conflict_key: Sequence[str], increment: Sequence[str]
) -> str:
    key = ", ".join(preparer.quote(c) for c in conflict_key)
    changing = [c for c in columns if c not in conflict_key and c != "created_at"]
    if not changing:
        return f" ON CONFLICT ({key}) DO NOTHING"
    assignments = ", ".join(
        f"{preparer.quote(c)} = {table}.{preparer.quote(c)} + excluded.{preparer.quote(c)}"
        if c in increment
        else f"{preparer.quote(c)} = excluded.{preparer.quote(c)}"
        for c in changing
    )
    return f" ON CONFLICT ({key}) DO UPDATE SET {assignments}"


def bulk_insert(
    session: Session,
    table: sa.Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    conflict_key: Sequence[str] | None = None,
    increment: Sequence[str] = (),
) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` inside the session's transaction.

    With ``conflict_key`` (a unique key of the table) a row whose key exists updates it instead,
    an upsert; columns in ``increment`` are added to rather than replaced. On PostgreSQL the rows
    are COPYed into a temporary table first and moved with one ``INSERT ... SELECT ... ON
    CONFLICT DO UPDATE``; on SQLite the driver's executemany runs the same clause. Enum members
    are written as their values; JSON columns take already-encoded JSON text. Returns the
    number of rows written.
    """
    connection = session.connection()
    dialect = connection.dialect.name
    dbapi = connection.connection.dbapi_connection
    preparer = connection.dialect.identifier_preparer
    quoted = ", ".join(preparer.quote(c) for c in columns)
    name = preparer.format_table(table)
    count = 0
    if dialect == "postgresql":
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        target = name
        if conflict_key is not None:
            target = preparer.quote(f"_upsert_{table.name}")
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {target} (LIKE {name} INCLUDING DEFAULTS) ON COMMIT DROP")
            cursor.execute(f"TRUNCATE {target}")
        with cursor.copy(f"COPY {target} ({quoted}) FROM STDIN") as copy:
            enum_columns: list[int] | None = None
            for row in rows:
                if enum_columns is None:  # from the first row: which columns hold enum members
                    enum_columns = [i for i, v in enumerate(row) if isinstance(v, Enum)]
                if enum_columns:
                    values = list(row)
                    for i in enum_columns:
                        if isinstance(values[i], Enum):
                            values[i] = values[i].value
                    row = values  # noqa: PLW2901 - the converted copy replaces the row
                copy.write_row(row)
                count += 1
        if conflict_key is not None:
            cursor.execute(
                f"INSERT INTO {name} ({quoted}) SELECT {quoted} FROM {target}"
                + _upsert_clause(preparer, name, columns, conflict_key, increment)
            )
        cursor.close()
        return count
    if dialect == "sqlite":
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {name} ({quoted}) VALUES ({placeholders})"
        if conflict_key is not None:
            sql += _upsert_clause(preparer, name, columns, conflict_key, increment)
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
    if conflict_key is not None:
        raise UnsupportedDialect(f"bulk upserts are written for PostgreSQL and SQLite, not {dialect}")
    # Any other dialect: SQLAlchemy Core executemany (slower, but correct).
    materialized = [dict(zip(columns, row, strict=True)) for row in rows]
    if materialized:
        connection.execute(table.insert(), materialized)
    return len(materialized)
