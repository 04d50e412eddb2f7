"""What CSMs read and work: events, the rule catalog, the play library, tasks and play runs.

Every list is one count and one page query with the account (and play) joined in, never a
query per row; play runs with their tasks add one query for the tasks of the page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, DomainValidationError, NotFound
from app.models import Account, Event, PlayDefinition, PlayRun, PlayRunStatus, Task, TaskStatus
from app.services.paging import page_of
from app.services.plays import ensure_default_plays, new_play_row
from app.services.scoring_config import get_active_model
from playbooks.plays import Play
from scoring.rules import COMMON_FIELDS, describe

# --- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFilters:
    since: dt.date | None = None
    kind: str | None = None
    rule: str | None = None
    stage: str | None = None
    owner: str | None = None
    severity: str | None = None
    owners: tuple[str, ...] | None = None  # the caller's book (see app.auth.default_owners)


_EVENT_COLUMNS = (
    Event.id,
    Event.account_id,
    Account.name.label("account_name"),
    Account.owner,
    Event.rule_id,
    Event.rule_name,
    Event.kind,
    Event.severity,
    Event.stage,
    Event.day,
    Event.score,
    Event.config_version,
    Event.trigger_values,
    Event.created_at,
)


def _require_account(session: Session, account_id: int) -> None:
    if session.scalar(sa.select(Account.id).where(Account.id == account_id)) is None:
        raise NotFound(f"Account {account_id} does not exist.")


def list_events(
    session: Session, *, filters: EventFilters, page: int, per_page: int, account_id: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """One page of events, newest first, each with its account's name and owner.

    ``account_id``: only that account's events (``NotFound`` when there is no such account).
    """
    if account_id is not None:
        _require_account(session, account_id)
    query = sa.select(*_EVENT_COLUMNS).join(Account, Account.id == Event.account_id)
    if account_id is not None:
        query = query.where(Event.account_id == account_id)
    if filters.since is not None:
        query = query.where(Event.day >= filters.since)
    if filters.kind is not None:
        query = query.where(Event.kind == filters.kind)
    if filters.rule is not None:
        query = query.where(Event.rule_id == filters.rule)
    if filters.stage is not None:
        query = query.where(Event.stage == filters.stage)
    if filters.severity is not None:
        query = query.where(Event.severity == filters.severity)
    if filters.owner is not None:
        query = query.where(Account.owner == filters.owner)
    elif filters.owners is not None:
        query = query.where(Account.owner.in_(filters.owners))
    statement, total = page_of(
        session, query, order_by=(Event.day.desc(), Event.id.desc()), page=page, per_page=per_page
    )
    return [row._asdict() for row in session.execute(statement)], total


# --- rules --------------------------------------------------------------------------------------


def list_rules(session: Session) -> dict[str, Any]:
    """The active scoring config's event rules, each with its type's parameters and a description."""
    version, model = get_active_model(session)
    items = []
    for rule in model.rules:
        data = rule.to_dict()
        items.append(
            {
                **{key: data[key] for key in ("id", "name", "kind", "severity", "type", "stages")},
                "parameters": {key: value for key, value in data.items() if key not in COMMON_FIELDS},
                "description": describe(rule),
                "notes": rule.description,
            }
        )
    return {"config_version": version, "items": items}


# --- plays --------------------------------------------------------------------------------------


def _play_fields(row: PlayDefinition) -> dict[str, Any]:
    return {
        **row.definition,
        "enabled": row.enabled,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }


def list_plays(session: Session) -> list[dict[str, Any]]:
    """Every play of the library, disabled ones included, in id order (seeding the defaults first)."""
    ensure_default_plays(session)
    rows = session.scalars(sa.select(PlayDefinition).order_by(PlayDefinition.id))
    return [_play_fields(row) for row in rows]


def _play_row(session: Session, play_id: str, *, for_update: bool = False) -> PlayDefinition:
    query = sa.select(PlayDefinition).where(PlayDefinition.id == play_id)
    row = session.scalar(query.with_for_update() if for_update else query)
    if row is None:
        raise NotFound(f"Play {play_id!r} does not exist.")
    return row


def get_play(session: Session, play_id: str) -> dict[str, Any]:
    ensure_default_plays(session)
    return _play_fields(_play_row(session, play_id))


def _valid_play(session: Session, data: Any) -> Play:
    """The play in ``data`` checked against the schema and the active config's rule ids."""
    from app.schemas.plays import load_play  # the API's schema, as in app.services.plays

    if not isinstance(data, dict):
        raise DomainValidationError(
            "Send the play as a JSON object.", errors={"json": {"_schema": ["Expected an object."]}}
        )
    _, model = get_active_model(session)
    try:
        return load_play(data, frozenset(model.rule_ids))
    except ValidationError as exc:
        raise DomainValidationError("The play is invalid.", errors={"json": exc.normalized_messages()}) from None


