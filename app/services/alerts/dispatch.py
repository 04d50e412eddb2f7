"""The outbox dispatcher: claim due alerts, send them, mark them; escalate unacknowledged ones.

Delivery is **at least once**. A pass claims a batch of due rows in one short transaction
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so dispatchers on several machines never claim the
same row; SQLite's single writer serializes claims), stamping them with a lease
(``locked_until``) and counting the attempt. Then, outside any transaction, it sends each row
and marks it sent (or schedules its retry) in a transaction of its own. A dispatcher that dies
after claiming leaves rows whose lease runs out; the next pass claims them again. One that dies
between the send and the mark sends that one alert twice: the receiver can drop the duplicate by
its key (the webhook's ``Idempotency-Key``, the email's ``Message-ID``, both derived from the
row's dedupe key). A dispatcher whose lease ran short stops sending and hands its remaining rows
back rather than racing the next claimer.

Unlike other services this one commits: the claim must be visible to other dispatchers before
anything is sent, and each mark must be durable before the next send.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import AccountAlert, AlertChannel, AlertDeliveryFailed, AlertKind, ChannelType, message_from_dict
from alerts.email import EmailChannel
from alerts.log import LogChannel
from alerts.retry import next_delay
from alerts.routing import Routing
from alerts.safety import redact_url
from alerts.signing import sign_ack
from app.db import as_utc
from app.models import Alert, AlertStatus
from app.services.alerts.settings import CHANNEL_PREFIX, AlertSettings, Directory, active_routing, alert_group

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class DispatchCounts:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0  # handed back unsent when the lease ran short
    lost_lease: int = 0  # sent after another dispatcher reclaimed the row (a possible duplicate)
    escalated: int = 0

    def counts(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def add(self, other: DispatchCounts) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    dedupe_key: str
    channel: ChannelType
    recipient: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    requires_ack: bool
    locked_until: dt.datetime


class Channels:
    """The channel for each destination, built once and reused across passes (an SMTP
    connection and an HTTP session stay open). Without SMTP settings email goes to the log; a
    channel whose URL is not configured goes to the log too (the demo needs nothing)."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._log = LogChannel()
        self._email: AlertChannel | None = None
        self._by_name: dict[str, AlertChannel] = {}
        self._routing_doc: dict[str, Any] | None = None

    def use_routing(self, routing: Routing) -> None:
        doc = routing.to_dict()
        if doc != self._routing_doc:
            for channel in self._by_name.values():
                channel.close()
            self._by_name = {}
            self._routing = routing
            self._routing_doc = doc

    def for_row(self, row: Claimed) -> AlertChannel:
        if row.channel is ChannelType.EMAIL:
            if self.settings.smtp is None:
                return self._log
            if self._email is None:
                self._email = EmailChannel(self.settings.smtp)
            return self._email
        name = row.recipient[len(CHANNEL_PREFIX) :] if row.recipient.startswith(CHANNEL_PREFIX) else row.recipient
        if name not in self._by_name:
            self._by_name[name] = self._build(name)
        return self._by_name[name]

    def _build(self, name: str) -> AlertChannel:
        spec = self._routing.channel(name)
        if spec is None:
            return self._log
        url = spec.url or (self.settings.env.get(spec.url_env) if spec.url_env else None)
        if not url:
            return self._log
        insecure = self.settings.allow_insecure_webhooks
        timeout = self.settings.http_timeout
        # The HTTP channels are imported when a dispatcher first builds one: they bring requests
        # and urllib3, start-up that every process importing the app (each CLI command) paid.
        from alerts.slack import SlackChannel
        from alerts.webhook import WebhookChannel

        if spec.type == ChannelType.SLACK:
            return SlackChannel(url, timeout=timeout, allow_insecure=insecure)
        secret = self.settings.env.get(spec.secret_env or "", "")
        return WebhookChannel(url, secret, timeout=timeout, allow_insecure=insecure)

    def close(self) -> None:
        for channel in (*self._by_name.values(), *([self._email] if self._email else [])):
            channel.close()
        self._by_name = {}
        self._email = None


