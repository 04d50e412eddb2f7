"""Pulling a source: every kind it provides, since its last good pull; bad records to quarantine."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.bulk import bulk_insert
from app.models import QuarantinedRecord, SourceCursor
from app.services.common import page_of
from app.services.ingest.records import IngestResult, ingest_records, ingest_rows
from app.sources.base import Malformed, Rows, Source
from app.validation import scrub_text


@dataclass(frozen=True, slots=True)
class PullSummary:
    source: str
    landed: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def total_landed(self) -> int:
        return sum(self.landed.values())

    def counts(self) -> dict[str, Any]:
        return {"source": self.source, "landed": self.landed, "quarantined": self.quarantined}

    def one_line(self) -> str:
        parts = [f"{kind} {count}" for kind, count in self.landed.items()]
        return (
            f"Pulled {self.source}: {self.total_landed} records landed ({', '.join(parts) or 'nothing new'}), "
            f"{sum(self.quarantined.values())} quarantined"
        )


def quarantine(session: Session, *, source: str, kind: str, items: list[tuple[Any, dict[str, Any]]]) -> None:
    """Keep rejected pulled items with their raw payload and reasons (never commits).

    Keyed by a fingerprint of the payload: the same bad record pulled again refreshes its entry
    (reasons, time) instead of adding a second one.
    """
    if not items:
        return
    now = dt.datetime.now(dt.UTC)
    rows = {}
    for payload, errors in items:
        document = payload if isinstance(payload, dict) else {"raw": payload}
        # What no database column takes (NUL, unpaired surrogates) is kept as U+FFFD: the record
        # stays in the quarantine with its reasons instead of failing the whole pull.
        document = scrub_text(document)
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
        fingerprint = hashlib.sha256(text.encode()).hexdigest()
        rows[fingerprint] = (source, kind, fingerprint, text, json.dumps(errors), now, 0)
    bulk_insert(
        session,
        QuarantinedRecord.__table__,  # type: ignore[arg-type]
        ("source", "kind", "fingerprint", "payload", "errors", "quarantined_at", "retries"),
        list(rows.values()),
        conflict_key=("source", "kind", "fingerprint"),
    )


def pull_source(session: Session, source: Source, *, now: dt.datetime) -> PullSummary:
    """Pull every kind ``source`` provides, changed since its last good pull, as of ``now``.

    Good records are upserted (idempotent); rejected ones are quarantined with their reasons.
    The cursors advance to ``now`` (the pull's start) only when the transaction commits, so a
    failed pull (``SourceUnavailable``) leaves them where the last good one stopped. Never commits.
    """
    summary = PullSummary(source.name)
    account_ids: dict[str, int] = {}  # external id -> id, shared by every chunk of this pull
    for kind in source.kinds:
        cursor = session.get(SourceCursor, (source.name, kind))
        since = cursor.pulled_at if cursor is not None else None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)  # SQLite returns naive UTC
        landed = quarantined = 0
        for chunk in source.pull(kind, since=since, as_of=now.date()):
            bad: list[tuple[Any, dict[str, Any]]]
            result: IngestResult | None = None
            if isinstance(chunk, Rows):
                result = ingest_rows(
                    session, kind=kind, columns=chunk.columns, rows=chunk.rows, source=source.name,
                    account_ids=account_ids,
                )  # fmt: skip
                bad = [(chunk.record(r.index), r.errors) for r in result.rejected]
            else:
                records = [item for item in chunk if not isinstance(item, Malformed)]
                bad = [(item.raw, {"_schema": [item.reason]}) for item in chunk if isinstance(item, Malformed)]
                if records:
                    result = ingest_records(
                        session, kind=kind, records=records, source=source.name, account_ids=account_ids
                    )
                    bad += [(records[r.index], r.errors) for r in result.rejected]
            if result is not None:
                if kind == "accounts":
                    account_ids.clear()  # new accounts: look them up afresh
                landed += result.landed
            quarantine(session, source=source.name, kind=kind, items=bad)
            quarantined += len(bad)
        if cursor is None:
            session.add(SourceCursor(source=source.name, kind=kind, pulled_at=now, records=landed))
        else:
            cursor.pulled_at = now
            cursor.records = landed
        summary.landed[kind] = landed
        summary.quarantined[kind] = quarantined
    session.flush()
    return summary


def last_pulls(session: Session) -> dict[tuple[str, str], dt.datetime]:
    """When each (source, kind) was last pulled."""
    return {(c.source, c.kind): c.pulled_at for c in session.scalars(sa.select(SourceCursor))}


def _quarantined(source: str | None, kind: str | None) -> sa.Select[QuarantinedRecord]:
    query = sa.select(QuarantinedRecord)
    if source is not None:
        query = query.where(QuarantinedRecord.source == source)
    if kind is not None:
        query = query.where(QuarantinedRecord.kind == kind)
    return query


def list_quarantine(
    session: Session, *, source: str | None, kind: str | None, page: int, per_page: int
) -> tuple[list[QuarantinedRecord], int]:
    """One page of quarantined records, oldest first."""
    query = _quarantined(source, kind)
    statement, total = page_of(session, query, order_by=(QuarantinedRecord.id,), page=page, per_page=per_page)
    return list(session.scalars(statement)), total


@dataclass(frozen=True, slots=True)
class RetrySummary:
    retried: int
    landed: int
    still_rejected: int


def retry_quarantine(session: Session, *, source: str | None, kind: str | None, now: dt.datetime) -> RetrySummary:
    """Validate quarantined records again (after the cause was fixed: an account created, say).

    Those that land leave the quarantine; the others stay with their new reasons. Never commits.
    """
    query = _quarantined(source, kind).order_by(QuarantinedRecord.id)
    groups: dict[tuple[str, str], list[QuarantinedRecord]] = {}
    for item in session.scalars(query):
        groups.setdefault((item.source, item.kind), []).append(item)
    landed = retried = 0
    for (item_source, item_kind), items in groups.items():
        retryable = [item for item in items if "raw" not in item.payload or len(item.payload) > 1]
        for item in items:
            item.retries += 1
            item.retried_at = now
        retried += len(items)
        if not retryable:
            continue
        result = ingest_records(
            session, kind=item_kind, records=[item.payload for item in retryable], source=item_source
        )
        rejected = {r.index: r.errors for r in result.rejected}
        for index, item in enumerate(retryable):
            if index in rejected:
                item.errors = rejected[index]
            else:
                session.delete(item)
                landed += 1
    session.flush()
    return RetrySummary(retried=retried, landed=landed, still_rejected=retried - landed)
