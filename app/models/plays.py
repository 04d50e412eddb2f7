"""Events (milestones and risks), play definitions, play runs and the CSM tasks they create."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.models.enums import PlayRunStatus, TaskStatus, enum_type
from playbooks.plays import AlertMode, OwnerRole, TaskType
from scoring.bands import Band
from scoring.rules import RuleKind, Severity
from scoring.stage import LifecycleStage

_ACCOUNT_FK = "accounts.id"


class Event(Base):
    """One occurrence of a rule for an account, fired by the scoring run of ``day``.

    ``(account_id, rule_id, day)`` is unique: a re-run of a day can never store an event twice.
    ``trigger_values`` holds what made the rule fire (the value and its threshold, the two windows
    of a change, the signal count, ...).
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "rule_id", "day"),
        sa.Index("ix_events_day", "day"),
        sa.Index("ix_events_rule_id_day", "rule_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(sa.String(64))
    rule_name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[RuleKind] = mapped_column(enum_type(RuleKind, "rule_kind"))
    severity: Mapped[Severity] = mapped_column(enum_type(Severity, "rule_severity"))
    stage: Mapped[LifecycleStage] = mapped_column(enum_type(LifecycleStage, "lifecycle_stage"))
    day: Mapped[dt.date] = mapped_column(sa.Date)
    config_version: Mapped[int]
    score: Mapped[float | None]
    trigger_values: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PlayDefinition(Base):
    """A play of the library: its JSON form (``playbooks.plays.Play.to_dict``), editable by admins."""

    __tablename__ = "plays"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    definition: Mapped[dict[str, Any]]
    enabled: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(255), default="system")


class PlayRun(Base):
    """One play triggered for one account. At most one open run per account and play (a partial
    unique index), and at most one run per account, play and day."""

    __tablename__ = "play_runs"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "play_id", "started_on"),
        sa.Index(
            "uq_play_runs_open",
            "account_id",
            "play_id",
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        ),
        sa.Index("ix_play_runs_play_id_started_on", "play_id", "started_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    play_id: Mapped[str] = mapped_column(sa.ForeignKey("plays.id"))
    play_version: Mapped[int]
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"))
    status: Mapped[PlayRunStatus] = mapped_column(
        enum_type(PlayRunStatus, "play_run_status"), default=PlayRunStatus.OPEN
    )
    started_on: Mapped[dt.date] = mapped_column(sa.Date)
    trigger_rule_id: Mapped[str | None] = mapped_column(sa.String(64))  # None: a band trigger
    stage: Mapped[LifecycleStage] = mapped_column(enum_type(LifecycleStage, "lifecycle_stage"))
    band: Mapped[Band | None] = mapped_column(enum_type(Band, "health_band"))
    score: Mapped[float | None]
    watchlist: Mapped[bool] = mapped_column(default=False)
    alert: Mapped[AlertMode] = mapped_column(enum_type(AlertMode, "alert_mode"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]


class Task(Base):
    """A task of a play run, worked by a CSM (or manager, or support)."""

    __tablename__ = "tasks"
    __table_args__ = (
        sa.UniqueConstraint("play_run_id", "position"),
        sa.Index("ix_tasks_assignee_status_due_on", "assignee", "status", "due_on"),
        sa.Index("ix_tasks_status_due_on", "status", "due_on"),
        sa.Index("ix_tasks_account_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    play_run_id: Mapped[int] = mapped_column(sa.ForeignKey("play_runs.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey(_ACCOUNT_FK, ondelete="CASCADE"))
    position: Mapped[int]
    type: Mapped[TaskType] = mapped_column(enum_type(TaskType, "task_type"))
    title: Mapped[str] = mapped_column(sa.String(500))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    owner_role: Mapped[OwnerRole] = mapped_column(enum_type(OwnerRole, "owner_role"))
    assignee: Mapped[str | None] = mapped_column(sa.String(255))  # the account's CSM for csm tasks
    due_on: Mapped[dt.date] = mapped_column(sa.Date)
    status: Mapped[TaskStatus] = mapped_column(enum_type(TaskStatus, "task_status"), default=TaskStatus.OPEN)
    completed_by: Mapped[str | None] = mapped_column(sa.String(255))
    completed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
