"""What an operator asks of a running install: is it ready to serve (database, schema, scheduler,
outbox), and the figures a monitoring system scrapes, read from the database so that every web
worker answers the same."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Alert, AlertStatus, JobRequest, JobRequestStatus, JobRun, QuarantinedRecord, SchedulerLease


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ok else "not ready",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def oldest_due_alert_age(session: Session, now: dt.datetime) -> float:
    """Seconds the oldest pending alert has been due (0 when none is due)."""
    oldest = _aware(
        session.scalar(
            sa.select(sa.func.min(Alert.next_attempt_at)).where(
                Alert.status == AlertStatus.PENDING, Alert.next_attempt_at <= now
            )
        )
    )
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


def check_readiness(
    session: Session,
    *,
    now: dt.datetime,
    schema_revision: str | None,
    head_revision: str | None,
    outbox_max_due_seconds: int,
    require_scheduler: bool,
) -> Readiness:
    """The readiness checks, each with what it saw. The caller has checked the database answers
    and read ``schema_revision`` (alembic's ``current``) with the same connection."""
    checks = [Check("database", True, "reachable")]
    at_head = schema_revision == head_revision
    checks.append(Check("migrations", at_head, f"at {schema_revision}, head {head_revision}"))
    if not at_head:  # the tables below may not be there yet: run `flask db upgrade`
        return Readiness([*checks, Check("scheduler", False, "not checked"), Check("outbox", False, "not checked")])
    lease = session.execute(sa.select(SchedulerLease.holder, SchedulerLease.expires_at)).first()
    expires = _aware(lease.expires_at) if lease is not None else None
    fresh = expires is not None and expires > now
    detail = f"held by {lease.holder} until {expires.isoformat()}" if lease is not None and expires else "no lease"
    checks.append(Check("scheduler", fresh or not require_scheduler, detail if fresh else f"stale: {detail}"))
    age = oldest_due_alert_age(session, now)
    checks.append(
        Check(
            "outbox",
            age <= outbox_max_due_seconds,
            f"oldest due alert waiting {age:.0f} s (limit {outbox_max_due_seconds} s)",
        )
    )
    return Readiness(checks)


@dataclass(frozen=True, slots=True)
class Figures:
    """The scraped figures (see docs/operations.md for their metric names)."""

    job_runs: list[tuple[str, str, int, float]]  # job, status, count, seconds of the finished ones
    last_run_seconds: list[tuple[str, float]]  # job, the newest finished run's duration
    job_request_failures: list[tuple[str, int]]  # kind, failed requests
    alerts: list[tuple[str, int]]  # status, count
    oldest_due_alert_seconds: float
    quarantined: int


def collect_figures(session: Session, *, now: dt.datetime) -> Figures:
    """Counts and durations from ``job_runs``, ``job_requests``, ``alerts`` and the quarantine:
    one grouped query each."""
    seconds = sa.func.sum(_seconds(session, JobRun.started_at, JobRun.finished_at))
    runs = session.execute(
        sa.select(JobRun.job, JobRun.status, sa.func.count(), seconds).group_by(JobRun.job, JobRun.status)
    ).all()
    newest = (
        sa.select(JobRun.job, sa.func.max(JobRun.id).label("id"))
        .where(JobRun.finished_at.is_not(None))
        .group_by(JobRun.job)
        .subquery()
    )
    last = session.execute(
        sa.select(JobRun.job, _seconds(session, JobRun.started_at, JobRun.finished_at)).join(
            newest, newest.c.id == JobRun.id
        )
    ).all()
    failed = session.execute(
        sa.select(JobRequest.kind, sa.func.count())
        .where(JobRequest.status == JobRequestStatus.FAILED)
        .group_by(JobRequest.kind)
    ).all()
    alerts = session.execute(sa.select(Alert.status, sa.func.count()).group_by(Alert.status)).all()
    quarantined = session.scalar(sa.select(sa.func.count()).select_from(QuarantinedRecord)) or 0
    return Figures(
        job_runs=[
            (job, str(getattr(status, "value", status)), count, float(total or 0)) for job, status, count, total in runs
        ],
        last_run_seconds=[(job, float(value or 0)) for job, value in last],
        job_request_failures=[(str(getattr(kind, "value", kind)), count) for kind, count in failed],
        alerts=[(str(getattr(status, "value", status)), count) for status, count in alerts],
        oldest_due_alert_seconds=oldest_due_alert_age(session, now),
        quarantined=int(quarantined),
    )


def _seconds(session: Session, start: Any, end: Any) -> Any:
    """``end - start`` in seconds, in SQL (NULL while a run is running)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86_400.0