def claim(session: Session, *, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Claimed]:
    """Claim up to ``limit`` due rows for ``worker`` (committed by the caller before sending)."""
    due = (
        sa.select(Alert.id)
        .where(
            Alert.status == AlertStatus.PENDING,
            Alert.next_attempt_at <= now,
            sa.or_(Alert.locked_until.is_(None), Alert.locked_until < now),
        )
        .order_by(Alert.next_attempt_at, Alert.id)
        .limit(limit)
    )
    if session.connection().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    locked_until = now + lease
    rows = session.execute(
        sa.update(Alert)
        .where(Alert.id.in_(due.scalar_subquery()))
        .values(locked_until=locked_until, locked_by=worker, attempts=Alert.attempts + 1)
        .returning(
            Alert.id, Alert.dedupe_key, Alert.channel, Alert.recipient, Alert.payload, Alert.attempts,
            Alert.max_attempts, Alert.requires_ack,
        )
    ).all()  # fmt: skip
    claimed = [
        Claimed(
            id=r.id, dedupe_key=r.dedupe_key, channel=r.channel, recipient=r.recipient, payload=r.payload,
            attempts=r.attempts, max_attempts=r.max_attempts, requires_ack=r.requires_ack, locked_until=locked_until,
        )
        for r in rows
    ]  # fmt: skip
    claimed.sort(key=lambda c: c.id)
    return claimed


_ALERTS: sa.Table = Alert.__table__  # type: ignore[assignment]
#: One mark per outcome, compiled once: a Core UPDATE of the row still leased to this worker.
_MARK_WHERE = sa.and_(_ALERTS.c.id == sa.bindparam("b_id"), _ALERTS.c.locked_by == sa.bindparam("b_worker"))
_UNLOCK = {"locked_until": None, "locked_by": None}
_MARK_SENT = (
    _ALERTS.update()
    .where(_MARK_WHERE)
    .values(
        status=AlertStatus.SENT, sent_at=sa.bindparam("b_at"), delivered_via=sa.bindparam("b_via"), last_error=None,
        **_UNLOCK,
    )
)  # fmt: skip
_MARK_DEAD = (
    _ALERTS.update().where(_MARK_WHERE).values(status=AlertStatus.DEAD, last_error=sa.bindparam("b_error"), **_UNLOCK)
)
_MARK_RETRY = (
    _ALERTS.update()
    .where(_MARK_WHERE)
    .values(next_attempt_at=sa.bindparam("b_at"), last_error=sa.bindparam("b_error"), **_UNLOCK)
)
_MARK_DEFERRED = (  # put back without spending the attempt the claim counted
    _ALERTS.update()
    .where(_MARK_WHERE)
    .values(
        next_attempt_at=sa.bindparam("b_at"), last_error=sa.bindparam("b_error"), attempts=_ALERTS.c.attempts - 1,
        **_UNLOCK,
    )
)  # fmt: skip
_MARK_RELEASED = _ALERTS.update().where(_MARK_WHERE).values(attempts=_ALERTS.c.attempts - 1, **_UNLOCK)


class _Marks:
    """Marks a batch's rows on one connection kept for the batch, each in a transaction of its own.

    On PostgreSQL the marks commit with ``synchronous_commit = off``: the commit is visible at
    once, and only a crash of PostgreSQL itself could lose the last fraction of a second of
    marks, whose alerts would then be sent again: within the at-least-once guarantee, and
    receivers drop repeats by their key. This doubles a dispatcher's rate (see docs/alerts.md).
    """

    def __init__(self, connection: sa.Connection, worker: str) -> None:
        self.connection = connection
        self.worker = worker
        self.postgresql = connection.dialect.name == "postgresql"
        if self.postgresql:
            connection.exec_driver_sql("SET synchronous_commit = off")
            connection.commit()

    def mark(self, statement: sa.Update, alert_id: int, **params: Any) -> bool:
        result = self.connection.execute(statement, {"b_id": alert_id, "b_worker": self.worker, **params})
        self.connection.commit()
        return bool(result.rowcount)

    def close(self) -> None:
        if self.postgresql:  # the pooled connection goes back as it came
            self.connection.exec_driver_sql("RESET synchronous_commit")
            self.connection.commit()


