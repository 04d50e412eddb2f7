"""Any database SQLAlchemy can reach (a warehouse): one query per kind, streamed in chunks."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from app.sources.base import Chunk, Rows, SourceUnavailable


def _record_value(value: Any) -> Any:
    # Values the record schemas read as they come (str, int, float, bool, date, None) pass as
    # they are; a driver's Decimal becomes a number and a timestamp ISO text.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


EPOCH = dt.datetime(1970, 1, 1)


def _naive_utc(moment: dt.datetime | None) -> dt.datetime:
    if moment is None:
        return EPOCH
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


class SqlSource:
    """Runs ``queries[kind]`` with ``:since`` and ``:as_of`` bound, so the warehouse aggregates and
    only per-account rows come over; column names are record fields.

    ``:since`` is the start of the last good pull, as a naive UTC timestamp; on the first pull it
    is 1970-01-01, so a query can always say ``WHERE updated_at > :since`` (a NULL parameter
    would need a cast that differs between databases).
    """

    def __init__(self, name: str, url: str, queries: dict[str, str], chunk_size: int = 50_000):
        self.name = name
        self.kinds = tuple(queries)
        self.queries = queries
        self.chunk_size = chunk_size
        self._engine = sa.create_engine(url, pool_pre_ping=True)

    def pull(self, kind: str, *, since: dt.datetime | None, as_of: dt.date) -> Iterator[Chunk]:
        """Chunks of ``Rows``: the query's column names and its rows as they come."""
        statement = sa.text(self.queries[kind])
        params = {"since": _naive_utc(since), "as_of": as_of}
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        try:
            with self._engine.connect() as conn:
                if conn.dialect.driver == "psycopg":
                    batches = self._psycopg_batches(conn, statement, params)
                else:
                    # yield_per streams (a server-side cursor where the driver has one): memory
                    # stays flat however many rows the query returns.
                    result = conn.execute(statement.execution_options(yield_per=self.chunk_size), params)
                    batches = (tuple(result.keys()), result.partitions(self.chunk_size))
                columns, partitions = batches
                needs_conversion = None
                for partition in partitions:
                    if needs_conversion is None and partition:
                        needs_conversion = any(isinstance(v, (decimal.Decimal, dt.datetime)) for v in partition[0])
                    if needs_conversion:
                        yield Rows(columns, [tuple(map(_record_value, row)) for row in partition])
                    else:
                        yield Rows(columns, partition)
        except (sa.exc.SQLAlchemyError, dbapi_error) as exc:
            if not isinstance(exc, sa.exc.SQLAlchemyError):  # from the driver's cursor: name it as SQLAlchemy would
                exc = sa.exc.DBAPIError.instance(None, None, exc, dbapi_error)
            reason = getattr(exc, "orig", None) or exc
            raise SourceUnavailable(f"{self.name}: {kind} query failed: {type(exc).__name__}: {reason}") from exc

    def _psycopg_batches(
        self, conn: sa.Connection, statement: sa.TextClause, params: dict[str, Any]
    ) -> tuple[tuple[str, ...], Iterator[Sequence[Any]]]:
        """The driver's own server-side cursor: tuples as psycopg makes them, without a SQLAlchemy
        ``Row`` around each (1M rows: 1.3 s instead of 2.7 s)."""
        compiled = statement.compile(dialect=conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor(name="hs_pull")  # type: ignore[union-attr, call-arg]
        cursor.execute(compiled.string, compiled.construct_params(params))
        columns = tuple(column[0] for column in cursor.description)

        def partitions() -> Iterator[Sequence[Any]]:
            try:
                while rows := cursor.fetchmany(self.chunk_size):
                    yield rows
            finally:
                cursor.close()

        return columns, partitions()

    def dispose(self) -> None:
        self._engine.dispose()
