"""The audit log: every change made through the API or CLI, in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import AuditEntry


def record(session: Session, *, actor: str, action: str, target: str, details: dict[str, Any] | None = None) -> None:
    """Add one audit entry (``action`` like ``scoring_config.activate``; ``target`` like
    ``scoring_config:3``). Never commits: it lands or rolls back with the change it records."""
    session.add(
        AuditEntry(at=dt.datetime.now(dt.UTC), actor=actor, action=action, target=target, details=details or {})
    )


def entries(session: Session, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The newest entries first, optionally for one target."""
    query = sa.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    return list(session.scalars(query))
