"""The play library in the database, and starting play runs and their tasks in the scoring run."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.bulk import bulk_insert
from app.errors import DomainValidationError
from app.field_errors import nest_play_errors
from app.models import PlayDefinition, PlayRun, PlayRunStatus, Task, TaskStatus
from app.pipeline.arrays import align, fetch_rows
from app.services.alerts.settings import Directory, active_routing
from playbooks.plays import Play, PlayError, PlayHistory, PlayMatch, default_plays_list, load_play, play_from_dict
from scoring.bands import BANDS, NO_BAND
from scoring.stage import STAGES

_RUN_COLUMNS = (
    "play_id", "play_version", "account_id", "status", "started_on", "trigger_rule_id", "stage", "band", "score",
    "watchlist", "alert", "created_at",
)  # fmt: skip
#: The columns of a task row as ``start_play_runs`` writes (and returns) it.
TASK_COLUMNS = (
    "play_run_id", "account_id", "position", "type", "title", "description", "owner_role", "assignee", "due_on",
    "status", "created_at",
)  # fmt: skip


def new_play_row(play: Play, *, author: str, now: dt.datetime) -> PlayDefinition:
    """The library row of a new play, at version 1."""
    return PlayDefinition(
        id=play.id,
        definition=play.to_dict(),
        enabled=play.enabled,
        version=1,
        created_at=now,
        updated_at=now,
        updated_by=author,
    )


def ensure_default_plays(session: Session, *, author: str = "system") -> None:
    """Store the shipped default library when the play table is empty. Idempotent."""
    if session.scalar(sa.select(sa.func.count()).select_from(PlayDefinition)):
        return
    now = dt.datetime.now(dt.UTC)
    for data in default_plays_list():
        try:
            play = load_play(data)
        except PlayError as exc:
            raise DomainValidationError(
                f"The default play {data.get('id')!r} is invalid.", errors=nest_play_errors(exc.errors)
            ) from exc
        session.add(new_play_row(play, author=author, now=now))
    session.flush()


def load_plays(session: Session) -> list[tuple[Play, int]]:
    """Every play of the library with its version, in id order (seeding the defaults first)."""
    ensure_default_plays(session)
    rows = session.execute(
        sa.select(PlayDefinition.definition, PlayDefinition.version, PlayDefinition.enabled).order_by(PlayDefinition.id)
    ).all()
    # The column is authoritative for enabled (it is what list filters and admins toggle).
    return [(play_from_dict({**definition, "enabled": enabled}), version) for definition, version, enabled in rows]


def play_history(session: Session, ids: np.ndarray, plays: list[Play], as_of: dt.date) -> PlayHistory:
    """Open runs and days since the last run, per play, over the run's accounts (one query).

    Only runs that can still matter are read: open ones, and those started within the longest
    cooldown.
    """
    n = ids.size
    longest = max([p.cooldown_days for p in plays] + [1])
    is_open = PlayRun.status == PlayRunStatus.OPEN
    rows = fetch_rows(
        session.connection(),
        sa.select(
            PlayRun.account_id,
            PlayRun.play_id,
            sa.func.max(PlayRun.started_on),
            sa.func.max(sa.case((is_open, 1), else_=0)),
        )
        .where(sa.or_(is_open, PlayRun.started_on > as_of - dt.timedelta(days=longest)))
        .group_by(PlayRun.account_id, PlayRun.play_id),
    )
    open_runs: dict[str, np.ndarray] = {}
    since: dict[str, np.ndarray] = {}
    if not rows:
        return PlayHistory(open_runs, since)
    account = np.array([r[0] for r in rows], dtype=np.int64)
    play_of = np.array([r[1] for r in rows], dtype=object)
    last = np.array([r[2] for r in rows], dtype="datetime64[D]")
    opened = np.array([r[3] for r in rows], dtype=np.int64) > 0
    as_of_day = np.datetime64(as_of, "D")
    for play_id in np.unique(play_of).tolist():
        sel = play_of == play_id
        pos, ok = align(ids, account[sel])
        o = np.zeros(n, dtype=bool)
        o[pos[ok]] = opened[sel][ok]
        d = np.full(n, np.nan)
        d[pos[ok]] = (as_of_day - last[sel][ok]).astype(np.int64)
        open_runs[play_id] = o
        since[play_id] = d
    return PlayHistory(open_runs, since)


class TaskAssignees:
    """Who a task goes to, by its owner role: a CSM task to the account's owner; a manager task
    (an escalation) to the CSM's manager, else the routing's ``default_assignee``, else the CSM;
    a support task to the ``default_assignee``, else the manager, else the CSM. So no task is
    left without an assignee while its account has an owner."""

    def __init__(self, directory: Directory | None = None, default: str | None = None) -> None:
        self.directory, self.default = directory, default
        self._cache: dict[tuple[str, str | None], str | None] = {}

    @classmethod
    def load(cls, session: Session) -> TaskAssignees:
        _, routing = active_routing(session)
        return cls(Directory(session), routing.default_assignee)

    def _manager(self, owner: str | None) -> str | None:
        if self.directory is None:
            return None
        address, name = self.directory.manager(owner)
        return address or name

    def of(self, role: str, owner: str | None) -> str | None:
        if role == "csm":
            return owner
        key = (role, owner)
        if key not in self._cache:
            first, second = (self._manager(owner), self.default)
            if role != "manager":
                first, second = second, first
            self._cache[key] = first or second or owner
        return self._cache[key]


@dataclass(frozen=True, slots=True)
class PlayRunCounts:
    runs: int
    tasks: int
    by_play: dict[str, int]
    #: What was written, for the run's alerts (which then read none of it back): (run id,
    #: account id, play id, the play's alert mode) per run, and the task rows in ``TASK_COLUMNS``
    #: order, each run's in position order.
    started: list[tuple[int, int, str, str]] = field(default_factory=list)
    task_rows: list[tuple[Any, ...]] = field(default_factory=list)


def start_play_runs(
    session: Session,
    *,
    as_of: dt.date,
    matches: list[PlayMatch],
    versions: dict[str, int],
    rule_ids: tuple[str, ...],
    ids: np.ndarray,
    owner: np.ndarray,
    stage: np.ndarray,
    band: np.ndarray,
    score: np.ndarray,
    today: dt.date | None = None,
    assignees: TaskAssignees | None = None,
) -> PlayRunCounts:
    """Insert the matched play runs and their tasks in bulk (two inserts and one id lookup);
    return the counts and what was written (``PlayRunCounts.started`` and ``task_rows``).

    ``today``: the run's clock. A task is due ``due_days`` after the later of the run's day and
    today, so a back-filled day's play never starts with its tasks already overdue.
    ``assignees``: who tasks go to by owner role (default: CSM tasks to the owner, others to nobody).
    """
    if not matches:
        return PlayRunCounts(0, 0, {})
    now = dt.datetime.now(dt.UTC)
    run_rows = _run_rows(
        as_of=as_of,
        now=now,
        matches=matches,
        versions=versions,
        rule_ids=rule_ids,
        ids=ids,
        stage=stage,
        band=band,
        score=score,
    )
    bulk_insert(
        session,
        PlayRun.__table__,  # type: ignore[arg-type]
        _RUN_COLUMNS,
        run_rows,
    )
    run_ids = _run_ids(session, as_of=as_of, matches=matches)
    started, task_rows, by_play = _task_rows(
        start=max(as_of, today or as_of),
        now=now,
        matches=matches,
        run_ids=run_ids,
        ids=ids,
        owner=owner,
        assignees=assignees or TaskAssignees(),
    )
    bulk_insert(
        session,
        Task.__table__,  # type: ignore[arg-type]
        TASK_COLUMNS,
        task_rows,
    )
    return PlayRunCounts(len(run_rows), len(task_rows), by_play, started, task_rows)


def _run_rows(
    *,
    as_of: dt.date,
    now: dt.datetime,
    matches: list[PlayMatch],
    versions: dict[str, int],
    rule_ids: tuple[str, ...],
    ids: np.ndarray,
    stage: np.ndarray,
    band: np.ndarray,
    score: np.ndarray,
) -> list[tuple[Any, ...]]:
    """The play-run rows of the matches (``_RUN_COLUMNS`` order), built column-wise per play."""
    stage_names = np.array([s.value for s in STAGES], dtype=object)
    band_names = np.array([b.value for b in BANDS] + [None], dtype=object)
    rules = np.array([*rule_ids, None], dtype=object)  # index -1 -> None (a band trigger)
    run_rows: list[tuple[Any, ...]] = []
    for match in matches:
        p = match.positions
        k = p.size
        run_rows.extend(
            zip(
                [match.play.id] * k,
                [versions[match.play.id]] * k,
                ids[p].tolist(),
                [PlayRunStatus.OPEN.value] * k,
                [as_of] * k,
                rules[match.trigger_rule].tolist(),
                stage_names[stage[p]].tolist(),
                band_names[np.where(band[p] == NO_BAND, len(BANDS), band[p])].tolist(),
                [None if math.isnan(s) else round(s, 4) for s in score[p].tolist()],
                [match.play.watchlist] * k,
                [match.play.alert.value] * k,
                [now] * k,
                strict=True,
            )
        )
    return run_rows


def _run_ids(session: Session, *, as_of: dt.date, matches: list[PlayMatch]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The ids of the runs just written, per play: (accounts ascending, their run ids). (account,
    play, day) is unique."""
    played = sorted({m.play.id for m in matches})
    found = fetch_rows(
        session.connection(),
        sa.select(PlayRun.play_id, PlayRun.account_id, PlayRun.id).where(
            PlayRun.started_on == as_of, PlayRun.play_id.in_(played)
        ),
    )
    run_id: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for play_id in played:
        pairs = np.array([(r[1], r[2]) for r in found if r[0] == play_id], dtype=np.int64).reshape(-1, 2)
        order = np.argsort(pairs[:, 0])
        run_id[play_id] = (pairs[order, 0], pairs[order, 1])
    return run_id


