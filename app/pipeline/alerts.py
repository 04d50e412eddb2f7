"""Queueing alerts: routing this run's events and play starts to people and channels, in the outbox.

The scoring run calls ``queue_run_alerts`` inside its own transaction, after it stored events,
play runs and latest scores, so an alert exists exactly when what caused it does (the
transactional outbox). It is handed what the run wrote (``RunWrites``) and composes the messages
from that rather than reading it back. Per account, this run's events and play starts are routed
(``alerts.routing.route``) to recipients; each recipient gets one message for the account (the
events collapse into it). Noise control happens here too: an event whose rule alerted the same
account within the routing's cooldown is left to the digest, and once a recipient's daily
budget is spent further alerts are stored as ``held`` and go out in their next digest. Nothing
is dropped without a trace: what was not sent at once is in the digest.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session

from alerts.base import AlertKind, ChannelType
from alerts.routing import Item, Routing, route
from app.bulk import bulk_insert
from app.models import Account, Alert, AlertCooldown, AlertStatus
from app.models.plays import Event
from app.pipeline.arrays import fetch_rows
from app.pipeline.events import EVENT_COLUMNS
from app.pipeline.plays import TASK_COLUMNS
from app.services.alerts.settings import CHANNEL_PREFIX, SEVERITY_RANK, AlertSettings, Directory, active_routing
from scoring.model import ScoringModel

logger = logging.getLogger(__name__)

# --- queueing this run's alerts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertCounts:
    queued: int = 0  # pending, to send now
    held: int = 0  # over a recipient's daily budget: in their next digest
    cooled_down: int = 0  # events left to the digest by the per-account-and-rule cooldown
    unroutable: int = 0  # a recipient without an address (no user, no email, no manager)
    backfilled: int = 0  # events and play starts of a back-filled day: recorded, never alerted

    def counts(self) -> dict[str, int]:
        return {
            "alerts_queued": self.queued,
            "alerts_held": self.held,
            "alert_events_cooled_down": self.cooled_down,
            "alerts_unroutable": self.unroutable,
            "alert_items_backfilled": self.backfilled,
        }


def newest_event_id(session: Session) -> int:
    """The newest event id before a run: the events the run adds are above it."""
    return int(session.scalar(sa.select(sa.func.max(Event.id))) or 0)


@dataclass(frozen=True, slots=True)
class RunWrites:
    """What a scoring run has just written and still holds, aligned with its accounts: queueing
    its alerts composes the messages from these instead of reading them back (reading back the
    events' JSON, the tasks and the latest scores was most of the step's time)."""

    ids: np.ndarray  # the run's accounts, ascending
    #: Per account of ``ids``: what the run stored as its latest score (score and change as
    #: rounded for storage). Every account with an event or a play run has this run's latest.
    stage: Sequence[str]
    band: Sequence[str | None]
    score: Sequence[Any]  # float, or None without a score
    change_7d: Sequence[Any]
    contributions: np.ndarray  # (measures, accounts): points each measure adds to the score
    events: Sequence[Sequence[Any]] = ()  # the event rows written, ``EVENT_COLUMNS`` order
    runs: Sequence[tuple[int, int, str, str]] = ()  # (run id, account id, play id, alert mode)
    tasks: Sequence[Sequence[Any]] = ()  # the task rows written, ``TASK_COLUMNS`` order


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_ALERT_COLUMNS = (
    "dedupe_key", "kind", "status", "channel", "recipient", "recipient_user", "account_id", "day", "severity",
    "route_ids", "event_ids", "play_run_ids", "payload", "requires_ack", "max_attempts", "next_attempt_at",
    "created_at", "attempts",
)  # fmt: skip
_SEVERITY_NAME = {rank: name for name, rank in SEVERITY_RANK.items()}
_PENDING, _HELD = AlertStatus.PENDING.value, AlertStatus.HELD.value
#: Positions in an event row as the events step wrote it (trigger values as JSON text).
_E_ACCOUNT, _E_RULE, _E_NAME, _E_KIND, _E_SEVERITY, _E_STAGE, _E_DETAIL = (
    EVENT_COLUMNS.index(c)
    for c in ("account_id", "rule_id", "rule_name", "kind", "severity", "stage", "trigger_values")
)
#: What of an event routing reads, and what an event line's head says (besides the day).
_EVENT_ROUTE = operator.itemgetter(_E_RULE, _E_KIND, _E_SEVERITY, _E_STAGE)
_EVENT_LINE = operator.itemgetter(_E_RULE, _E_NAME, _E_KIND, _E_SEVERITY)
#: Of a task row: run, title, type, due date, assignee, owner role.
_TASK_FIELDS = operator.itemgetter(
    *(TASK_COLUMNS.index(c) for c in ("play_run_id", "title", "type", "due_on", "assignee", "owner_role"))
)
#: Ids per query in an IN list where there is no array parameter (SQLite's limit is 32,766).
_ID_CHUNK = 5_000


# The message of an account alert is JSON text pieced together from parts, each written once
# (the events' trigger values are the JSON the events step stored; a rule's line head and a play
# with its tasks repeat across accounts), exactly ``_encode(AccountAlert(...).to_dict())``:
# tests/unit/test_alerts_queue.py holds them equal. Thousands of accounts alert on a busy day.
_json_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # what _encode writes for a str


def _text(value: str | None) -> str:
    return "null" if value is None else str(_json_str(value))


def _number(value: float | None) -> str:
    if value is None:
        return "null"
    if not math.isfinite(value):  # as _encode (allow_nan=False) refuses it
        raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    return float.__repr__(value)


def _account_head(
    *,
    account_id: int,
    name: str,
    stage: str,
    band: str | None,
    score: float | None,
    change_7d: float | None,
    arr: float,
    owner: str | None,
    segment: str | None,
    renewal_date: str | None,
    account_url: str,
) -> str:
    """The message's JSON up to its events (an unclosed object)."""
    return (
        f'{{"type":"account","kind":"{AlertKind.IMMEDIATE.value}","account_id":{int(account_id)},'
        f'"account_name":{_text(name)},"stage":{_text(stage)},"band":{_text(band)},"score":{_number(score)},'
        f'"change_7d":{_number(change_7d)},"arr":{_number(arr)},"owner":{_text(owner)},'
        f'"segment":{_text(segment)},"renewal_date":{_text(renewal_date)},"account_url":{_text(account_url)}'
    )


