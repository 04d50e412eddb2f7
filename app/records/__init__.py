"""Ingested data: the kinds of records, what each must hold and where it is stored.

Shared by the push API's services (``app.services.ingest``) and the pulled sources
(``app.sources``), so a record is held to the same rules however it arrives. ``KINDS`` is the one
list of kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from marshmallow import Schema

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
from app.records.schemas import (
    AccountEventRecordSchema,
    AccountRecordSchema,
    ContactRecordSchema,
    FeedbackRecordSchema,
    GoalRecordSchema,
    LicenseRecordSchema,
    OutcomeRecordSchema,
    TicketRecordSchema,
    UsageRecordSchema,
)


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
