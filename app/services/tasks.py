"""What CSMs work: tasks and play runs (``/api/v1/tasks``, ``/api/v1/accounts/<id>/play-runs``).

Every list is one count and one page query with the account and play joined in; play runs with
their tasks add one query for the tasks of the page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models import Account, PlayDefinition, PlayRun, PlayRunStatus, Task, TaskStatus
from app.services.audit import record
from app.services.common import page_of, require_account, rows


@dataclass(frozen=True, slots=True)
class TaskFilters:
    owner: str | None = None
    status: str | None = None
    due_before: dt.date | None = None
    owners: tuple[str, ...] | None = None  # the caller's book: tasks of the accounts they own
    account: int | None = None
    play: str | None = None


_PLAY_NAME = PlayDefinition.definition["name"].as_string().label("play_name")
#: A task's own fields, as a run lists them.
_TASK_FIELDS = (
    Task.position,
    Task.type,
    Task.title,
    Task.description,
    Task.owner_role,
    Task.assignee,
    Task.due_on,
    Task.status,
    Task.completed_by,
    Task.completed_at,
    Task.created_at,
)
#: A task with its account, play and run, as the task list shows it.
_TASK_COLUMNS = (
    Task.id,
    Task.account_id,
    Account.name.label("account_name"),
    PlayRun.play_id,
    _PLAY_NAME,
    Task.play_run_id,
    PlayRun.status.label("play_run_status"),
    *_TASK_FIELDS,
)


def _task_query() -> sa.Select[Any]:
    return (
        sa.select(*_TASK_COLUMNS)
        .join(Account, Account.id == Task.account_id)
        .join(PlayRun, PlayRun.id == Task.play_run_id)
        .join(PlayDefinition, PlayDefinition.id == PlayRun.play_id)
    )


def list_tasks(session: Session, *, filters: TaskFilters, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    """One page of tasks by due day (then id), each with its account name, play and run."""
    query = _task_query()
    if filters.owner is not None:
        query = query.where(Task.assignee == filters.owner)
    elif filters.owners is not None:
        query = query.where(Account.owner.in_(filters.owners))
    if filters.status is not None:
        query = query.where(Task.status == filters.status)
    if filters.due_before is not None:
        query = query.where(Task.due_on <= filters.due_before)
    if filters.account is not None:
        query = query.where(Task.account_id == filters.account)
    if filters.play is not None:
        query = query.where(PlayRun.play_id == filters.play)
    statement, total = page_of(session, query, order_by=(Task.due_on, Task.id), page=page, per_page=per_page)
    return [row._asdict() for row in session.execute(statement)], total


_CLOSED = (TaskStatus.DONE, TaskStatus.SKIPPED)


def update_task(
    session: Session, task_id: int, *, status: TaskStatus, by: str | None, now: dt.datetime, actor: str | None = None
) -> dict[str, Any]:
    """Close (done, skipped) or reopen a task, and complete or reopen its run to match; a change
    is audited (``task.update``) with ``actor``, who made the change (default ``by``).

    The run completes when none of its tasks is open; reopening a task of a completed run reopens
    the run, unless the account has another open run of the same play (``Conflict``: only one
    open run per account and play). Setting the status a task already has changes nothing. The run
    row is locked first, so two requests closing the last two tasks cannot both miss completing it.
    """
    run_id = session.scalar(sa.select(Task.play_run_id).where(Task.id == task_id))
    if run_id is None:
        raise NotFound(f"Task {task_id} does not exist.")
    run = session.scalar(sa.select(PlayRun).where(PlayRun.id == run_id).with_for_update())
    task = session.scalar(sa.select(Task).where(Task.id == task_id).with_for_update())
    assert run is not None and task is not None  # rows are never deleted but with their account
    if run.status is PlayRunStatus.CANCELLED:
        raise Conflict(f"Task {task_id} belongs to play run {run.id}, which was cancelled; it cannot change.")
    if task.status is not status:
        if status in _CLOSED:
            task.status, task.completed_by, task.completed_at = status, by, now
            session.flush()
            still_open = session.scalar(
                sa.select(sa.func.count())
                .select_from(Task)
                .where(Task.play_run_id == run.id, Task.status == TaskStatus.OPEN)
            )
            if run.status is PlayRunStatus.OPEN and not still_open:
                run.status, run.closed_at = PlayRunStatus.COMPLETED, now
        else:
            if run.status is PlayRunStatus.COMPLETED:
                _reopen_run(session, run)
            task.status, task.completed_by, task.completed_at = TaskStatus.OPEN, None, None
        session.flush()
        record(
            session,
            actor=actor or by or "unknown",
            action="task.update",
            target=f"task:{task_id}",
            details={"status": status.value, "by": by if status in _CLOSED else None, "play_run": run.id},
        )
    return _task_item(session, task_id)


def _reopen_run(session: Session, run: PlayRun) -> None:
    other = session.scalar(
        sa.select(PlayRun.id).where(
            PlayRun.account_id == run.account_id,
            PlayRun.play_id == run.play_id,
            PlayRun.status == PlayRunStatus.OPEN,
            PlayRun.id != run.id,
        )
    )
    message = (
        "Cannot reopen this task: its play run {run} is completed and the account already has an open run "
        "({other}) of play {play!r}; only one run of a play can be open per account. Work the open run's tasks."
    )
    if other is not None:
        raise Conflict(message.format(run=run.id, other=other, play=run.play_id))
    run.status, run.closed_at = PlayRunStatus.OPEN, None
    try:
        session.flush()
    except IntegrityError:  # a run of that play opened concurrently (the partial unique index)
        raise Conflict(message.format(run=run.id, other="started just now", play=run.play_id)) from None


def _task_item(session: Session, task_id: int) -> dict[str, Any]:
    row = session.execute(_task_query().where(Task.id == task_id)).one()
    return row._asdict()


_RUN_COLUMNS = (
    PlayRun.id,
    PlayRun.play_id,
    _PLAY_NAME,
    PlayRun.play_version,
    PlayRun.status,
    PlayRun.started_on,
    PlayRun.trigger_rule_id,
    PlayRun.stage,
    PlayRun.band,
    PlayRun.score,
    PlayRun.watchlist,
    PlayRun.alert,
    PlayRun.created_at,
    PlayRun.closed_at,
)


def list_play_runs(
    session: Session, account_id: int, *, status: str | None, page: int, per_page: int, count: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """One page of an account's play runs, newest first, each with its tasks in order
    (``count=False``: the total is not counted)."""
    require_account(session, account_id)
    query = (
        sa.select(*_RUN_COLUMNS)
        .join(PlayDefinition, PlayDefinition.id == PlayRun.play_id)
        .where(PlayRun.account_id == account_id)
    )
    if status is not None:
        query = query.where(PlayRun.status == status)
    statement, total = page_of(
        session,
        query,
        order_by=(PlayRun.started_on.desc(), PlayRun.id.desc()),
        page=page,
        per_page=per_page,
        count=count,
    )
    runs = [{**row._asdict(), "tasks": []} for row in rows(session, statement)]
    by_id = {run["id"]: run for run in runs}
    if by_id:
        tasks = rows(
            session,
            sa.select(Task.id, Task.play_run_id, *_TASK_FIELDS)
            .where(Task.play_run_id.in_(by_id))
            .order_by(Task.play_run_id, Task.position),
        )
        for task in tasks:
            by_id[task.play_run_id]["tasks"].append(task._asdict())
    return runs, total
