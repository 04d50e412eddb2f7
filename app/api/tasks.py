"""CSM tasks from play runs: the task list, closing and reopening tasks, and an account's play runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import RAISE

from app.api.body import ApiBlueprint as Blueprint
from app.auth import READ, WORK, access, actor_name, book, require_in_book, require_may_name_closer
from app.db import get_session
from app.models import TaskStatus
from app.schemas.plays import (
    PlayRunPageSchema,
    PlayRunQuerySchema,
    TaskOutSchema,
    TaskPageSchema,
    TaskQuerySchema,
    TaskUpdateSchema,
)
from app.services.tasks import TaskFilters, list_play_runs, list_tasks, update_task

bp = Blueprint("tasks", __name__, url_prefix="/api/v1", description="CSM tasks and play runs")


@bp.get("/tasks")
@access(*READ)
@bp.arguments(TaskQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, TaskPageSchema)
def list_(page: int, per_page: int, scope: str, **filters: Any) -> dict[str, Any]:
    """Tasks by due day; filters: owner (the assignee), status, due_before (inclusive), account, play."""
    session = get_session()
    with session.begin():
        owners = book(session, scope, filters.get("owner"))
        items, total = list_tasks(session, filters=TaskFilters(**filters, owners=owners), page=page, per_page=per_page)
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.patch("/tasks/<int:task_id>")
@access(*WORK)
@bp.arguments(TaskUpdateSchema)
@bp.response(200, TaskOutSchema)
@bp.alt_response(404, description="No such task")
@bp.alt_response(409, description="The run cannot reopen (another run of the play is open) or was cancelled")
def update(body: dict[str, Any], task_id: int) -> dict[str, Any]:
    """Close a task (done, skipped; recorded as closed by ``by``, default the caller) or reopen it (open).
    Only admins and managers may name someone else in ``by`` (a CSM who did the work); a CSM
    closes as themself (403 otherwise). Every change is audited with the caller.

    The play run completes when none of its tasks is open, and reopens with a reopened task.
    """
    status: TaskStatus = body["status"]
    session = get_session()
    with session.begin():
        require_in_book(session, task_id=task_id)
        by = require_may_name_closer((body.get("by") or "").strip() or None)
        return update_task(session, task_id, status=status, by=by, actor=actor_name(), now=dt.datetime.now(dt.UTC))


@bp.get("/accounts/<int:account_id>/play-runs")
@access(*READ)
@bp.arguments(PlayRunQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, PlayRunPageSchema)
@bp.alt_response(404, description="No such account")
def play_runs(account_id: int, page: int, per_page: int, status: str | None = None) -> dict[str, Any]:
    """One account's play runs, newest first, each with its tasks in order."""
    session = get_session()
    with session.begin():
        items, total = list_play_runs(session, account_id, status=status, page=page, per_page=per_page)
    return {"items": items, "page": page, "per_page": per_page, "total": total}
