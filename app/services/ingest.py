"""Pushed records in: validate each, resolve accounts, drop in-batch duplicates, upsert by natural key.

Idempotent: every kind has a natural key (an account's external id; source + external id; or
account + day for daily data), so posting the same records again changes nothing and a later
version of a record replaces the stored one. Good records land even when others are rejected.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from marshmallow import Schema, ValidationError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.models import (
    Account,
    Contact,
    DailyUsage,
    Feedback,
    Goal,
    LicenseSnapshot,
    Outcome,
    SupportTicket,
    UsageSignal,
)
from app.schemas.ingest import (
    FAST_LOADERS,
    AccountEventRecordSchema,
    AccountRecordSchema,
    ContactRecordSchema,
    FeedbackRecordSchema,
    GoalRecordSchema,
    LicenseRecordSchema,
    OutcomeRecordSchema,
    TicketRecordSchema,
    UsageRecordSchema,
    latest_accepted_day,
)
from app.services.bulk import bulk_insert

#: IN lists of account external ids are sent in chunks of this size.
LOOKUP_CHUNK = 1_000


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How records of one kind are validated and stored."""

    schema: type[Schema]
    table: sa.Table
    key: tuple[str, ...]  # natural key columns
    has_source: bool  # the batch's source is part of the key
    has_account: bool  # records name their account by external id


KINDS: dict[str, KindSpec] = {
    "accounts": KindSpec(AccountRecordSchema, Account.__table__, ("external_id",), False, False),  # type: ignore[arg-type]
    "contacts": KindSpec(ContactRecordSchema, Contact.__table__, ("source", "external_id"), True, True),  # type: ignore[arg-type]
    "usage": KindSpec(UsageRecordSchema, DailyUsage.__table__, ("account_id", "day"), False, True),  # type: ignore[arg-type]
    "licenses": KindSpec(LicenseRecordSchema, LicenseSnapshot.__table__, ("account_id", "day"), False, True),  # type: ignore[arg-type]
    "tickets": KindSpec(TicketRecordSchema, SupportTicket.__table__, ("source", "external_id"), True, True),  # type: ignore[arg-type]
    "feedback": KindSpec(FeedbackRecordSchema, Feedback.__table__, ("source", "external_id"), True, True),  # type: ignore[arg-type]
    "goals": KindSpec(GoalRecordSchema, Goal.__table__, ("source", "external_id"), True, True),  # type: ignore[arg-type]
    # A flat account event is a product signal: same table, same key, the quantity as its count.
    "events": KindSpec(AccountEventRecordSchema, UsageSignal.__table__, ("account_id", "day", "signal"), False, True),  # type: ignore[arg-type]
    "outcomes": KindSpec(OutcomeRecordSchema, Outcome.__table__, ("source", "external_id"), True, True),  # type: ignore[arg-type]
}


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
    columns = [
        c.name for c in spec.table.columns if c.name in schema.fields or c.name == "account_id" or c.name in renamed
    ]
    if spec.has_source:
        columns.append("source")
    if spec.table is Account.__table__:
        columns += ["created_at", "updated_at"]  # created_at is never overwritten by an update
    blank = dict.fromkeys(columns)  # optional fields a record left out are stored as NULL
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

    # One pass: resolve the account, drop in-batch duplicates, build the row. (Hot: it runs
    # for every pulled or pushed record, so it uses itemgetters rather than generators.)
    ids = account_ids if account_ids is not None else {}
    if spec.has_account:
        missing = {row["account"] for _, row in loaded} - ids.keys()
        if missing:
            ids.update(lookup_account_ids(session, missing))
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
    bulk_insert(session, spec.table, columns, rows, conflict_key=spec.key)
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
