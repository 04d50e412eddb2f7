"""The daily digest: one email per manager (and, if the routing says so, per CSM) at a local time.

A digest lists the recipient's at-risk accounts (poor band, or average and falling over 7 days,
biggest ARR first), what changed since their previous digest (events on their accounts), and
the alerts the daily budget held back for them, which it marks ``digested``. It is queued in
the outbox like any alert, with the dedupe key ``digest:<user>:<local date>``, so a second pass
the same day queues nothing. The job runs every few minutes and queues the digests that are due.

A digest lists at most ``max_accounts`` held alerts (the routing's digest setting), with their
total and a link to the full list (``GET /api/v1/alerts?digest=<id>``): a manager's first digest
after a busy day was 700 KB. Times are shown in the recipient's time zone (``users.time_zone``).
Two processes queueing the same digest at once (``flask alerts digest --force`` beside the
scheduler) end with one digest: the loser's insert is refused by the dedupe key and skipped.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from alerts.base import AccountAlert, AlertKind, ChannelType, Digest, DigestAccount, EventLine
from alerts.render import points
from app.db import as_utc
from app.models import Account, Alert, AlertStatus, LatestScore, User
from app.models.plays import Event
from app.services.alerts.settings import AlertSettings, active_routing, alert_group

MAX_CHANGES = 50
FALLING_7D = -5.0  # an average-band account this many points down over 7 days is at risk


def queue_digests(session: Session, *, now: dt.datetime, settings: AlertSettings, force: bool = False) -> int:
    """Queue every digest due at ``now`` (the routing's local time has passed and today's is not
    queued yet); ``force`` ignores the time of day. Returns how many were queued."""
    _, routing = active_routing(session)
    digest = routing.digest
    local = now.astimezone(digest.zone)
    if not force and (local.hour, local.minute) < (digest.hour, digest.minute):
        return 0
    users = session.execute(
        sa.select(User.id, User.name, User.email, User.manager_id, User.time_zone).where(~User.disabled)
    ).all()
    zones = {u.name: u.time_zone for u in users}
    reports: dict[int, list[tuple[str, str | None]]] = {}
    for u in users:
        if u.manager_id is not None:
            reports.setdefault(u.manager_id, []).append((u.name, u.email))
    owners_in_use = {
        o for (o,) in session.execute(sa.select(Account.owner).where(Account.owner.is_not(None)).distinct()).all()
    }
    recipients: list[tuple[str, str, tuple[str, ...]]] = []  # (user, email, book)
    for u in users:
        address = u.email or (u.name if "@" in u.name else None)  # a user named by their address (the demo's CSMs)
        if not address:
            continue
        own = (u.name, address)
        if digest.managers and u.id in reports:
            team = [identity for name, email in reports[u.id] for identity in (name, email) if identity]
            recipients.append((u.name, address, (*own, *team)))
        elif digest.csms and (u.name in owners_in_use or address in owners_in_use):
            recipients.append((u.name, address, own))
    if not recipients:
        return 0
    keys = {f"digest:{name}:{local.date().isoformat()}": (name, email, book) for name, email, book in recipients}
    existing = set(session.scalars(sa.select(Alert.dedupe_key).where(Alert.dedupe_key.in_(list(keys)))).all())
    previous = dict(
        session.execute(
            sa.select(Alert.recipient_user, sa.func.max(Alert.created_at))
            .where(Alert.kind == AlertKind.DIGEST)
            .group_by(Alert.recipient_user)
        ).all()
    )
    # Held copies addressed to someone who gets a digest of their own wait for theirs.
    own_digest = sorted({email for _, email, _ in recipients})
    queued = 0
    for key, (name, email, book) in keys.items():
        if key in existing:
            continue
        since = as_utc(previous[name]) if previous.get(name) else now - dt.timedelta(days=1)
        try:
            with session.begin_nested():  # a savepoint: losing the race rolls back this digest only
                alert = Alert(
                    dedupe_key=key, kind=AlertKind.DIGEST, status=AlertStatus.PENDING, channel=ChannelType.EMAIL,
                    recipient=email, recipient_user=name, day=local.date(), payload={}, route_ids=[], event_ids=[],
                    play_run_ids=[], max_attempts=routing.max_attempts, next_attempt_at=now, created_at=now,
                )  # fmt: skip
                session.add(alert)
                session.flush()  # the id first: the digest links to the full list of what it carries
                message, held_ids = build_digest(
                    session, name=name, email=email, book=book, since=since, now=now, settings=settings,
                    max_accounts=digest.max_accounts, digest_id=alert.id, others=own_digest,
                    time_zone=zones.get(name) or "UTC",
                )  # fmt: skip
                alert.payload = message.to_dict()
                if held_ids:
                    session.execute(
                        sa.update(Alert)
                        .where(Alert.id.in_(held_ids))
                        .values(status=AlertStatus.DIGESTED, digest_id=alert.id)
                        .execution_options(synchronize_session=False)
                    )
                session.flush()
        except sa.exc.IntegrityError:
            continue  # another process queued this digest meanwhile: it is queued once, by them
        queued += 1
    return queued


def build_digest(
    session: Session,
    *,
    name: str,
    email: str,
    book: tuple[str, ...],
    since: dt.datetime,
    now: dt.datetime,
    settings: AlertSettings,
    max_accounts: int,
    digest_id: int | None = None,
    others: list[str] | tuple[str, ...] = (),
    time_zone: str = "UTC",
) -> tuple[Digest, list[int]]:
    """One person's digest and the ids of the held alerts it carries (a few queries, none per account).

    ``others``: the addresses that get a digest of their own (their held copies wait for it);
    ``digest_id``: this digest's alert id, for the link to the full list of held alerts."""
    at_risk, at_risk_total = _at_risk(session, book=book, settings=settings, max_accounts=max_accounts)
    changes, changes_total = _changes(session, book=book, since=since, now=now)
    held, held_ids = _held(session, name=name, email=email, book=book, others=[o for o in others if o != email])
    held_url = f"{settings.public_base_url}/api/v1/alerts?digest={digest_id}" if digest_id is not None else ""
    message = Digest(
        recipient_name=name,
        since=since.isoformat(),
        until=now.isoformat(),
        at_risk=at_risk,
        changes=changes,
        held=held[:max_accounts],
        at_risk_total=int(at_risk_total),
        changes_total=int(changes_total),
        dashboard_url=f"{settings.public_base_url}/watchlist",  # the watchlist page (app/web)
        held_total=len(held),
        held_url=held_url,
        time_zone=time_zone,
    )
    return message, held_ids