def _message_json(head: str, events: Sequence[str], plays: Sequence[str], drivers: str) -> str:
    """The whole message from its head, event lines, play lines and drivers (JSON texts)."""
    return (
        f'{head},"events":[{",".join(events)}],"plays":[{",".join(plays)}],"drivers":{drivers},'
        '"ack_url":null,"escalated_alert_id":null,"unacknowledged_hours":null}'
    )


def _event_head(rule_id: str, rule_name: str, kind: str, severity: str, day: str) -> str:
    """An event line's JSON up to its ``detail`` value; ``_EVENT_TAIL`` closes it."""
    line = {"rule_id": rule_id, "rule_name": rule_name, "kind": kind, "severity": severity, "day": day, "detail": 0}
    return _encode(line)[:-2]


_EVENT_TAIL = ',"account_id":null,"account_name":null}'


def _play_json(play_id: str, name: str, tasks: Sequence[tuple[str, str, str, str | None]]) -> str:
    """A play line with its tasks ((title, type, ISO due date, owner) each)."""
    lines = [{"title": t[0], "type": t[1], "due_on": t[2], "owner": t[3]} for t in tasks]  # TaskLine as plain data
    return _encode({"play_id": play_id, "name": name, "tasks": lines})


def _top_drivers(model: ScoringModel, contributions: np.ndarray, positions: np.ndarray, k: int = 3) -> list[str]:
    """The ``k`` most negative contributions of each account at ``positions`` (one argsort), as
    the JSON of its drivers (``DriverLine`` list)."""
    if not positions.size:
        return []
    block = np.asarray(contributions[:, positions], dtype=np.float64)
    block = np.where(np.isnan(block), 0.0, block)
    order = np.argsort(block, axis=0, kind="stable")[:k].T.tolist()
    labels = [_text(m.label or m.name) for m in model.measures]
    values = block.T.tolist()
    out: list[str] = []
    for column, top in enumerate(order):
        row = values[column]
        lines = [
            f'{{"label":{labels[j]},"contribution":{_number(round(row[j], 1))},"score":null}}'
            for j in top
            if row[j] < 0
        ]
        out.append(f"[{','.join(lines)}]")
    return out


