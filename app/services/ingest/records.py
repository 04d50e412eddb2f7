"""Pushed records in: validate each, resolve accounts, drop in-batch duplicates, upsert by natural key.

Idempotent: every kind has a natural key (an account's external id; source + external id; or
account + day for daily data), so posting the same records again changes nothing and a later
version of a record replaces the stored one. Good records land even when others are rejected.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import sqlalchemy as sa
from marshmallow import Schema, ValidationError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.bulk import bulk_insert
from app.models import Account, UsageSignal
from app.records import KINDS, KindSpec
from app.records.fast import FAST_LOADERS, latest_accepted_day
from app.records.schemas import MAX_EXTERNAL_ID
from app.services.ingest.history import record_account_history, state_of
from app.validation import BAD_TEXT, MAX_INT

#: IN lists of account external ids are sent in chunks of this size.
LOOKUP_CHUNK = 1_000


#: Columns of usage_signals that account events fill from differently named fields.
EVENT_COLUMNS = {"signal": "event", "count": "quantity"}


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    errors: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IngestResult:
    kind: str
    received: int
    landed: int
    rejected: list[Rejected] = field(default_factory=list)


def lookup_account_ids(session: Session, external_ids: set[str]) -> dict[str, int]:
    """Account ids by external id, for the ones that exist."""
    ordered = sorted(external_ids)
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter: an IN list of a thousand bound values costs more to render and
        # parse than the lookup itself.
        matches = Account.external_id == sa.any_(sa.cast(sa.bindparam("ids", ordered), ARRAY(sa.String)))
        rows = session.execute(sa.select(Account.external_id, Account.id).where(matches))
        return {external_id: account_id for external_id, account_id in rows}
    found: dict[str, int] = {}
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        rows = session.execute(sa.select(Account.external_id, Account.id).where(Account.external_id.in_(chunk)))
        found.update({external_id: account_id for external_id, account_id in rows})
    return found


def ingest_records(
    session: Session,
    *,
    kind: str,
    records: list[Any],
    source: str,
    account_ids: dict[str, int] | None = None,
) -> IngestResult:
    """Validate and store a batch of ``kind`` records from ``source``; never commits.

    Each record is validated on its own; rejected ones are returned with their index and
    field-level messages (unknown account, duplicate of an earlier record in the batch...).
    ``account_ids`` is an optional cache of account ids by external id, shared by the batches
    of one pull in one transaction: only accounts it lacks are looked up (and added).
    Raises ``KeyError`` for an unknown kind.
    """
    spec = KINDS[kind]
    schema = spec.schema()
    renamed = EVENT_COLUMNS if kind == "events" else {}
    columns = _columns(spec, schema, renamed)
    loaded, rejected = _load_records(kind, schema, records, blank=dict.fromkeys(columns))
    ids = account_ids if account_ids is not None else {}
    if spec.has_account:
        missing = {row["account"] for _, row in loaded} - ids.keys()
        if missing:
            ids.update(lookup_account_ids(session, missing))
    rows, signal_rows = _landing_rows(
        spec, loaded, columns=columns, renamed=renamed, ids=ids, source=source, rejected=rejected
    )
    bulk_insert(session, spec.table, columns, rows, conflict_key=spec.key)
    if spec.table is Account.__table__ and rows:
        _record_history(session, loaded, rejected)
    if signal_rows:
        bulk_insert(
            session,
            UsageSignal.__table__,  # type: ignore[arg-type]
            ("account_id", "day", "signal", "count"),
            signal_rows,
            conflict_key=("account_id", "day", "signal"),
        )
    rejected.sort(key=lambda r: r.index)
    return IngestResult(kind=kind, received=len(records), landed=len(rows), rejected=rejected)


def _record_history(session: Session, loaded: list[tuple[int, dict[str, Any]]], rejected: list[Rejected]) -> None:
    """The landed account records' dated fields into ``account_history``, each from its
    ``effective_on`` day (default: today, UTC)."""
    dropped = {r.index for r in rejected}
    landed = [row for index, row in loaded if index not in dropped]
    ids = lookup_account_ids(session, {row["external_id"] for row in landed})
    today = dt.datetime.now(dt.UTC).date()
    record_account_history(
        session, [state_of(ids[row["external_id"]], row.get("effective_on") or today, row) for row in landed]
    )


def _columns(spec: KindSpec, schema: Schema, renamed: dict[str, str]) -> list[str]:
    """The table columns a batch of the kind writes."""
    columns = [
        c.name for c in spec.table.columns if c.name in schema.fields or c.name == "account_id" or c.name in renamed
    ]
    if spec.has_source:
        columns.append("source")
    if spec.table is Account.__table__:
        columns += ["created_at", "updated_at"]  # created_at is never overwritten by an update
    return columns


def _load_records(
    kind: str, schema: Schema, records: list[Any], *, blank: dict[str, None]
) -> tuple[list[tuple[int, dict[str, Any]]], list[Rejected]]:
    """Each record loaded (fast loader first, then the kind's schema) with its index, or rejected.
    ``blank``: every column, so optional fields a record left out are stored as NULL."""
    rejected: list[Rejected] = []
    loaded: list[tuple[int, dict[str, Any]]] = []
    fast = FAST_LOADERS.get(kind)
    latest = latest_accepted_day()
    for index, record in enumerate(records):
        if fast is not None and (data := fast(record, latest)) is not None:
            loaded.append((index, data))
            continue
        if not isinstance(record, dict):
            rejected.append(Rejected(index, {"_schema": ["Each record must be a JSON object."]}))
            continue
        try:
            loaded.append((index, {**blank, **schema.load(record)}))
        except ValidationError as exc:
            rejected.append(Rejected(index, exc.normalized_messages()))
    return loaded, rejected


def _landing_rows(
    spec: KindSpec,
    loaded: list[tuple[int, dict[str, Any]]],
    *,
    columns: list[str],
    renamed: dict[str, str],
    ids: dict[str, int],
    source: str,
    rejected: list[Rejected],
) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """The rows to write (and the named signals of usage rows), in one pass: resolve the account,
    drop in-batch duplicates, build the row; what fails joins ``rejected``. (Hot: it runs for
    every pulled or pushed record, so it uses itemgetters rather than generators.)"""
    key_fields = [name for name in spec.key if name != "source"]
    key_of = operator.itemgetter(*key_fields)
    values_of = operator.itemgetter(*columns)
    seen: dict[Any, int] = {}
    rows = []
    signal_rows: list[tuple[Any, ...]] = []
    now = dt.datetime.now(dt.UTC)
    for index, row in loaded:
        if spec.has_account:
            account_id = ids.get(row["account"])
            if account_id is None:
                rejected.append(Rejected(index, {"account": [f"Unknown account {row['account']!r}."]}))
                continue
            row["account_id"] = account_id
        for column, field_name in renamed.items():
            row[column] = row[field_name]
        key = key_of(row)
        if key in seen:
            names = " + ".join("account" if name == "account_id" else name for name in key_fields)
            rejected.append(Rejected(index, {"_schema": [f"Same {names} as record {seen[key]} in this batch."]}))
            continue
        seen[key] = index
        if spec.has_source:
            row["source"] = source
        if spec.table is Account.__table__:
            row["created_at"] = row["updated_at"] = now
        rows.append(values_of(row))
        if signals := row.get("signals"):
            signal_rows.extend((account_id, row["day"], name, count) for name, count in signals.items())
    return rows, signal_rows


# --- Tables of records (SQL sources) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DailyCounts:
    """A kind whose records are an account, a day and counts: checked a column at a time."""

    required: tuple[str, ...]  # count fields a record must have
    optional: tuple[str, ...]  # count fields that default to 0


COLUMNAR: dict[str, _DailyCounts] = {
    "usage": _DailyCounts(("active_users",), ("logins", "key_feature_uses")),
    "licenses": _DailyCounts(("seats_purchased", "seats_assigned", "seats_active"), ()),
}


# Each check answers which values are not plain (anything a column of exact types in range
# would not hold); the whole-column test runs at C speed and is all a typed source ever costs.
def _odd_accounts(values: Sequence[Any]) -> list[int]:
    if set(map(type, values)) == {str}:
        lengths = list(map(len, values))
        if min(lengths) >= 1 and max(lengths) <= MAX_EXTERNAL_ID and not BAD_TEXT.search("".join(values)):
            return []
    return [
        i for i, v in enumerate(values) if type(v) is not str or not 0 < len(v) <= MAX_EXTERNAL_ID or BAD_TEXT.search(v)
    ]


def _odd_days(values: Sequence[Any], latest: dt.date) -> list[int]:
    if set(map(type, values)) == {dt.date} and max(values) <= latest:
        return []
    return [i for i, v in enumerate(values) if type(v) is not dt.date or v > latest]


def _odd_counts(values: Sequence[Any]) -> list[int]:
    """Rows whose count is not a whole number that fits a database INTEGER (they go through the
    record schema, which says why)."""
    if set(map(type, values)) == {int} and min(values) >= 0 and max(values) <= MAX_INT:
        return []
    return [i for i, v in enumerate(values) if type(v) is not int or not 0 <= v <= MAX_INT]


@dataclass(slots=True)
class PreparedRows:
    """A table of daily counts after the checks that need no database (``prepare_rows``)."""

    kind: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    accounts: Sequence[Any]  # external ids (None where the record was rejected)
    days: Sequence[Any]
    counts: dict[str, Sequence[Any]]
    rejected: list[Rejected]
    keep: list[bool] | None  # None: every row so far


def prepare_rows(kind: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> PreparedRows | None:
    """Validate a table of ``kind`` records a column at a time, without the database; None when
    the kind or the columns have no columnar path (``ingest_rows`` then takes the record path).

    Needs no session: everything here is per row and column, nothing is looked up.
    """
    shape = COLUMNAR.get(kind)
    names = set(columns)
    if (
        shape is None
        or not rows
        or len(names) != len(columns)
        or not {"account", "day", *shape.required} <= names <= {"account", "day", *shape.required, *shape.optional}
    ):
        return None
    received = len(rows)
    latest = latest_accepted_day()
    # A column at a time by itemgetter: zip(*rows) over 50,000 rows costs 1.7x more.
    given: dict[str, Sequence[Any]] = {name: list(map(operator.itemgetter(i), rows)) for i, name in enumerate(columns)}
    accounts, days = given["account"], given["day"]
    counts = {name: given.get(name) or [0] * received for name in (*shape.required, *shape.optional)}
    odd = set(_odd_accounts(accounts)) | set(_odd_days(days, latest))
    for name in names & counts.keys():
        odd.update(_odd_counts(counts[name]))
    rejected: list[Rejected] = []
    keep: list[bool] | None = None
    if odd:  # the record path for these rows; what it loads is written back into the columns
        keep = [True] * received
        schema = KINDS[kind].schema()
        fast = FAST_LOADERS.get(kind)
        for index in sorted(odd):
            record = dict(zip(columns, rows[index], strict=True))
            data = fast(record, latest) if fast is not None else None
            if data is None:
                try:
                    data = schema.load(record)
                except ValidationError as exc:
                    rejected.append(Rejected(index, exc.normalized_messages()))
                    keep[index] = False
                    accounts[index] = None  # type: ignore[index]
                    continue
            accounts[index], days[index] = data["account"], data["day"]  # type: ignore[index]
            for name, values in counts.items():
                values[index] = data[name]  # type: ignore[index]
    return PreparedRows(kind, columns, rows, accounts, days, counts, rejected, keep)


def ingest_rows(
    session: Session,
    *,
    kind: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    source: str,
    account_ids: dict[str, int] | None = None,
) -> IngestResult:
    """``ingest_records`` for records given as a table (field names, a tuple per record), as SQL
    sources pull them: the same rows land and the same records are rejected, with the same messages.

    Daily counts (usage, licenses) are validated a column at a time (``prepare_rows``): plain
    values (an account string, a date, non-negative ints) pass in a few C-level passes over each
    column, and only the rows holding anything else take the per-record loaders (fast loader,
    then the schema), so they are loaded or rejected exactly as pushed records are. Other kinds,
    and tables with other columns (signals, unknown fields), go through ``ingest_records``.
    """
    prepared = prepare_rows(kind, columns, rows)
    if prepared is None:
        if not rows:
            return IngestResult(kind=kind, received=0, landed=0)
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        return ingest_records(session, kind=kind, records=records, source=source, account_ids=account_ids)
    spec = KINDS[kind]
    received = len(rows)
    accounts, days, rejected, keep = prepared.accounts, prepared.days, prepared.rejected, prepared.keep
    ids = account_ids if account_ids is not None else {}
    missing = set(accounts) - ids.keys() - {None}
    if missing:
        ids.update(lookup_account_ids(session, missing))
    account_id = list(map(ids.get, accounts))
    if None in account_id:
        keep = keep or [True] * received
        for index, found in enumerate(account_id):
            if found is None and keep[index]:
                rejected.append(Rejected(index, {"account": [f"Unknown account {accounts[index]!r}."]}))
                keep[index] = False
    kept = received if keep is None else sum(keep)
    keys = zip(account_id, days, strict=True)
    if len(set(keys if keep is None else compress(keys, keep))) < kept:
        keep = keep or [True] * received
        seen: dict[Any, int] = {}
        for index, key in enumerate(zip(account_id, days, strict=True)):
            if not keep[index]:
                continue
            if key in seen:
                rejected.append(
                    Rejected(index, {"_schema": [f"Same account + day as record {seen[key]} in this batch."]})
                )
                keep[index] = False
            else:
                seen[key] = index

    series: dict[str, Sequence[Any]] = {"account_id": account_id, "day": days, **prepared.counts}
    table_columns = [c.name for c in spec.table.columns if c.name in series]
    landing = zip(*(series[name] for name in table_columns), strict=True)
    out = list(landing if keep is None else compress(landing, keep))
    bulk_insert(session, spec.table, table_columns, out, conflict_key=spec.key)
    rejected.sort(key=lambda r: r.index)
    return IngestResult(kind=kind, received=received, landed=len(out), rejected=rejected)