class Dispatcher:
    """Sends due alerts. One per process; ``run_once`` is one pass (the scheduler's job and
    ``flask alerts dispatch``)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: AlertSettings,
        *,
        worker: str,
        clock: Clock = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.worker = worker
        self.clock = clock
        self.rng = rng or random.Random()
        self.channels = Channels(settings)

    def close(self) -> None:
        self.channels.close()

    def run_once(self, *, max_seconds: float = 30.0) -> DispatchCounts:
        """Escalate what is due, then claim and send batches until nothing is due or
        ``max_seconds`` have passed."""
        total = DispatchCounts()
        started = time.monotonic()
        with self.factory.begin() as session:
            _, routing = active_routing(session)
            total.escalated = escalate_due(session, now=self.clock(), routing=routing)
        self.channels.use_routing(routing)
        while time.monotonic() - started < max_seconds:
            counts = self._batch()
            total.add(counts)
            if counts.claimed < self.settings.batch_size:
                break
        return total

    def _batch(self) -> DispatchCounts:
        lease = dt.timedelta(seconds=self.settings.lease_seconds)
        with self.factory.begin() as session:
            rows = claim(session, worker=self.worker, now=self.clock(), lease=lease, limit=self.settings.batch_size)
        if not rows:
            return DispatchCounts()
        bind = self.factory.kw["bind"]
        with bind.connect() as connection:
            marks = _Marks(connection, self.worker)
            try:
                return self._send_all(rows, marks)
            finally:
                marks.close()

    def _send_all(self, rows: list[Claimed], marks: _Marks) -> DispatchCounts:
        counts = DispatchCounts(claimed=len(rows))
        down: dict[str, AlertDeliveryFailed] = {}  # destinations that failed retryably in this batch
        margin = dt.timedelta(seconds=self.settings.http_timeout * 2 + 1)
        for position, row in enumerate(rows):
            if self.clock() > row.locked_until - margin:
                # Too little lease left to send and mark safely: hand the rest back.
                for rest in rows[position:]:
                    marks.mark(_MARK_RELEASED, rest.id)
                counts.released += len(rows) - position
                break
            destination = row.recipient if row.channel is not ChannelType.EMAIL else "email"
            failure = down.get(destination)
            if failure is not None:
                # The destination just failed: retry later without spending this row's attempt.
                self._retry(marks, row, failure, counts, refund=True)
                continue
            try:
                channel = self.channels.for_row(row)
                channel.send(self._message(row), key=row.dedupe_key, to=row.recipient)
            except AlertDeliveryFailed as error:
                if error.retryable:
                    down[destination] = error
                self._fail(marks, row, error, counts)
                continue
            except Exception as error:  # a bug in rendering or a channel: never lose the row
                logger.exception("alert %s failed unexpectedly", row.id)
                failure = AlertDeliveryFailed(f"{type(error).__name__}: {error}", retryable=True)
                self._fail(marks, row, failure, counts)
                continue
            marked = marks.mark(_MARK_SENT, row.id, b_at=self.clock(), b_via=channel.type)
            counts.sent += 1
            if not marked:
                counts.lost_lease += 1
                logger.warning("alert %s was sent after its lease passed to another dispatcher", row.id)
        return counts

    def _message(self, row: Claimed) -> Any:
        message = message_from_dict(row.payload)
        if row.requires_ack and isinstance(message, AccountAlert) and message.ack_url is None:
            expires = int(self.clock().timestamp()) + self.settings.ack_link_days * 86400
            token = sign_ack(self.settings.secret_key, row.id, expires)
            message = dataclasses.replace(message, ack_url=f"{self.settings.public_base_url}/alerts/ack?token={token}")
        return message

    def _fail(self, marks: _Marks, row: Claimed, error: AlertDeliveryFailed, counts: DispatchCounts) -> None:
        if error.retryable and row.attempts < row.max_attempts:
            self._retry(marks, row, error, counts, refund=False)
            return
        marks.mark(_MARK_DEAD, row.id, b_error=_describe(error, row))
        counts.dead += 1
        logger.warning("alert %s is dead after %d attempts: %s", row.id, row.attempts, _describe(error, row))

    def _retry(
        self, marks: _Marks, row: Claimed, error: AlertDeliveryFailed, counts: DispatchCounts, *, refund: bool
    ) -> None:
        delay = next_delay(row.attempts, retry_after=error.retry_after, rng=self.rng)
        marks.mark(
            _MARK_DEFERRED if refund else _MARK_RETRY,
            row.id,
            b_at=self.clock() + dt.timedelta(seconds=delay),
            b_error=_describe(error, row),
        )
        counts.retried += 1


def _describe(error: AlertDeliveryFailed, row: Claimed) -> str:
    """The error for the row's ``last_error``: never a webhook URL's secret path."""
    text = str(error)
    if row.recipient.startswith(("http://", "https://")):
        text = text.replace(row.recipient, redact_url(row.recipient))
    return text[:2000]


# --- acknowledge and escalate -------------------------------------------------------------------


def acknowledge(session: Session, alert_id: int, *, by: str, now: dt.datetime) -> Alert | None:
    """Acknowledge an alert and its copies to the other recipients; None if there is no such alert.
    Acknowledging twice keeps the first acknowledgement."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    if alert.acknowledged_at is None and alert.kind is not AlertKind.DIGEST:
        prefix = alert_group(alert.dedupe_key) if alert.kind is AlertKind.IMMEDIATE else alert.dedupe_key
        group = sa.or_(Alert.dedupe_key.startswith(prefix, autoescape=True), Alert.id == alert.id)
        if alert.escalation_of is not None:
            group = sa.or_(group, Alert.id == alert.escalation_of)
        session.execute(
            sa.update(Alert)
            .where(group, Alert.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by=by)
            .execution_options(synchronize_session=False)
        )
        session.refresh(alert)
    return alert