def _ids_json(ids: list[int]) -> str:
    return f"[{','.join(map(str, ids))}]"


@dataclass(frozen=True, slots=True)
class _Routed:
    """What routing decides for an account's items (shared by the accounts with the same)."""

    immediate: list[str]  # recipients to alert now, sorted
    route_ids: str  # JSON list of the routes that matched
    rules: list[str]  # the rules of the events (not cooling down), in order
    severity: int  # the highest ``SEVERITY_RANK`` of the events (0: none)
    severity_name: str | None


def _rows_for_ids(
    conn: sa.Connection,
    statement: Callable[[sa.ColumnElement[bool]], sa.Executable],
    column: QueryableAttribute[int],
    ids: list[int],
) -> list[tuple[Any, ...]]:
    """The driver's rows of ``statement(column in ids)``: one array parameter on PostgreSQL, IN
    lists of ``_ID_CHUNK`` elsewhere."""
    if not ids:
        return []
    if conn.dialect.name == "postgresql":
        # An array literal: psycopg adapting a list of ints costs more than the lookup itself. Its
        # text-to-array cast sits in a subquery, evaluated once: written inline (``= ANY(CAST(...))``)
        # it is not folded to a constant (array_in is only stable), and when the planner picks a
        # sequential scan it parses the whole literal again for every row (10 s at 100k accounts
        # for 6,000 cooldown rows against 9,000 ids, where the lookup itself takes milliseconds).
        literal = "{" + ",".join(map(str, ids)) + "}"
        wanted = sa.select(sa.func.unnest(sa.cast(sa.literal(literal), ARRAY(sa.BigInteger))))
        return fetch_rows(conn, statement(column.in_(wanted)))
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), _ID_CHUNK):
        rows += fetch_rows(conn, statement(column.in_(ids[start : start + _ID_CHUNK])))
    return rows


class _AlertingAccount(NamedTuple):
    """An account that alerts someone now, with what routing kept of its items."""

    account_id: int
    position: int  # in ``RunWrites.ids``
    events: list[Sequence[Any]]  # its event rows not cooling down
    runs: list[tuple[int, int, str, str]]  # its play starts
    decision: _Routed


#: A recipient to alert of an account: ((severity, ARR) budget rank, index into the alerting
#: accounts, routed recipient, address, user name, channel type).
_Candidate = tuple[tuple[int, float], int, str, str, str | None, str]
#: What a message row needs of its account: (group key, message JSON, event ids JSON, play run
#: ids JSON, band).
_Composed = tuple[str, str, str, str, str | None]


