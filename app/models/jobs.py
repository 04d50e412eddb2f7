"""Jobs: scheduler leases, the record of every job run, and requested jobs (a durable queue).

A job request is written in the transaction of what asked for it (an activation and its rescore land
together or not at all). Workers claim due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) under
a lease (``locked_until``), run them and record the outcome; see ``app/services/jobs/requests.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.models.enums import JobKind, JobRequestStatus, JobStatus, enum_type


class JobRun(Base):
    """One run of a job (scoring run, pull, dispatch): when, how it ended, what it counted."""

    __tablename__ = "job_runs"
    __table_args__ = (sa.Index("ix_job_runs_job_started_at", "job", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[JobStatus] = mapped_column(enum_type(JobStatus, "job_status"), default=JobStatus.RUNNING)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class SchedulerLease(Base):
    """Who leads the scheduler: one row per lease name, held until ``expires_at`` unless renewed."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(255))
    acquired_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class JobRequest(Base):
    """One requested job: what (``kind``, ``params``), who and when, and how it went.

    ``locked_until`` is the running worker's lease (renewed while it works; a ``running`` row whose
    lease has passed belongs to a worker that died and is claimed again). On a ``queued`` row it
    is the earliest time of the next attempt after a failure. ``result`` is the JSON answer of a
    ``succeeded`` job, stored as written (plain JSON, not JSONB: it is read back whole, never
    queried, and keeps its key order). ``job_run_id`` is the latest attempt's row in ``job_runs``
    for the kinds recorded there (rescore, train-churn-model).
    """

    __tablename__ = "job_requests"
    __table_args__ = (sa.Index("ix_job_requests_status_requested_at", "status", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(enum_type(JobKind, "job_request_kind"))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by: Mapped[str] = mapped_column(sa.String(255))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[JobRequestStatus] = mapped_column(
        enum_type(JobRequestStatus, "job_request_status"), default=JobRequestStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    locked_by: Mapped[str | None] = mapped_column(sa.String(255))  # the worker holding the lease
    started_at: Mapped[dt.datetime | None]  # the latest attempt's start
    finished_at: Mapped[dt.datetime | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    job_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("job_runs.id", ondelete="SET NULL"))