def _task_rows(
    *,
    start: dt.date,
    now: dt.datetime,
    matches: list[PlayMatch],
    run_ids: dict[str, tuple[np.ndarray, np.ndarray]],
    ids: np.ndarray,
    owner: np.ndarray,
    assignees: TaskAssignees,
) -> tuple[list[tuple[int, int, str, str]], list[tuple[Any, ...]], dict[str, int]]:
    """The runs started ((run id, account id, play id, alert mode) each), the task rows of their
    plays' templates (``TASK_COLUMNS`` order, each run's in position order, due ``due_days``
    after ``start``) and runs per play."""
    task_rows: list[tuple[Any, ...]] = []
    started: list[tuple[int, int, str, str]] = []
    by_play: dict[str, int] = {}
    for match in matches:
        accounts, play_run_ids = run_ids[match.play.id]
        pos = np.searchsorted(accounts, ids[match.positions])
        runs = play_run_ids[pos].tolist()
        owners = owner[match.positions].tolist()
        by_play[match.play.id] = len(runs)
        account_list = ids[match.positions].tolist()
        started.extend(
            (run, account, match.play.id, match.play.alert.value)
            for run, account in zip(runs, account_list, strict=True)
        )
        for position, template in enumerate(match.play.tasks):
            due = start + dt.timedelta(days=template.due_days)
            role = template.owner_role.value
            assignee = owners if role == "csm" else [assignees.of(role, who) for who in owners]
            fixed = (template.type.value, template.title, template.description, template.owner_role.value)
            task_rows.extend(
                (run, account, position, *fixed, who, due, TaskStatus.OPEN.value, now)
                for run, account, who in zip(runs, account_list, assignee, strict=True)
            )
    return started, task_rows, by_play