def queue_run_alerts(
    session: Session,
    *,
    as_of: dt.date,
    now: dt.datetime,
    settings: AlertSettings,
    model: ScoringModel,
    written: RunWrites,
    after_event_id: int,
    play_names: Mapping[str, str],
    today: dt.date | None = None,
) -> AlertCounts:
    """Queue the alerts for the events and play runs in ``written`` (this run's, whose events
    have ids above ``after_event_id``) in the session's transaction.

    A back-filled day (``as_of`` before ``today``, the run's clock) queues nothing, not even for
    the digest: its events are history by the time they are known, and announcing a month of
    them at once is noise. They stay listed by ``GET /api/v1/events``.

    The messages are composed from what the run holds (``RunWrites``); the database is asked
    only for what the run does not know: its events' ids, the accounts' names and segments, the
    cooldowns, the budget spent today and the routing. A fixed number of queries; one pass over
    the accounts with events or play runs to route them, then each alerting account's message is
    composed as its rows stream to the outbox (COPY on PostgreSQL), in budget order.
    """
    if not written.events and not written.runs:
        return AlertCounts()
    if today is not None and as_of < today:
        return AlertCounts(backfilled=len(written.events) + len(written.runs))
    conn = session.connection()  # plain driver rows: the ORM's row loading costs more than the reads
    _, routing = active_routing(session)
    events_by_account, runs_by_account = _by_account(written)
    touched = sorted(events_by_account.keys() | runs_by_account.keys())
    accounts = _account_rows(conn, touched)
    cooling = _cooling(conn, sorted(events_by_account), since=now - dt.timedelta(hours=routing.cooldown_hours))
    directory = Directory(session)
    alerting, cooled = _route(
        routing,
        written,
        touched=touched,
        accounts=accounts,
        events_by_account=events_by_account,
        runs_by_account=runs_by_account,
        cooling=cooling,
    )
    if not alerting:
        return AlertCounts(cooled_down=cooled)
    candidates, unroutable = _candidates(alerting, accounts, routing, directory)
    statuses = _budget_statuses(conn, candidates, budget_per_day=routing.budget_per_day, now=now)
    compose = _Composer(
        conn,
        as_of=as_of,
        after_event_id=after_event_id,
        settings=settings,
        model=model,
        written=written,
        alerting=alerting,
        accounts=accounts,
        play_names=play_names,
    )
    _write_alerts(
        session,
        as_of=as_of,
        now=now,
        routing=routing,
        alerting=alerting,
        candidates=candidates,
        statuses=statuses,
        compose=compose,
    )
    _start_cooldowns(session, now=now, alerting=alerting, candidates=candidates, statuses=statuses)
    held = statuses.count(_HELD)
    return AlertCounts(queued=len(candidates) - held, held=held, cooled_down=cooled, unroutable=unroutable)


# --- route ---------------------------------------------------------------------------------------


def _by_account(
    written: RunWrites,
) -> tuple[dict[int, list[Sequence[Any]]], dict[int, list[tuple[int, int, str, str]]]]:
    """The run's event rows and play starts grouped by account."""
    events_by_account: dict[int, list[Sequence[Any]]] = defaultdict(list)
    for row in written.events:
        events_by_account[row[_E_ACCOUNT]].append(row)
    runs_by_account: dict[int, list[tuple[int, int, str, str]]] = defaultdict(list)
    for run in written.runs:
        runs_by_account[run[1]].append(run)
    return events_by_account, runs_by_account


def _account_rows(conn: sa.Connection, touched: list[int]) -> dict[int, tuple[Any, ...]]:
    """Name, owner, segment, ARR and renewal date (after the id): only of the accounts with
    events or play runs."""
    return {
        r[0]: r
        for r in _rows_for_ids(
            conn,
            lambda where: sa.select(
                Account.id, Account.name, Account.owner, Account.segment, Account.arr, Account.renewal_date
            ).where(where),
            Account.id,
            touched,
        )
    }


def _cooling(conn: sa.Connection, account_ids: list[int], *, since: dt.datetime) -> dict[int, set[str]]:
    """The rules whose cooldown still runs, per account with events: those events go to the digest."""
    cooling: dict[int, set[str]] = defaultdict(set)
    for account_id, rule in _rows_for_ids(
        conn,
        lambda where: sa.select(AlertCooldown.account_id, AlertCooldown.rule_id).where(
            where, AlertCooldown.alerted_at > since
        ),
        AlertCooldown.account_id,
        account_ids,
    ):
        cooling[account_id].add(rule)
    return cooling


