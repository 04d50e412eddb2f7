"""Queueing alerts: routing this run's events and play starts to people and channels, in the outbox.

The scoring run calls ``queue_run_alerts`` inside its own transaction, after it stored events,
play runs and latest scores, so an alert exists exactly when what caused it does (the
transactional outbox). Per account, this run's events and play starts are routed
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
import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from alerts.base import AlertKind, ChannelType
from alerts.email import SmtpSettings
from alerts.routing import Item, Routing, default_routing_data, load_routing, route
from app.models import Account, Alert, AlertCooldown, AlertRoutingVersion, AlertStatus, LatestScore, User
from app.models.plays import Event, PlayRun, Task
from app.services.bulk import bulk_insert
from scoring.model import ScoringModel

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}
#: A channel recipient is ``channel:<name>``; everything else is an email address.
CHANNEL_PREFIX = "channel:"


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """What the alert services need from the app's configuration (read once, passed in)."""

    public_base_url: str = "http://127.0.0.1:5000"
    secret_key: str = "dev-only-not-secret"
    smtp: SmtpSettings | None = None
    webhook_hosts: tuple[str, ...] = ("hooks.slack.com",)
    allow_insecure_webhooks: bool = False
    lease_seconds: int = 60
    batch_size: int = 100
    ack_link_days: int = 7
    http_timeout: float = 5.0
    #: values for a channel's ``url_env`` / ``secret_env`` (the app config's SLACK_WEBHOOK_URL,
    #: then the process environment)
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AlertSettings:
        env = dict(os.environ if environ is None else environ)
        if config.get("SLACK_WEBHOOK_URL"):
            env["SLACK_WEBHOOK_URL"] = str(config["SLACK_WEBHOOK_URL"])
        smtp = None
        if config.get("SMTP_HOST"):
            smtp = SmtpSettings(
                host=str(config["SMTP_HOST"]),
                port=int(config.get("SMTP_PORT") or 587),
                username=config.get("SMTP_USERNAME") or None,
                password=config.get("SMTP_PASSWORD") or None,
                security=cast(Any, str(config.get("SMTP_SECURITY") or "starttls")),
                sender=str(config.get("ALERT_EMAIL_FROM") or f"healthscore@{config['SMTP_HOST']}"),
                ca_file=config.get("SMTP_CA_FILE") or None,
            )
        hosts = tuple(h.strip() for h in str(config.get("ALERT_WEBHOOK_HOSTS") or "").split(",") if h.strip())
        return cls(
            public_base_url=str(config.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
            secret_key=str(config.get("SECRET_KEY") or "dev-only-not-secret"),
            smtp=smtp,
            webhook_hosts=hosts,
            allow_insecure_webhooks=bool(config.get("ALERT_ALLOW_INSECURE_WEBHOOKS", False)),
            lease_seconds=int(config.get("ALERT_LEASE_SECONDS") or 60),
            batch_size=int(config.get("ALERT_BATCH_SIZE") or 100),
            ack_link_days=int(config.get("ALERT_ACK_LINK_DAYS") or 7),
            env=env,
        )

    def account_url(self, account_id: int) -> str:
        return f"{self.public_base_url}/api/v1/accounts/{account_id}"


# --- routing storage ---------------------------------------------------------------------------


def active_routing(session: Session) -> tuple[int, Routing]:
    """The newest routing version (version 0: the defaults file, never edited yet)."""
    row = session.execute(
        sa.select(AlertRoutingVersion.version, AlertRoutingVersion.document)
        .order_by(AlertRoutingVersion.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0, load_routing(default_routing_data())
    # Its webhook URLs passed the deployment's SSRF checks when it was saved, and the channels
    # check them again before every send; loading it must not fail on a test's http URL.
    return int(row[0]), load_routing(row[1], allow_insecure=True)


# --- recipients ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str | None
    manager: str | None  # the manager's user name


class Directory:
    """Users by every identity an account's ``owner`` may use (user name or email)."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(sa.select(User.id, User.name, User.email, User.manager_id).where(~User.disabled)).all()
        by_id = {r.id: r for r in rows}
        self.people: dict[str, Person] = {}
        for r in rows:
            manager = by_id.get(r.manager_id) if r.manager_id is not None else None
            person = Person(r.name, r.email, manager.name if manager is not None else None)
            self.people[r.name] = person
            if r.email:
                self.people[r.email] = person

    def csm(self, owner: str | None) -> tuple[str | None, str | None]:
        """(email, user name) of an account's CSM; an owner that is an address but no user still
        gets mail."""
        if not owner:
            return None, None
        person = self.people.get(owner)
        if person is not None:
            return person.email or _address(person.name), person.name
        return _address(owner), None

    def manager(self, owner: str | None) -> tuple[str | None, str | None]:
        person = self.people.get(owner) if owner else None
        if person is None or person.manager is None:
            return None, None
        boss = self.people.get(person.manager)
        return (boss.email or _address(boss.name), boss.name) if boss is not None else (None, None)


def alert_group(dedupe_key: str) -> str:
    """The key prefix shared by the copies of one account alert (to the CSM, the manager, a
    channel): ``acct:<account>:<first event or play run>|``."""
    return dedupe_key.split("|", 1)[0] + "|"


def _address(identity: str) -> str | None:
    """A user name or owner that is itself an email address (the demo's CSMs are)."""
    return identity if "@" in identity else None


# --- queueing this run's alerts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertCounts:
    queued: int = 0  # pending, to send now
    held: int = 0  # over a recipient's daily budget: in their next digest
    cooled_down: int = 0  # events left to the digest by the per-account-and-rule cooldown
    unroutable: int = 0  # a recipient without an address (no user, no email, no manager)

    def counts(self) -> dict[str, int]:
        return {
            "alerts_queued": self.queued,
            "alerts_held": self.held,
            "alert_events_cooled_down": self.cooled_down,
            "alerts_unroutable": self.unroutable,
        }


def high_water_marks(session: Session) -> tuple[int, int]:
    """The newest event and play-run ids before a run: what the run adds is above them."""
    event_id = session.scalar(sa.select(sa.func.max(Event.id))) or 0
    run_id = session.scalar(sa.select(sa.func.max(PlayRun.id))) or 0
    return int(event_id), int(run_id)


def _top_drivers(
    model: ScoringModel, contributions: np.ndarray, positions: np.ndarray, k: int = 3
) -> list[list[dict[str, Any]]]:
    """The ``k`` most negative contributions of each account at ``positions`` (one argsort)."""
    if not positions.size:
        return []
    block = np.asarray(contributions[:, positions], dtype=np.float64)
    block = np.where(np.isnan(block), 0.0, block)
    order = np.argsort(block, axis=0, kind="stable")[:k]
    labels = [m.label or m.name for m in model.measures]
    out: list[list[dict[str, Any]]] = []  # DriverLine as plain data
    for column in range(positions.size):
        lines = []
        for j in order[:, column].tolist():
            value = float(block[j, column])
            if value < 0:
                lines.append({"label": labels[j], "contribution": round(value, 1), "score": None})
        out.append(lines)
    return out


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_ALERT_COLUMNS = (
    "dedupe_key", "kind", "status", "channel", "recipient", "recipient_user", "account_id", "day", "severity",
    "route_ids", "event_ids", "play_run_ids", "payload", "requires_ack", "max_attempts", "next_attempt_at",
    "created_at", "attempts",
)  # fmt: skip
_ENCODE = frozenset({"route_ids", "event_ids", "play_run_ids"})  # JSON columns (payload is encoded per account)


def _budget_used(session: Session, since: dt.datetime) -> dict[str, int]:
    rows = session.execute(
        sa.select(Alert.recipient, sa.func.count())
        .where(
            Alert.created_at >= since,
            Alert.kind.in_([AlertKind.IMMEDIATE, AlertKind.ESCALATION]),
            Alert.status != AlertStatus.HELD,
            Alert.status != AlertStatus.DIGESTED,
        )
        .group_by(Alert.recipient)
    ).all()
    return {r[0]: int(r[1]) for r in rows}


def queue_run_alerts(
    session: Session,
    *,
    as_of: dt.date,
    now: dt.datetime,
    settings: AlertSettings,
    model: ScoringModel,
    ids: np.ndarray,
    contributions: np.ndarray,
    after_event_id: int,
    after_run_id: int,
    play_names: Mapping[str, str],
) -> AlertCounts:
    """Queue this run's alerts (events with id > ``after_event_id``, play runs with id >
    ``after_run_id``) in the session's transaction. A fixed number of queries; one pass over
    the alerting accounts to compose their messages."""
    conn = session.connection()  # plain Core rows: the ORM's row loading costs more than the reads
    events = conn.execute(
        sa.select(
            Event.id, Event.account_id, Event.rule_id, Event.rule_name, Event.kind, Event.severity,
            Event.stage, Event.day, Event.trigger_values,
        ).where(Event.id > after_event_id, Event.day == as_of)
    ).all()  # fmt: skip
    runs = conn.execute(
        sa.select(PlayRun.id, PlayRun.account_id, PlayRun.play_id, PlayRun.alert).where(
            PlayRun.id > after_run_id, PlayRun.started_on == as_of
        )
    ).all()
    if not events and not runs:
        return AlertCounts()
    _, routing = active_routing(session)
    tasks = conn.execute(
        sa.select(Task.play_run_id, Task.title, Task.type, Task.due_on, Task.assignee, Task.owner_role)
        .where(Task.play_run_id > after_run_id)
        .order_by(Task.play_run_id, Task.position)
    ).all()
    tasks_by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)  # TaskLine as plain data
    for t in tasks:
        tasks_by_run[t.play_run_id].append(
            {
                "title": t.title,
                "type": str(t.type),
                "due_on": t.due_on.isoformat(),
                "owner": t.assignee or str(t.owner_role),
            }
        )

    alerting = sa.union(
        sa.select(Event.account_id).where(Event.id > after_event_id, Event.day == as_of),
        sa.select(PlayRun.account_id).where(PlayRun.id > after_run_id, PlayRun.started_on == as_of),
    ).subquery()
    accounts = {
        r.id: r
        for r in conn.execute(
            sa.select(
                Account.id, Account.name, Account.owner, Account.segment, Account.arr, Account.renewal_date,
                LatestScore.score, LatestScore.band, LatestScore.stage, LatestScore.score_change_7d,
            )
            .join(LatestScore, LatestScore.account_id == Account.id, isouter=True)
            .where(Account.id.in_(sa.select(alerting.c.account_id)))
        ).all()
    }  # fmt: skip
    cooldown_since = now - dt.timedelta(hours=routing.cooldown_hours)
    cooling = {
        (r[0], r[1])
        for r in conn.execute(
            sa.select(AlertCooldown.account_id, AlertCooldown.rule_id).where(
                AlertCooldown.account_id.in_(sa.select(alerting.c.account_id)),
                AlertCooldown.alerted_at > cooldown_since,
            )
        ).all()
    }
    directory = Directory(session)

    events_by_account: dict[int, list[Any]] = defaultdict(list)
    for e in events:
        events_by_account[e.account_id].append(e)
    runs_by_account: dict[int, list[Any]] = defaultdict(list)
    for r in runs:
        runs_by_account[r.account_id].append(r)

    account_ids = np.array(sorted(accounts), dtype=np.int64)
    positions = np.searchsorted(ids, account_ids)
    valid = (positions < ids.size) & (ids[np.minimum(positions, ids.size - 1)] == account_ids)
    drivers = dict(zip(account_ids[valid].tolist(), _top_drivers(model, contributions, positions[valid]), strict=True))

    candidates: list[dict[str, Any]] = []
    routed: dict[tuple[Item, ...], tuple[Mapping[str, str], list[str]]] = {}
    cooled = unroutable = 0
    for account_id in account_ids.tolist():
        account = accounts[account_id]
        stage = str(account.stage) if account.stage is not None else ""
        band = str(account.band) if account.band is not None else None
        items: list[Item] = []
        kept_events = []
        for e in events_by_account.get(account_id, ()):
            if (account_id, e.rule_id) in cooling:
                cooled += 1
                continue
            kept_events.append(e)
            items.append(
                Item(
                    stage=str(e.stage), segment=account.segment, band=band, kind=str(e.kind),
                    severity=str(e.severity), rule_id=e.rule_id,
                )
            )  # fmt: skip
        account_runs = runs_by_account.get(account_id, ())
        for r in account_runs:
            items.append(
                Item(stage=stage, segment=account.segment, band=band, play_id=r.play_id, play_alert=str(r.alert))
            )
        if not items:
            continue
        signature = tuple(items)  # many accounts share one: the same rules in the same stage and band
        if signature not in routed:
            routed[signature] = (
                route(routing, items),
                [r.id for r in routing.routes if any(r.matches(item) for item in items)],
            )
        decided, matched = routed[signature]
        immediate = [recipient for recipient, mode in decided.items() if mode == "immediate"]
        if not immediate:
            continue
        # The message as plain data, exactly ``AccountAlert(...).to_dict()`` (a test holds them
        # equal) built directly: thousands of accounts alert on a busy day.
        message = {
            "type": "account", "kind": AlertKind.IMMEDIATE.value, "account_id": account_id,
            "account_name": account.name, "stage": stage, "band": band,
            "score": None if account.score is None else round(float(account.score), 1),
            "change_7d": None if account.score_change_7d is None else round(float(account.score_change_7d), 1),
            "arr": float(account.arr or 0.0), "owner": account.owner, "segment": account.segment,
            "renewal_date": account.renewal_date.isoformat() if account.renewal_date else None,
            "account_url": settings.account_url(account_id),
            "events": [
                {
                    "rule_id": e.rule_id, "rule_name": e.rule_name, "kind": str(e.kind), "severity": str(e.severity),
                    "day": e.day.isoformat(), "detail": e.trigger_values or {}, "account_id": None,
                    "account_name": None,
                }
                for e in kept_events
            ],
            "plays": [
                {"play_id": r.play_id, "name": play_names.get(r.play_id, r.play_id), "tasks": tasks_by_run[r.id]}
                for r in account_runs
                if str(r.alert) != "none"
            ],
            "drivers": drivers.get(account_id, []),
            "ack_url": None, "escalated_alert_id": None, "unacknowledged_hours": None,
        }  # fmt: skip
        payload = _encode(message)  # once per account, shared by its recipients
        rules = [e.rule_id for e in kept_events]
        severity = max((SEVERITY_RANK.get(str(e.severity), 0) for e in kept_events), default=0)
        event_ids = [e.id for e in kept_events]
        run_ids = [r.id for r in account_runs]
        # The copies of this message to its recipients share a group (acknowledged and escalated
        # together); it names this run's first event or play run, so the keys are new.
        group = f"acct:{account_id}:" + (f"e{min(event_ids)}|" if event_ids else f"p{min(run_ids)}|")
        for recipient in sorted(immediate):
            target = _resolve(recipient, account.owner, routing, directory)
            if target is None:
                unroutable += 1
                continue
            address, user, channel = target
            candidates.append(
                {
                    "dedupe_key": f"{group}{recipient}",
                    "kind": AlertKind.IMMEDIATE,
                    "status": AlertStatus.PENDING,
                    "channel": channel,
                    "recipient": address,
                    "recipient_user": user,
                    "account_id": account_id,
                    "day": as_of,
                    "severity": next((s for s, rank in SEVERITY_RANK.items() if rank == severity), None),
                    "route_ids": matched,  # why this recipient heard of it
                    "event_ids": event_ids,
                    "play_run_ids": run_ids,
                    "payload": payload,
                    "_rules": rules,
                    "requires_ack": band == "poor",
                    "max_attempts": routing.max_attempts,
                    "next_attempt_at": now,
                    "created_at": now,
                    "attempts": 0,
                    "_rank": (severity, float(account.arr or 0.0)),
                }
            )

    # The daily budget per recipient: the most severe and valuable first; the rest held for the digest.
    day_start = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    used = _budget_used(session, day_start)
    candidates.sort(key=lambda c: c["_rank"], reverse=True)
    held = 0
    for candidate in candidates:
        del candidate["_rank"]
        spent = used.get(candidate["recipient"], 0)
        if spent >= routing.budget_per_day:
            candidate["status"] = AlertStatus.HELD
            held += 1
        else:
            used[candidate["recipient"]] = spent + 1
    # The keys are new by construction (each names an event or play run this run created), so a
    # plain bulk load (COPY on PostgreSQL); the unique key still guards against a duplicate.
    bulk_insert(
        session,
        Alert.__table__,  # type: ignore[arg-type]
        _ALERT_COLUMNS,
        (tuple(_encode(c[name]) if name in _ENCODE else c[name] for name in _ALERT_COLUMNS) for c in candidates),
    )

    # Cooldowns start now for every (account, rule) alerted at once.
    alerted = sorted(
        {(c["account_id"], rule) for c in candidates if c["status"] == AlertStatus.PENDING for rule in c["_rules"]}
    )
    if alerted:
        bulk_insert(
            session,
            AlertCooldown.__table__,  # type: ignore[arg-type]
            ("account_id", "rule_id", "alerted_at"),
            ((account_id, rule, now) for account_id, rule in alerted),
            conflict_key=("account_id", "rule_id"),
        )
    return AlertCounts(queued=len(candidates) - held, held=held, cooled_down=cooled, unroutable=unroutable)


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
