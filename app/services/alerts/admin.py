"""Alerts as people see them: listing the outbox, retrying dead alerts, acknowledging, and editing
the routing document (validated, versioned and audited)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts.routing import check_routing, default_routing_data, load_routing
from alerts.safety import check_webhook_url
from app.errors import Conflict, DomainValidationError, NotFound
from app.models import Account, Alert, AlertRoutingVersion, AlertStatus
from app.services.alerts.dispatch import acknowledge
from app.services.alerts.settings import AlertSettings
from app.services.audit import record
from app.services.common import page_of, rows

_COLUMNS = (
    Alert.id, Alert.dedupe_key, Alert.kind, Alert.status, Alert.channel, Alert.delivered_via, Alert.recipient,
    Alert.recipient_user, Alert.account_id, Account.name.label("account_name"), Alert.day, Alert.severity,
    Alert.route_ids, Alert.event_ids, Alert.play_run_ids, Alert.requires_ack, Alert.acknowledged_at,
    Alert.acknowledged_by, Alert.escalated_at, Alert.escalation_of, Alert.digest_id, Alert.attempts, Alert.max_attempts,
    Alert.next_attempt_at, Alert.last_error, Alert.sent_at, Alert.created_at, Alert.payload.label("message"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlertFilters:
    status: str | None = None
    kind: str | None = None
    channel: str | None = None
    account: int | None = None
    recipient: str | None = None
    digest: int | None = None  # the digest that carried them
    since: dt.datetime | None = None
    owners: tuple[str, ...] | None = None  # the caller's book; None: everything
    identities: tuple[str, ...] = ()  # the caller's own addresses (alerts to them are theirs too)


def _query(filters: AlertFilters) -> Any:
    query = sa.select(*_COLUMNS).join(Account, Account.id == Alert.account_id, isouter=True)
    for column, value in (
        (Alert.status, filters.status),
        (Alert.kind, filters.kind),
        (Alert.channel, filters.channel),
        (Alert.account_id, filters.account),
        (Alert.recipient, filters.recipient),
        (Alert.digest_id, filters.digest),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(Alert.created_at >= filters.since)
    if filters.owners is not None:
        query = query.where(sa.or_(Account.owner.in_(filters.owners), Alert.recipient.in_(filters.identities or ("",))))
    return query


def list_alerts(
    session: Session, *, filters: AlertFilters, page: int, per_page: int, count: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """One page of alerts, newest first (``count=False``: the total is not counted)."""
    statement, total = page_of(
        session,
        _query(filters),
        order_by=(Alert.created_at.desc(), Alert.id.desc()),
        page=page,
        per_page=per_page,
        count=count,
    )
    return [row._asdict() for row in rows(session, statement)], total


def get_alert(session: Session, alert_id: int, *, filters: AlertFilters | None = None) -> dict[str, Any]:
    row = session.execute(_query(filters or AlertFilters()).where(Alert.id == alert_id)).first()
    if row is None:
        raise NotFound(f"No alert {alert_id}.")
    return row._asdict()


def retry_alert(session: Session, alert_id: int, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Send a dead alert again: pending, due now, with a fresh count of attempts. Audited."""
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    if alert.status is not AlertStatus.DEAD:
        raise Conflict(f"Alert {alert_id} is {alert.status.value}; only a dead alert can be retried.")
    alert.status = AlertStatus.PENDING
    alert.attempts = 0
    alert.next_attempt_at = now
    alert.locked_until = None
    alert.locked_by = None
    record(
        session, actor=actor, action="alert.retry", target=f"alert:{alert_id}", details={"last_error": alert.last_error}
    )
    session.flush()
    return get_alert(session, alert_id)


def acknowledge_alert(session: Session, alert_id: int, *, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Acknowledge an alert (and its copies to other recipients); ``Conflict`` for a digest."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    if not alert.requires_ack:
        raise Conflict(f"Alert {alert_id} does not ask for an acknowledgement (only poor-health alerts do).")
    first = alert.acknowledged_at is None
    acknowledge(session, alert_id, by=actor, now=now)
    if first:
        record(session, actor=actor, action="alert.acknowledge", target=f"alert:{alert_id}")
    session.flush()
    return get_alert(session, alert_id)


def alert_account(session: Session, alert_id: int) -> int | None:
    """The account an alert is about (None for a digest); ``NotFound`` when there is no alert."""
    row = session.execute(sa.select(Alert.account_id).where(Alert.id == alert_id)).first()
    if row is None:
        raise NotFound(f"No alert {alert_id}.")
    return row[0]


# --- routing ------------------------------------------------------------------------------------


def get_routing(session: Session) -> dict[str, Any]:
    row = session.execute(sa.select(AlertRoutingVersion).order_by(AlertRoutingVersion.version.desc()).limit(1)).scalar()
    if row is None:
        return {"version": 0, "document": default_routing_data(), "author": None, "comment": None, "created_at": None}
    return {
        "version": row.version,
        "document": row.document,
        "author": row.author,
        "comment": row.comment,
        "created_at": row.created_at,
    }


def save_routing(
    session: Session, document: dict[str, Any], *, version: int, comment: str, actor: str, settings: AlertSettings
) -> dict[str, Any]:
    """A new routing version from ``document``, based on ``version`` (the current one, else
    ``Conflict``). Every problem is a field error; webhook URLs must pass the SSRF checks."""
    errors = {f"document.{path}": messages for path, messages in check_routing(document).items()}
    if not errors:
        for name, spec in (document.get("channels") or {}).items():
            url = spec.get("url")
            if url is None and spec.get("url_env"):
                url = settings.env.get(spec["url_env"])
                where = f"document.channels.{name}.url_env"
            else:
                where = f"document.channels.{name}.url"
            if url:
                problem = check_webhook_url(
                    url, allowed_hosts=settings.webhook_hosts, allow_insecure=settings.allow_insecure_webhooks
                )
                if problem:
                    errors[where] = [f"The webhook URL {problem}."]
    if errors:
        raise DomainValidationError("The routing document is not valid; nothing changed.", errors={"json": errors})
    current = get_routing(session)["version"]
    if version != current:
        raise Conflict(f"The routing changed meanwhile (now version {current}, the change was based on {version}).")
    normalized = load_routing(document).to_dict()
    try:
        session.add(
            AlertRoutingVersion(
                version=current + 1,
                document=normalized,
                author=actor,
                comment=comment,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
        session.flush()
    except IntegrityError:
        raise Conflict("Another routing change was saved at the same moment; nothing changed.") from None
    record(
        session, actor=actor, action="alert_routing.update", target=f"alert_routing:{current + 1}",
        details={"from": current, "comment": comment},
    )  # fmt: skip
    return get_routing(session)