def _route(
    routing: Routing,
    written: RunWrites,
    *,
    touched: list[int],
    accounts: Mapping[int, tuple[Any, ...]],
    events_by_account: Mapping[int, list[Sequence[Any]]],
    runs_by_account: Mapping[int, list[tuple[int, int, str, str]]],
    cooling: Mapping[int, set[str]],
) -> tuple[list[_AlertingAccount], int]:
    """Route each account's events (those not cooling down) and play starts: the accounts that
    alert someone now, and how many events the cooldowns left to the digest. Many accounts share
    what decides the routing (the same rules in the same stage, segment and band): once each."""
    routed: dict[tuple[Any, ...], _Routed] = {}
    alerting: list[_AlertingAccount] = []
    cooled = 0
    positions = np.searchsorted(written.ids, np.array(touched, dtype=np.int64)).tolist()
    for account_id, position in zip(touched, positions, strict=True):
        segment = accounts[account_id][3]
        stage, band = written.stage[position], written.band[position]
        kept = events_by_account.get(account_id, [])
        running = cooling.get(account_id)
        if running:
            cooled_here = sum(1 for e in kept if e[_E_RULE] in running)
            if cooled_here:
                cooled += cooled_here
                kept = [e for e in kept if e[_E_RULE] not in running]
        account_runs = runs_by_account.get(account_id, [])
        if not kept and not account_runs:
            continue
        signature = (segment, band, stage, *map(_EVENT_ROUTE, kept), *(r[2:] for r in account_runs))
        decision = routed.get(signature)
        if decision is None:
            decision = routed[signature] = _decide(
                routing, segment=segment, band=band, stage=stage, events=kept, runs=account_runs
            )
        if decision.immediate:
            alerting.append(_AlertingAccount(account_id, position, kept, account_runs, decision))
    return alerting, cooled


def _decide(
    routing: Routing,
    *,
    segment: str | None,
    band: str | None,
    stage: str,
    events: list[Sequence[Any]],
    runs: list[tuple[int, int, str, str]],
) -> _Routed:
    """What routing decides for an account's events and play starts."""
    items = [
        Item(stage=stage_, segment=segment, band=band, kind=kind, severity=severity_, rule_id=rule)
        for rule, kind, severity_, stage_ in map(_EVENT_ROUTE, events)
    ] + [Item(stage=stage, segment=segment, band=band, play_id=r[2], play_alert=r[3]) for r in runs]
    decided = route(routing, items)
    route_ids = [r.id for r in routing.routes if any(r.matches(item) for item in items)]
    severity = max((SEVERITY_RANK.get(e[_E_SEVERITY], 0) for e in events), default=0)
    return _Routed(
        immediate=sorted(recipient for recipient, mode in decided.items() if mode == "immediate"),
        route_ids=_encode(route_ids),  # why each recipient heard of it
        rules=[e[_E_RULE] for e in events],
        severity=severity,
        severity_name=_SEVERITY_NAME.get(severity),
    )


def _candidates(
    alerting: list[_AlertingAccount],
    accounts: Mapping[int, tuple[Any, ...]],
    routing: Routing,
    directory: Directory,
) -> tuple[list[_Candidate], int]:
    """Who hears of each alerting account now: its routed recipients that have an address, the
    most severe and valuable first (the order the daily budget is spent in); and how many
    recipients had no address."""
    targets: dict[tuple[str, str | None], tuple[str, str | None, str] | None] = {}
    candidates: list[_Candidate] = []
    unroutable = 0
    for index, (account_id, _, _, _, decision) in enumerate(alerting):
        owner, arr = accounts[account_id][2], accounts[account_id][4]
        rank = (decision.severity, float(arr or 0.0))
        for recipient in decision.immediate:
            if (recipient, owner) not in targets:
                found = _resolve(recipient, owner, routing, directory)
                targets[recipient, owner] = None if found is None else (found[0], found[1], found[2].value)
            target = targets[recipient, owner]
            if target is None:
                unroutable += 1
            else:
                candidates.append((rank, index, recipient, *target))
    candidates.sort(key=operator.itemgetter(0), reverse=True)
    return candidates, unroutable


def _resolve(
    recipient: str, owner: str | None, routing: Routing, directory: Directory
) -> tuple[str, str | None, ChannelType] | None:
    """(address, user name, channel type) of a routed recipient; None when it has no address."""
    if recipient.startswith(CHANNEL_PREFIX):
        spec = routing.channel(recipient[len(CHANNEL_PREFIX) :])
        if spec is None:
            return None
        return recipient, None, ChannelType(spec.type)
    if recipient == "csm":
        address, user = directory.csm(owner)
    elif recipient == "manager":
        address, user = directory.manager(owner)
    else:
        return None
    if not address:
        return None
    return address, user, ChannelType.EMAIL


