"""Enumerations stored in the database (as checked strings, portable across SQLite and PostgreSQL)."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa

from scoring.rules import ContactRole  # noqa: F401 - defined once, in the core (contact-change rules read it)
from scoring.stage import BillingTerm  # noqa: F401 - defined once, in the core (stage rules read it)


class AccountStatus(StrEnum):
    ACTIVE = "active"
    CHURNED = "churned"
    RENEWED = "renewed"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"


class FeedbackKind(StrEnum):
    NPS = "nps"  # 0-10
    CSAT = "csat"  # 1-5
    CSM_SENTIMENT = "csm_sentiment"  # 1-5, from the account's CSM


class GoalStatus(StrEnum):
    OPEN = "open"
    ACHIEVED = "achieved"
    MISSED = "missed"
    CANCELLED = "cancelled"


class OutcomeKind(StrEnum):
    RENEWED = "renewed"
    CHURNED = "churned"
    EXPANDED = "expanded"
    DOWNGRADED = "downgraded"


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PlayRunStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"  # every task done or skipped
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    SKIPPED = "skipped"


class AlertStatus(StrEnum):
    """An outbox row's life: ``pending`` until sent (retried with backoff while it fails),
    ``sent``, or ``dead`` after its last try; ``held`` when the recipient's daily budget was
    spent (it goes into their next digest, then ``digested``)."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
    HELD = "held"
    DIGESTED = "digested"


class Role(StrEnum):
    """What an API token may do (see app/auth.py for the matrix)."""

    ADMIN = "admin"
    MANAGER = "manager"
    CSM = "csm"
    INGEST = "ingest"  # machine clients pushing data
    VIEWER = "viewer"


class JobKind(StrEnum):
    """What a requested job does (``job_requests.kind``): work an API call queues instead of doing
    it in the request."""

    RESCORE = "rescore"  # the portfolio, with the active config (queued by an activation)
    SUGGESTIONS = "suggestions"  # suggested weights learned from outcomes
    TRAIN_CHURN_MODEL = "train-churn-model"


class JobRequestStatus(StrEnum):
    """A requested job's life: ``queued`` until a worker claims it, ``running`` under the worker's
    lease, then ``succeeded`` or ``failed`` (or ``queued`` again while it has attempts left)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def enum_type(enum: type[StrEnum], name: str) -> sa.Enum:
    """A VARCHAR with a CHECK constraint holding the enum's values (no native PostgreSQL enum)."""
    return sa.Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(v.value) for v in enum),
        values_callable=lambda e: [member.value for member in e],
        validate_strings=True,
    )
