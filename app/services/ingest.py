"""Pushed records in: validate each, resolve accounts, drop in-batch duplicates, upsert by natural key.

Idempotent: every kind has a natural key (an account's external id; source + external id; or
account + day for daily data), so posting the same records again changes nothing and a later
version of a record replaces the stored one. Good records land even when others are rejected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from marshmallow import Schema, ValidationError
from sqlalchemy.dialects import postgresql, sqlite
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
    AccountRecordSchema,
    ContactRecordSchema,
    FeedbackRecordSchema,
    GoalRecordSchema,
    LicenseRecordSchema,
    OutcomeRecordSchema,
    TicketRecordSchema,
    UsageRecordSchema,
)

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
    "outcomes": KindSpec(OutcomeRecordSchema, Outcome.__table__, ("source", "external_id"), True, True),  # type: ignore[arg-type]
}


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


def upsert(session: Session, table: sa.Table, rows: list[dict[str, Any]], key: tuple[str, ...]) -> None:
    """Insert ``rows`` (all with the same columns), updating rows whose natural ``key`` exists.

    ``INSERT ... ON CONFLICT (key) DO UPDATE``, which PostgreSQL and SQLite both speak.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect not in {"postgresql", "sqlite"}:
        raise NotImplementedError(f"upserts are written for PostgreSQL and SQLite, not {dialect}")
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    changing = {name: insert.excluded[name] for name in rows[0] if name not in key and name != "created_at"}
    statement = (
        insert.on_conflict_do_update(index_elements=list(key), set_=changing)
        if changing
        else insert.on_conflict_do_nothing(index_elements=list(key))
    )
    session.execute(statement, rows)


def _account_ids(session: Session, external_ids: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    ordered = sorted(external_ids)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        rows = session.execute(sa.select(Account.external_id, Account.id).where(Account.external_id.in_(chunk)))
        found.update({external_id: account_id for external_id, account_id in rows})
    return found


def ingest_records(session: Session, *, kind: str, records: list[Any], source: str) -> IngestResult:
    """Validate and store a batch of ``kind`` records from ``source``; never commits.

    Each record is validated on its own; rejected ones are returned with their index and
    field-level messages (unknown account, duplicate of an earlier record in the batch...).
    Raises ``KeyError`` for an unknown kind.
    """
    spec = KINDS[kind]
    schema = spec.schema()
    rejected: list[Rejected] = []
    loaded: list[tuple[int, dict[str, Any]]] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            rejected.append(Rejected(index, {"_schema": ["Each record must be a JSON object."]}))
            continue
        try:
            loaded.append((index, schema.load(record)))
        except ValidationError as exc:
            rejected.append(Rejected(index, exc.normalized_messages()))

    if spec.has_account:
        ids = _account_ids(session, {row["account"] for _, row in loaded})
        resolved = []
        for index, row in loaded:
            account_id = ids.get(row["account"])
            if account_id is None:
                rejected.append(Rejected(index, {"account": [f"Unknown account {row['account']!r}."]}))
                continue
            row["account_id"] = account_id
            del row["account"]
            resolved.append((index, row))
        loaded = resolved

    seen: dict[tuple[Any, ...], int] = {}
    unique: list[tuple[int, dict[str, Any]]] = []
    key_fields = [name for name in spec.key if name != "source"]
    for index, row in loaded:
        key = tuple(row[name] for name in key_fields)
        if key in seen:
            names = " + ".join("account" if name == "account_id" else name for name in key_fields)
            rejected.append(Rejected(index, {"_schema": [f"Same {names} as record {seen[key]} in this batch."]}))
            continue
        seen[key] = index
        unique.append((index, row))

    columns = [c.name for c in spec.table.columns if c.name in spec.schema().fields or c.name == "account_id"]
    rows = []
    signal_rows = []
    now = dt.datetime.now(dt.UTC)
    for _, row in unique:
        full = {name: row.get(name) for name in columns}
        if spec.has_source:
            full["source"] = source
        if spec.table is Account.__table__:
            full["updated_at"] = now
        rows.append(full)
        for signal, count in row.get("signals", {}).items():
            signal_rows.append({"account_id": row["account_id"], "day": row["day"], "signal": signal, "count": count})
    upsert(session, spec.table, rows, spec.key)
    upsert(session, UsageSignal.__table__, signal_rows, ("account_id", "day", "signal"))  # type: ignore[arg-type]
    rejected.sort(key=lambda r: r.index)
    return IngestResult(kind=kind, received=len(records), landed=len(rows), rejected=rejected)
