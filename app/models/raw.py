"""Raw data per account: daily usage and product signals, licenses, tickets, feedback, goals, outcomes."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.enums import (
    FeedbackKind,
    GoalStatus,
    OutcomeKind,
    TicketPriority,
    TicketStatus,
    enum_type,
)

_ACCOUNT_FK = "accounts.id"


class DailyUsage(Base):
    """One row per account per day; days without a row had no activity."""

    __tablename__ = "daily_usage"
    # Clustered by (account, day) on SQLite too: the scoring run's window aggregate reads it in order.
    __table_args__ = ({"sqlite_with_rowid": False},)

    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    active_users: Mapped[int] = mapped_column(default=0)
    logins: Mapped[int] = mapped_column(default=0)
    key_feature_uses: Mapped[int] = mapped_column(default=0)


class UsageSignal(Base):
    """A named product signal (``setup_completed``, ``first_value``, ``data_export``, ...) on a day."""

    __tablename__ = "usage_signals"
    __table_args__ = (
        # Measures and event rules read signals over recent windows: an index range per (signal,
        # window), covering the account and the count, so the read never visits the table.
        sa.Index("ix_usage_signals_signal_day_account_count", "signal", "day", "account_id", "count"),
        {"sqlite_with_rowid": False},
    )

    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    signal: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    count: Mapped[int] = mapped_column(default=1)


class LicenseSnapshot(Base):
    __tablename__ = "license_snapshots"

    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    seats_purchased: Mapped[int]
    seats_assigned: Mapped[int]
    seats_active: Mapped[int]


class SupportTicket(Base):
    __tablename__ = "support_tickets"
    __table_args__ = (sa.UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(64), default="manual")
    external_id: Mapped[str] = mapped_column(sa.String(128))
    subject: Mapped[str | None] = mapped_column(sa.String(500))
    priority: Mapped[TicketPriority] = mapped_column(enum_type(TicketPriority, "ticket_priority"))
    status: Mapped[TicketStatus] = mapped_column(enum_type(TicketStatus, "ticket_status"))
    opened_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    sla_breached: Mapped[bool] = mapped_column(default=False)


class Feedback(Base):
    """An NPS (0-10), CSAT (1-5) response, or a CSM sentiment rating (1-5)."""

    __tablename__ = "feedback"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id"),
        # The measures' windowed reads, and each account's latest of a kind (newest day, then
        # newest id) as one backward index-only seek: the score is in the index.
        sa.Index("ix_feedback_account_id_kind_day_id_score", "account_id", "kind", "day", "id", "score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(sa.String(64), default="manual")
    external_id: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[FeedbackKind] = mapped_column(enum_type(FeedbackKind, "feedback_kind"))
    day: Mapped[dt.date] = mapped_column(sa.Date)
    score: Mapped[float]
    respondent: Mapped[str | None] = mapped_column(sa.String(255))
    comment: Mapped[str | None] = mapped_column(sa.Text)


class Goal(Base):
    """A success-plan goal agreed with the customer."""

    __tablename__ = "goals"
    __table_args__ = (sa.UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(64), default="manual")
    external_id: Mapped[str] = mapped_column(sa.String(128))
    title: Mapped[str] = mapped_column(sa.String(500))
    status: Mapped[GoalStatus] = mapped_column(enum_type(GoalStatus, "goal_status"))
    created_on: Mapped[dt.date] = mapped_column(sa.Date)
    due_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    achieved_on: Mapped[dt.date | None] = mapped_column(sa.Date)


class Outcome(Base):
    """What happened at a renewal point: renewed, churned, expanded or downgraded."""

    __tablename__ = "outcomes"
    __table_args__ = (sa.UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(64), default="manual")
    external_id: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[OutcomeKind] = mapped_column(enum_type(OutcomeKind, "outcome_kind"))
    day: Mapped[dt.date] = mapped_column(sa.Date)
    arr_change: Mapped[float | None]
    note: Mapped[str | None] = mapped_column(sa.Text)