def _at_risk(
    session: Session, *, book: tuple[str, ...], settings: AlertSettings, max_accounts: int
) -> tuple[tuple[DigestAccount, ...], int]:
    """The book's at-risk accounts, biggest ARR first (at most ``max_accounts``), and how many there are."""
    at_risk_filter = sa.and_(
        Account.owner.in_(book),
        sa.or_(
            LatestScore.band == "poor",
            sa.and_(LatestScore.band == "average", LatestScore.score_change_7d <= FALLING_7D),
        ),
    )
    base = sa.select(Account.id).join(LatestScore, LatestScore.account_id == Account.id).where(at_risk_filter)
    at_risk_total = session.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        sa.select(
            Account.id, Account.name, Account.owner, Account.arr, Account.renewal_date,
            LatestScore.band, LatestScore.score, LatestScore.score_change_7d, LatestScore.score_change_30d,
        )
        .join(LatestScore, LatestScore.account_id == Account.id)
        .where(at_risk_filter)
        .order_by(Account.arr.desc(), Account.id)
        .limit(max_accounts)
    ).all()  # fmt: skip
    at_risk = tuple(
        DigestAccount(
            account_id=r.id,
            account_name=r.name,
            band=str(r.band) if r.band is not None else None,
            score=None if r.score is None else round(float(r.score), 1),
            change_7d=None if r.score_change_7d is None else round(float(r.score_change_7d), 1),
            change_30d=None if r.score_change_30d is None else round(float(r.score_change_30d), 1),
            arr=float(r.arr or 0.0),
            owner=r.owner,
            renewal_date=r.renewal_date.isoformat() if r.renewal_date else None,
            account_url=settings.account_url(r.id),
            reasons=("poor health",)
            if str(r.band) == "poor"
            else (f"down {points(abs(float(r.score_change_7d or 0)))} points in 7 days",),
        )
        for r in rows
    )
    return at_risk, at_risk_total


def _changes(
    session: Session, *, book: tuple[str, ...], since: dt.datetime, now: dt.datetime
) -> tuple[tuple[EventLine, ...], int]:
    """Events on the book's accounts created in (``since``, ``now``], newest first (at most
    ``MAX_CHANGES``), and how many there are."""
    change_filter = sa.and_(Account.owner.in_(book), Event.created_at > since, Event.created_at <= now)
    changes_total = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Event)
            .join(Account, Account.id == Event.account_id)
            .where(change_filter)
        )
        or 0
    )
    events = session.execute(
        sa.select(
            Event.rule_id, Event.rule_name, Event.kind, Event.severity, Event.day, Event.trigger_values,
            Account.id.label("account_id"), Account.name.label("account_name"),
        )
        .join(Account, Account.id == Event.account_id)
        .where(change_filter)
        .order_by(Event.day.desc(), Event.id.desc())
        .limit(MAX_CHANGES)
    ).all()  # fmt: skip
    changes = tuple(
        EventLine(
            rule_id=e.rule_id, rule_name=e.rule_name, kind=str(e.kind), severity=str(e.severity),
            day=e.day.isoformat(), detail=dict(e.trigger_values or {}), account_id=e.account_id,
            account_name=e.account_name,
        )
        for e in events
    )  # fmt: skip
    return changes, changes_total


def _held(
    session: Session, *, name: str, email: str, book: tuple[str, ...], others: list[str]
) -> tuple[tuple[AccountAlert, ...], list[int]]:
    """The held alerts the digest carries, one per group, and the ids of every copy it marks digested.

    Held alerts addressed to this person, and those about accounts in their book addressed to no
    one in ``others`` (the team channel's, and a CSM's when CSMs get no digest of their own); the
    copies of one alert to several recipients are listed once."""
    in_book: sa.ColumnElement[bool] = Alert.account_id.in_(sa.select(Account.id).where(Account.owner.in_(book)))
    if others:
        in_book = sa.and_(in_book, Alert.recipient.not_in(others))
    held_rows = session.execute(
        sa.select(Alert.id, Alert.dedupe_key, Alert.payload)
        .where(
            Alert.status == AlertStatus.HELD,
            sa.or_(Alert.recipient == email, Alert.recipient_user == name, in_book),
        )
        .order_by(Alert.id)
    ).all()
    groups: dict[str, AccountAlert] = {}
    for r in held_rows:
        groups.setdefault(alert_group(r.dedupe_key), AccountAlert.from_dict(r.payload))
    return tuple(groups.values()), [r.id for r in held_rows]
