"""Watchlist pins, band overrides and the audit log of changes made through the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.models.enums import enum_type
from scoring.bands import Band

_ACCOUNT_FK = "accounts.id"


class WatchlistPin(Base):
    """An account put on the watchlist by hand. A pin ends when removed or at ``expires_at``;
    ended pins are kept (who pinned what, why, and who took it off). At most one live pin per
    account (a partial unique index on the pins not removed)."""

    __tablename__ = "watchlist_pins"
    __table_args__ = (
        sa.Index(
            "uq_watchlist_pins_live",
            "account_id",
            unique=True,
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(sa.Text)
    author: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    removed_at: Mapped[dt.datetime | None]
    removed_by: Mapped[str | None] = mapped_column(sa.String(255))


class BandOverride(Base):
    """A CSM's override of an account's band, with a mandatory reason and an expiry after which
    it reverts by itself. The computed score and its history are never changed; every override
    ever made stays here (the audit trail). At most one live override per account."""

    __tablename__ = "band_overrides"
    __table_args__ = (
        sa.Index(
            "uq_band_overrides_live",
            "account_id",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
        sa.Index("ix_band_overrides_account_id_created_at", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"))
    band: Mapped[Band] = mapped_column(enum_type(Band, "health_band"))
    reason: Mapped[str] = mapped_column(sa.Text)
    author: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(sa.String(255))


class AuditEntry(Base):
    """One change made through the API or CLI: who, when, what, and the details."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_target_at", "target", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(64))  # e.g. scoring_config.activate, play.update, override.create
    target: Mapped[str] = mapped_column(sa.String(255))  # e.g. scoring_config:3, play:poor-health, account:42
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
