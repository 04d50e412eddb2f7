"""The port every source implements, and what a source may yield or raise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: The data kinds a source can provide (the push API's kinds).
KINDS = ("accounts", "contacts", "usage", "licenses", "tickets", "feedback", "goals", "outcomes")


class SourceUnavailable(Exception):
    """The source could not be read (down, slow, unreadable); the message says why."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """A raw item a source could not even parse into a record (a broken JSON line, say)."""

    raw: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rows:
    """A chunk of records as a table: the field names once, then one tuple per record.

    What SQL sources yield: a dict per row would cost more than the rest of the row's way in,
    and ingest validates typed columns a column at a time (``ingest_rows``).
    """

    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]

    def __len__(self) -> int:
        return len(self.rows)

    def record(self, index: int) -> dict[str, Any]:
        return dict(zip(self.columns, self.rows[index], strict=True))

    def records(self) -> list[dict[str, Any]]:
        columns = self.columns
        return [dict(zip(columns, row, strict=True)) for row in self.rows]


#: One chunk of pulled items: records, or what could not be parsed into one; or a table of records.
Chunk = list[dict[str, Any] | Malformed] | Rows


class Source(Protocol):
    """Pulls records of each kind it provides, in chunks, as JSON-like dicts."""

    name: str
    kinds: tuple[str, ...]

    def pull(self, kind: str, *, since: dt.datetime | None, as_of: dt.date) -> Iterator[Chunk]:
        """Records of ``kind`` changed since ``since`` (all when None), in chunks.

        Raises ``SourceUnavailable`` when the source cannot be read.
        """
        ...