# --- budget and cooldowns ------------------------------------------------------------------------


def _budget_statuses(
    conn: sa.Connection, candidates: list[_Candidate], *, budget_per_day: int, now: dt.datetime
) -> list[str]:
    """Each candidate's status: pending while its recipient's daily budget lasts (in the order
    of ``candidates``), held for the digest after."""
    used = _budget_used(conn, dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC))
    statuses: list[str] = []
    for candidate in candidates:
        spent = used.get(candidate[3], 0)
        if spent >= budget_per_day:
            statuses.append(_HELD)
        else:
            used[candidate[3]] = spent + 1
            statuses.append(_PENDING)
    return statuses


def _budget_used(conn: sa.Connection, since: dt.datetime) -> dict[str, int]:
    rows = fetch_rows(
        conn,
        sa.select(Alert.recipient, sa.func.count())
        .where(
            Alert.created_at >= since,
            Alert.kind.in_([AlertKind.IMMEDIATE, AlertKind.ESCALATION]),
            Alert.status != AlertStatus.HELD,
            Alert.status != AlertStatus.DIGESTED,
        )
        .group_by(Alert.recipient),
    )
    return {r[0]: int(r[1]) for r in rows}


def _start_cooldowns(
    session: Session,
    *,
    now: dt.datetime,
    alerting: list[_AlertingAccount],
    candidates: list[_Candidate],
    statuses: list[str],
) -> None:
    """Cooldowns start now for every (account, rule) alerted at once."""
    alerted = sorted(
        {
            (alerting[candidate[1]].account_id, rule)
            for candidate, status in zip(candidates, statuses, strict=True)
            if status == _PENDING
            for rule in alerting[candidate[1]].decision.rules
        }
    )
    if alerted:
        bulk_insert(
            session,
            AlertCooldown.__table__,  # type: ignore[arg-type]
            ("account_id", "rule_id", "alerted_at"),
            [(account_id, rule, now) for account_id, rule in alerted],
            conflict_key=("account_id", "rule_id"),
        )


# --- compose and write ---------------------------------------------------------------------------


class _Composer:
    """Composes an alerting account's message from what the run holds, writing the JSON of the
    event heads and plays that repeat across accounts once each."""

    def __init__(
        self,
        conn: sa.Connection,
        *,
        as_of: dt.date,
        after_event_id: int,
        settings: AlertSettings,
        model: ScoringModel,
        written: RunWrites,
        alerting: list[_AlertingAccount],
        accounts: Mapping[int, tuple[Any, ...]],
        play_names: Mapping[str, str],
    ) -> None:
        self.day = as_of.isoformat()
        self.settings, self.written, self.alerting = settings, written, alerting
        self.accounts, self.play_names = accounts, play_names
        self.event_ids_of = _event_ids(conn, as_of=as_of, after_event_id=after_event_id)
        self.tasks_by_run = _task_lines(written.tasks)
        positions = np.array([a.position for a in alerting], dtype=np.int64)
        self.drivers = _top_drivers(model, written.contributions, positions)
        self.event_heads: dict[tuple[Any, ...], str] = {}
        self.play_texts: dict[tuple[Any, ...], str] = {}

    def __call__(self, index: int) -> _Composed:
        """(group key, message JSON, event ids JSON, play run ids JSON, band) of an alerting account."""
        account_id, position, kept, account_runs, decision = self.alerting[index]
        _, name, owner, segment, arr, renewal = self.accounts[account_id]
        written = self.written
        band, score, change = written.band[position], written.score[position], written.change_7d[position]
        head = _account_head(
            account_id=account_id, name=name, stage=written.stage[position], band=band,
            score=None if score is None else round(float(score), 1),
            change_7d=None if change is None else round(float(change), 1),
            arr=float(arr or 0.0), owner=owner, segment=segment, renewal_date=_iso_date(renewal),
            account_url=self.settings.account_url(account_id),
        )  # fmt: skip
        ids_of = self.event_ids_of[account_id]
        event_ids = [ids_of[rule] for rule in decision.rules]
        run_ids = [r[0] for r in account_runs]
        # The copies of this message to its recipients share a group (acknowledged and escalated
        # together); it names this run's first event or play run, so the keys are new.
        group = f"acct:{account_id}:" + (f"e{min(event_ids)}|" if event_ids else f"p{min(run_ids)}|")
        message = _message_json(head, self._event_lines(kept), self._play_lines(account_runs), self.drivers[index])
        return group, message, _ids_json(event_ids), _ids_json(run_ids), band

    def _event_lines(self, events: list[Sequence[Any]]) -> list[str]:
        lines = []
        for e in events:
            line = _EVENT_LINE(e)
            head = self.event_heads.get(line)
            if head is None:
                head = self.event_heads[line] = _event_head(line[0], line[1], line[2], line[3], self.day)
            lines.append(head + e[_E_DETAIL] + _EVENT_TAIL)
        return lines

    def _play_lines(self, runs: list[tuple[int, int, str, str]]) -> list[str]:
        lines = []
        for run_id, _, play_id, alert in runs:
            if alert != "none":
                tasks = self.tasks_by_run[run_id]
                key = (play_id, *tasks)
                text = self.play_texts.get(key)
                if text is None:
                    text = self.play_texts[key] = _play_json(play_id, self.play_names.get(play_id, play_id), tasks)
                lines.append(text)
        return lines


