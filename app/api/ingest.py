"""The push API: batches of records of each data kind, validated one by one, upserted by natural key."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import RAISE

from app.api.body import json_body_doc, load_json_array, load_segment_calls
from app.auth import INGEST, access, actor_name
from app.db import get_session
from app.errors import DomainValidationError
from app.limits import expensive_limit, limiter
from app.ops import count_ingested
from app.records import KINDS
from app.schemas.ingest import (
    IngestQuerySchema,
    IngestResultSchema,
    QuarantineFilterSchema,
    QuarantinePageSchema,
    QuarantineQuerySchema,
    RetryResultSchema,
    SegmentResultSchema,
)
from app.services.audit import record
from app.services.ingest.pull import RetrySummary, list_quarantine, retry_quarantine
from app.services.ingest.records import IngestResult, ingest_records
from app.services.ingest.segment import SegmentResult, ingest_segment

bp = Blueprint("ingest", __name__, url_prefix="/api/v1/ingest", description="Push data in")

KIND_CONVERTER = "any(" + ", ".join(KINDS) + "):kind"


@bp.post("/segment")
@access(*INGEST)
@bp.response(200, SegmentResultSchema)
@bp.alt_response(400, description="Malformed JSON")
@bp.alt_response(413, description="Too many calls in one batch")
@bp.alt_response(415, description="Not JSON")
@bp.alt_response(422, description="Not a call or a batch, or an empty batch")
@bp.doc(
    **json_body_doc(
        {"type": "object"}, 'One Segment call (identify, group, track), or {"batch": [calls]} as Segment\'s batch API.'
    )
)
def segment() -> SegmentResult:
    """Segment-spec calls: group updates the account named by groupId (name, plan, seats, arr,
    renewal_date...), identify with context.groupId a contact, track with context.groupId the
    account's daily active users, logins, key-feature uses and named product signals.

    Idempotent by messageId: Segment's retries change nothing.
    """
    calls = load_segment_calls(current_app.config["INGEST_MAX_BATCH"])
    session = get_session()
    with session.begin():
        result = ingest_segment(session, calls=calls, now=dt.datetime.now(dt.UTC))
        details = {"received": len(calls), "rejected": len(result.rejected)}
        count_ingested("segment", accepted=len(calls) - len(result.rejected), rejected=len(result.rejected))
        record(session, actor=actor_name(), action="ingest.segment", target="ingest:segment", details=details)
    return result


@bp.post(f"/<{KIND_CONVERTER}>")
@access(*INGEST)
@bp.arguments(IngestQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, IngestResultSchema)
@bp.alt_response(400, description="Malformed JSON")
@bp.alt_response(413, description="Too many records in one batch")
@bp.alt_response(415, description="Not JSON")
@bp.alt_response(422, description="Not an array, an empty batch, or every record rejected")
@bp.doc(
    **json_body_doc(
        {"type": "array", "items": {"type": "object"}},
        "A JSON array of records of the kind in the path (see the record schemas).",
    )
)
def push(kind: str, source: str) -> IngestResult:
    """Store a batch of records (accounts, contacts, usage, licenses, tickets, feedback, goals, outcomes).

    Each record is validated on its own: good ones land even when others are rejected, and
    the answer lists every rejected record with its index and field messages. Posting the
    same records again changes nothing; a later version of a record updates it.
    """
    records = load_json_array(current_app.config["INGEST_MAX_BATCH"])
    session = get_session()
    with session.begin():
        result = ingest_records(session, kind=kind, records=records, source=source)
        details = {"source": source, "received": result.received, "landed": result.landed}
        count_ingested(kind, accepted=result.landed, rejected=result.received - result.landed)
        record(session, actor=actor_name(), action="ingest.push", target=f"ingest:{kind}", details=details)
    if result.landed == 0:
        body = IngestResultSchema().dump(result)
        raise DomainValidationError("No record in the batch was valid.", errors={"json": body})
    return result


@bp.get("/quarantine")
@access(*INGEST)
@bp.arguments(QuarantineQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, QuarantinePageSchema)
def quarantined(page: int, per_page: int, source: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """Pulled records that were rejected, with their raw payload and reasons, oldest first."""
    session = get_session()
    with session.begin():
        items, total = list_quarantine(session, source=source, kind=kind, page=page, per_page=per_page)
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.post("/quarantine/retry")
@access(*INGEST)
@limiter.limit(expensive_limit)
@bp.arguments(QuarantineFilterSchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, RetryResultSchema)
def retry(source: str | None = None, kind: str | None = None) -> RetrySummary:
    """Validate quarantined records again once the cause is fixed; those that land leave the quarantine."""
    session = get_session()
    with session.begin():
        summary = retry_quarantine(session, source=source, kind=kind, now=dt.datetime.now(dt.UTC))
        details = {"source": source, "kind": kind, "landed": summary.landed}
        record(
            session, actor=actor_name(), action="ingest.quarantine_retry", target="ingest:quarantine", details=details
        )
    return summary
