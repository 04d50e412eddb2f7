"""The alert outbox: one row per message to one recipient, written in the transaction of what caused it.

The scoring run writes its alerts in the same transaction as the events and play runs behind
them, so neither can exist without the other. Dispatchers claim due rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL) under a lease, send them and mark them sent; see docs/alerts.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from alerts.base import AlertKind, ChannelType
from app.db import Base, utcnow
from app.models.enums import AlertStatus, enum_type


class Alert(Base):
    """One message to one recipient (an email address, or ``channel:<name>``).

    ``dedupe_key`` is unique: the same alert can never be queued twice (a re-run of a scoring
    day, a second digest pass, a second escalation). ``payload`` is the message as queued
    (``alerts.base.Message.to_dict``): retries send exactly it.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index(
            "ix_alerts_due",
            "next_attempt_at",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_alerts_status_created_at", "status", "created_at"),
        sa.Index("ix_alerts_recipient_day", "recipient", "day"),
        sa.Index("ix_alerts_account_id_created_at", "account_id", "created_at"),
        sa.Index(
            "ix_alerts_awaiting_ack",
            "created_at",
            sqlite_where=sa.text("requires_ack AND acknowledged_at IS NULL AND escalated_at IS NULL"),
            postgresql_where=sa.text("requires_ack AND acknowledged_at IS NULL AND escalated_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    kind: Mapped[AlertKind] = mapped_column(enum_type(AlertKind, "alert_kind"))
    status: Mapped[AlertStatus] = mapped_column(enum_type(AlertStatus, "alert_status"), default=AlertStatus.PENDING)
    channel: Mapped[ChannelType] = mapped_column(enum_type(ChannelType, "alert_channel"))
    recipient: Mapped[str] = mapped_column(sa.String(255))  # an email address or channel:<name>
    recipient_user: Mapped[str | None] = mapped_column(sa.String(255))  # the user behind an address
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(sa.Date)  # the scoring day (digests: the recipient's local date)
    severity: Mapped[str | None] = mapped_column(sa.String(16))
    route_ids: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    event_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    play_run_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    payload: Mapped[dict[str, Any]]
    requires_ack: Mapped[bool] = mapped_column(default=False)
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(sa.String(255))
    escalated_at: Mapped[dt.datetime | None]  # when its escalation was queued (once)
    escalation_of: Mapped[int | None] = mapped_column(sa.ForeignKey("alerts.id", ondelete="SET NULL"))
    digest_id: Mapped[int | None] = mapped_column(sa.ForeignKey("alerts.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=8)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[dt.datetime | None]
    locked_by: Mapped[str | None] = mapped_column(sa.String(255))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_via: Mapped[ChannelType | None] = mapped_column(enum_type(ChannelType, "alert_delivered_via"))
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AlertCooldown(Base):
    """When an account was last alerted about a rule: an event of the same rule within the
    routing's cooldown goes to the digest instead of an immediate message."""

    __tablename__ = "alert_cooldowns"

    account_id: Mapped[int] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    rule_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    alerted_at: Mapped[dt.datetime]


class AlertRoutingVersion(Base):
    """Who hears about what (``alerts/routing.py``), edited by admins; the newest version applies."""

    __tablename__ = "alert_routing_versions"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]]
    author: Mapped[str] = mapped_column(sa.String(255))
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