def _event_ids(conn: sa.Connection, *, as_of: dt.date, after_event_id: int) -> dict[int, dict[str, int]]:
    """The ids the database gave this run's events, by account and rule."""
    event_ids_of: dict[int, dict[str, int]] = defaultdict(dict)
    for account_id, rule, event_id in fetch_rows(
        conn, sa.select(Event.account_id, Event.rule_id, Event.id).where(Event.id > after_event_id, Event.day == as_of)
    ):
        event_ids_of[account_id][rule] = event_id
    return event_ids_of


def _task_lines(task_rows: Sequence[Sequence[Any]]) -> dict[int, list[tuple[str, str, str, str]]]:
    """Each run's tasks as (title, type, ISO due date, owner), in position order."""
    tasks_by_run: dict[int, list[tuple[str, str, str, str]]] = defaultdict(list)
    due_text: dict[dt.date, str] = {}
    for row in task_rows:  # each run's tasks are in position order
        run_id, title, task_type, due_on, assignee, owner_role = _TASK_FIELDS(row)
        due = due_text.get(due_on) or due_text.setdefault(due_on, due_on.isoformat())
        tasks_by_run[run_id].append((title, task_type, due, assignee or owner_role))
    return tasks_by_run


def _iso_date(value: Any) -> str | None:
    """A date column as the driver returned it (a date, or ISO text on SQLite) as ISO text."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _write_alerts(
    session: Session,
    *,
    as_of: dt.date,
    now: dt.datetime,
    routing: Routing,
    alerting: list[_AlertingAccount],
    candidates: list[_Candidate],
    statuses: list[str],
    compose: Callable[[int], _Composed],
) -> None:
    """One alert row per candidate. Each message is composed as its rows stream to the database
    (the server stores the rows already sent meanwhile); an account's copies follow one another,
    so it is composed once."""

    def rows() -> Iterator[tuple[Any, ...]]:
        last = -1
        composed: _Composed = ("", "", "", "", None)
        for (_, index, recipient, address, user, channel), status in zip(candidates, statuses, strict=True):
            if index != last:
                last, composed = index, compose(index)
            group, message, event_ids, run_ids, band = composed
            decision = alerting[index].decision
            yield (
                f"{group}{recipient}", AlertKind.IMMEDIATE.value, status, channel, address, user,
                alerting[index].account_id, as_of, decision.severity_name, decision.route_ids, event_ids, run_ids,
                message, band == "poor", routing.max_attempts, now, now, 0,
            )  # fmt: skip

    # The keys are new by construction (each names an event or play run this run created), so a
    # plain bulk load (COPY on PostgreSQL); the unique key still guards against a duplicate.
    bulk_insert(session, Alert.__table__, _ALERT_COLUMNS, rows())  # type: ignore[arg-type]