def escalate_due(session: Session, *, now: dt.datetime, routing: Routing) -> int:
    """Queue one escalation to the manager for each poor-health alert nobody acknowledged within
    the routing's ``escalate_after_hours`` (once per alert and its copies). Returns how many."""
    cutoff = now - dt.timedelta(hours=routing.escalate_after_hours)
    rows = session.execute(
        sa.select(Alert.id, Alert.dedupe_key, Alert.payload, Alert.account_id, Alert.created_at, Alert.day)
        .where(
            Alert.requires_ack,
            Alert.acknowledged_at.is_(None),
            Alert.escalated_at.is_(None),
            Alert.kind == AlertKind.IMMEDIATE,
            Alert.created_at <= cutoff,
        )
        .order_by(Alert.id)
        .limit(1000)
    ).all()
    if not rows:
        return 0
    groups: dict[str, Any] = {}  # the first row of each group of copies
    for row in rows:
        groups.setdefault(alert_group(row.dedupe_key), row)
    keys = {group: f"esc:{group}"[:255] for group in groups}
    done = set(session.scalars(sa.select(Alert.dedupe_key).where(Alert.dedupe_key.in_(list(keys.values())))))
    directory = Directory(session)
    escalations = []
    for group, row in groups.items():
        if keys[group] in done:  # escalated by an earlier pass (copies beyond its batch)
            continue
        message = message_from_dict(row.payload)
        assert isinstance(message, AccountAlert)
        address, user = directory.manager(message.owner)
        if not address:
            logger.info("alert %s: no manager to escalate to for %s", row.id, message.owner)
            continue
        hours = round((now - as_utc(row.created_at)).total_seconds() / 3600, 1)
        escalation = dataclasses.replace(
            message, kind=AlertKind.ESCALATION, escalated_alert_id=row.id, unacknowledged_hours=hours, ack_url=None
        )
        escalations.append(
            {
                "dedupe_key": keys[group], "kind": AlertKind.ESCALATION, "status": AlertStatus.PENDING,
                "channel": ChannelType.EMAIL, "recipient": address, "recipient_user": user,
                "account_id": row.account_id, "day": row.day, "severity": "high", "route_ids": [],
                "event_ids": [], "play_run_ids": [], "payload": escalation.to_dict(), "requires_ack": True,
                "escalation_of": row.id, "max_attempts": routing.max_attempts, "next_attempt_at": now,
                "created_at": now,
                "escalated_at": now,  # an escalation does not escalate again
            }
        )  # fmt: skip
    if escalations:
        session.execute(sa.insert(Alert), escalations)
    session.execute(
        sa.update(Alert)
        .where(Alert.id.in_([row.id for row in rows]))
        .values(escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    queued = len(escalations)
    return queued