def create_play(session: Session, data: Any, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Add a play to the library; ``Conflict`` when its id is taken."""
    ensure_default_plays(session)  # before the first insert, or the defaults would never be seeded
    play = _valid_play(session, data)
    if session.get(PlayDefinition, play.id) is not None:
        raise Conflict(f"Play {play.id!r} already exists; PUT /api/v1/plays/{play.id} replaces it.")
    row = new_play_row(play, author=actor, now=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # created by a concurrent request between the check and the insert
        raise Conflict(f"Play {play.id!r} already exists.") from None
    return _play_fields(row)


def replace_play(session: Session, play_id: str, data: Any, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Replace a play's definition, bumping its version. The body's ``id`` must be the path's or absent;
    an optional ``version`` must be the current one (``Conflict`` otherwise: someone changed it since).
    An invalid play changes nothing."""
    ensure_default_plays(session)
    row = _play_row(session, play_id, for_update=True)
    if isinstance(data, dict):
        data = dict(data)
        if data.setdefault("id", play_id) != play_id:
            raise DomainValidationError(
                "The body's id differs from the play in the path.",
                errors={"json": {"id": [f"Must be {play_id!r} (the play in the path) or left out."]}},
            )
        expected = data.pop("version", None)
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
            raise DomainValidationError(
                "The version is not a whole number.", errors={"json": {"version": ["Not a valid integer."]}}
            )
        if expected is not None and expected != row.version:
            raise Conflict(
                f"Play {play_id!r} is at version {row.version}, not {expected}: it changed since it was read."
            )
    play = _valid_play(session, data)
    row.definition = play.to_dict()
    row.enabled = play.enabled
    row.version = row.version + 1
    row.updated_at = now
    row.updated_by = actor
    session.flush()
    return _play_fields(row)


# --- tasks and play runs ------------------------------------------------------------------------


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
    session: Session, task_id: int, *, status: TaskStatus, by: str | None, now: dt.datetime
) -> dict[str, Any]:
    """Close (done, skipped) or reopen a task, and complete or reopen its run to match.

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
    session: Session, account_id: int, *, status: str | None, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of an account's play runs, newest first, each with its tasks in order."""
    _require_account(session, account_id)
    query = (
        sa.select(*_RUN_COLUMNS)
        .join(PlayDefinition, PlayDefinition.id == PlayRun.play_id)
        .where(PlayRun.account_id == account_id)
    )
    if status is not None:
        query = query.where(PlayRun.status == status)
    statement, total = page_of(
        session, query, order_by=(PlayRun.started_on.desc(), PlayRun.id.desc()), page=page, per_page=per_page
    )
    runs = [{**row._asdict(), "tasks": []} for row in session.execute(statement)]
    by_id = {run["id"]: run for run in runs}
    if by_id:
        tasks = session.execute(
            sa.select(Task.id, Task.play_run_id, *_TASK_FIELDS)
            .where(Task.play_run_id.in_(by_id))
            .order_by(Task.play_run_id, Task.position)
        )
        for task in tasks:
            by_id[task.play_run_id]["tasks"].append(task._asdict())
    return runs, total
