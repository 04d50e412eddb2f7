"""Ingest bookkeeping: records a pull rejected (quarantine) and how far each source has been pulled."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class QuarantinedRecord(Base):
    """A pulled record that failed validation, kept with its raw payload until it is retried."""

    __tablename__ = "quarantined_records"
    # The same bad record pulled again updates its entry instead of adding a second one.
    __table_args__ = (sa.UniqueConstraint("source", "kind", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(32))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the canonical payload
    payload: Mapped[dict[str, Any]]
    errors: Mapped[dict[str, Any]]
    quarantined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[dt.datetime | None]
    retries: Mapped[int] = mapped_column(default=0)


class SourceCursor(Base):
    """The last good pull of one kind from one source: the next pull asks for what changed since."""

    __tablename__ = "source_cursors"

    source: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    pulled_at: Mapped[dt.datetime]
    records: Mapped[int] = mapped_column(default=0)


class SegmentMessage(Base):
    """A Segment call already applied, by its messageId: the same call posted again changes nothing."""

    __tablename__ = "segment_messages"

    message_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DailyActiveUser(Base):
    """Who was active for an account on a day (from tracked events): daily active users are counted here."""

    __tablename__ = "daily_active_users"
    __table_args__ = ({"sqlite_with_rowid": False, "info": {"account_scoped": True}},)

    account_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
