"""The alert outbox end to end, on SQLite and PostgreSQL, against a real SMTP server and a real
HTTP server standing in for Slack (both on 127.0.0.1, started by the tests).

Queued in the scoring run's transaction; routed, collapsed, budgeted and cooled down; dispatched
with retries, Retry-After, dead rows and leases; escalated and acknowledged; digested.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import AccountAlert
from alerts.base import Digest as AlertDigest
from alerts.email import SmtpSettings
from alerts.render import email_content
from alerts.routing import default_routing_data
from app.auth import create_user
from app.models import Account, Alert, AlertCooldown, AlertRoutingVersion, AlertStatus, Event, LatestScore, User
from app.models.plays import PlayDefinition, PlayRun, Task
from app.pipeline.run import ScoringRunSummary, run_scoring
from app.services.alerts.digest import queue_digests
from app.services.alerts.dispatch import Dispatcher, acknowledge, claim
from app.services.alerts.settings import AlertSettings
from tests import factories as f
from tests.e2e.test_events_plays import activate, license_only_config
from tests.support.servers import ScriptedHTTPServer, SmtpTestServer, hang, rate_limited, status

pytestmark = [pytest.mark.e2e, pytest.mark.db]

D = dt.date(2026, 6, 1)


def days(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


class Clock:
    """An injected clock the tests move by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def slack() -> Iterator[ScriptedHTTPServer]:
    with ScriptedHTTPServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def settings(slack: ScriptedHTTPServer, smtp: SmtpTestServer) -> AlertSettings:
    return AlertSettings(
        public_base_url="https://health.example.com",
        secret_key="test-secret",
        smtp=SmtpSettings(host=smtp.host, port=smtp.port, security="none", sender="alerts@example.com"),
        webhook_hosts=(),
        allow_insecure_webhooks=True,
        lease_seconds=60,
        http_timeout=1.0,
        env={"SLACK_WEBHOOK_URL": slack.url_for("/services/T0/B0/secret")},
    )


def set_routing(session: Session, **changes: Any) -> None:
    document = default_routing_data()
    document.update(changes)
    version = (session.scalar(sa.select(sa.func.max(AlertRoutingVersion.version))) or 0) + 1
    session.add(AlertRoutingVersion(version=version, document=document, author="test"))
    session.commit()


@pytest.fixture
def team(db_session: Session) -> dict[str, Any]:
    """A manager, her CSM, and the license-only scoring config (score = 100 x utilization)."""
    create_user(db_session, "mia", email="mia@example.com")
    create_user(db_session, "ana", email="ana@example.com", manager="mia")
    db_session.commit()
    activate(db_session, license_only_config())
    return {"csm": "ana@example.com", "manager": "mia@example.com"}


def account(session: Session, name: str = "Acme", arr: float = 50_000, owner: str = "ana") -> Account:
    acct = f.make_account(session, name=name, owner=owner, arr=arr)
    session.commit()
    return acct


def utilization(session: Session, acct: Account, day: dt.date, active: int) -> None:
    f.add_license(session, acct, day, purchased=10, assigned=10, active=active)
    session.commit()


def score(session: Session, day: dt.date, settings: AlertSettings) -> ScoringRunSummary:
    summary = run_scoring(session, as_of=day, alert_settings=settings)
    session.commit()
    return summary


def into_poor(session: Session, accts: list[Account], settings: AlertSettings, start: int = 0) -> ScoringRunSummary:
    """Average on day ``start``, poor the next day: fires any_into_poor and the escalation play."""
    for a in accts:
        utilization(session, a, days(start), 5)
    score(session, days(start), settings)
    session.execute(sa.delete(Alert))  # the first evaluation's own alerts are not what these tests watch
    session.commit()
    for a in accts:
        utilization(session, a, days(start + 1), 3)
    return score(session, days(start + 1), settings)


def alerts(session: Session, **where: Any) -> list[Alert]:
    session.expire_all()
    query = sa.select(Alert).order_by(Alert.id)
    for name, value in where.items():
        query = query.where(getattr(Alert, name) == value)
    return list(session.scalars(query))


_open: list[Dispatcher] = []


@pytest.fixture(autouse=True)
def _close_dispatchers() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def dispatcher(session: Session, settings: AlertSettings, clock: Clock | None = None, worker: str = "w1") -> Dispatcher:
    factory = sessionmaker(bind=session.get_bind(), expire_on_commit=False)
    made = Dispatcher(
        factory, settings, worker=worker, clock=clock or Clock(dt.datetime.now(dt.UTC)), rng=random.Random(1)
    )
    _open.append(made)
    return made


# --- queueing -----------------------------------------------------------------------------------


def test_a_move_into_poor_queues_one_message_per_recipient_in_the_runs_transaction(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    acct = account(db_session)
    summary = into_poor(db_session, [acct], settings)
    assert summary.alerts.queued == 3
    rows = alerts(db_session)
    assert sorted(r.recipient for r in rows) == ["ana@example.com", "channel:team", "mia@example.com"]
    events = list(db_session.scalars(sa.select(Event).where(Event.day == days(1))))
    for row in rows:
        assert row.status is AlertStatus.PENDING
        assert row.account_id == acct.id and row.requires_ack  # poor band: asks for an acknowledgement
        assert sorted(row.event_ids) == sorted(e.id for e in events)  # every event of the run, collapsed
        assert row.payload["account_name"] == "Acme"
        assert AccountAlert.from_dict(row.payload).to_dict() == row.payload  # the message type, exactly
        assert "urgent-risk" in row.route_ids  # any_into_poor is a high-severity risk
        assert {e["rule_id"] for e in row.payload["events"]} >= {"any_into_poor"}
        assert [p["play_id"] for p in row.payload["plays"]] == ["poor-health-escalation"]
        assert row.payload["plays"][0]["tasks"]
    assert {r.channel.value for r in rows} == {"email", "slack"}


def test_a_message_says_what_the_runs_stored_rows_say(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    # The run composes messages from what it holds in memory: they must match what it stored.
    acct = account(db_session, name='Acme "Ünïcode" \\ Ltd')
    into_poor(db_session, [acct], settings)
    (row, *_) = alerts(db_session)
    message = row.payload
    latest = db_session.get(LatestScore, acct.id)
    assert latest is not None
    assert (message["account_name"], message["owner"], message["arr"]) == (acct.name, acct.owner, acct.arr)
    assert (message["stage"], message["band"]) == (latest.stage.value, latest.band.value if latest.band else None)
    assert message["score"] == round(latest.score, 1)
    assert message["change_7d"] == (None if latest.score_change_7d is None else round(latest.score_change_7d, 1))
    events = db_session.scalars(sa.select(Event).where(Event.id.in_(row.event_ids)).order_by(Event.id)).all()
    assert message["events"] == [
        {
            "rule_id": e.rule_id, "rule_name": e.rule_name, "kind": e.kind.value, "severity": e.severity.value,
            "day": e.day.isoformat(), "detail": e.trigger_values, "account_id": None, "account_name": None,
        }
        for e in events
    ]  # fmt: skip
    (run,) = db_session.scalars(sa.select(PlayRun).where(PlayRun.id.in_(row.play_run_ids))).all()
    tasks = db_session.scalars(sa.select(Task).where(Task.play_run_id == run.id).order_by(Task.position)).all()
    assert message["plays"] == [
        {
            "play_id": run.play_id,
            "name": db_session.get(PlayDefinition, run.play_id).definition["name"],  # type: ignore[union-attr]
            "tasks": [
                {
                    "title": t.title,
                    "type": t.type.value,
                    "due_on": t.due_on.isoformat(),
                    "owner": t.assignee or t.owner_role.value,
                }
                for t in tasks
            ],
        }
    ]
    assert row.dedupe_key.startswith(f"acct:{acct.id}:e{min(row.event_ids)}|")


def test_a_rolled_back_run_leaves_neither_events_nor_alerts(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    acct = account(db_session)
    utilization(db_session, acct, days(0), 5)
    score(db_session, days(0), settings)
    db_session.execute(sa.delete(Alert))
    db_session.commit()
    utilization(db_session, acct, days(1), 3)
    summary = run_scoring(db_session, as_of=days(1), alert_settings=settings)
    assert summary.alerts.queued == 3
    db_session.rollback()  # a crash before the commit
    assert alerts(db_session) == []
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.day == days(1))) == 0


def test_rerunning_a_day_queues_nothing_twice(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    again = score(db_session, days(1), settings)
    assert again.alerts.queued == 0
    assert len(alerts(db_session)) == 3


def test_the_daily_budget_holds_the_rest_for_the_digest(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, smtp: SmtpTestServer
) -> None:
    set_routing(db_session, budget_per_day=2)
    accts = [account(db_session, name=f"Acct {i}", arr=1000 * (i + 1)) for i in range(4)]
    summary = into_poor(db_session, accts, settings)
    to_ana = alerts(db_session, recipient="ana@example.com")
    assert len(to_ana) == 4
    pending = [r for r in to_ana if r.status is AlertStatus.PENDING]
    held = [r for r in to_ana if r.status is AlertStatus.HELD]
    assert len(pending) == 2 and len(held) == 2
    # The most valuable accounts go out at once.
    assert sorted(r.payload["account_name"] for r in pending) == ["Acct 2", "Acct 3"]
    assert summary.alerts.held == 6  # ana, mia and the team channel each over by two

    now = dt.datetime.now(dt.UTC)
    # mia manages ana, and CSM digests are on by default: ana's held alerts reach ana (issue 17).
    assert queue_digests(db_session, now=now, settings=settings, force=True) == 2
    db_session.commit()
    digests = {d.recipient: d for d in alerts(db_session, kind="digest")}
    assert set(digests) == {"mia@example.com", "ana@example.com"}
    digest = digests["mia@example.com"]
    # The held alerts to her and to the channel about her team's accounts, each listed once; ana's own
    # copies wait for ana's digest.
    for d in digests.values():
        assert sorted(h["account_name"] for h in d.payload["held"]) == ["Acct 0", "Acct 1"]
        assert d.payload["held_total"] == 2
    assert {a["account_name"] for a in digest.payload["at_risk"]} == {f"Acct {i}" for i in range(4)}
    assert digest.payload["changes_total"] >= 4
    # A second pass the same day queues nothing more.
    assert queue_digests(db_session, now=now, settings=settings, force=True) == 0
    db_session.commit()
    for row in alerts(db_session, kind="immediate"):
        if row.payload["account_name"] in {"Acct 0", "Acct 1"}:  # every copy: nothing stays held
            expected = digests["ana@example.com"] if row.recipient == "ana@example.com" else digest
            assert row.status is AlertStatus.DIGESTED and row.digest_id == expected.id

    dispatcher(db_session, settings).run_once()
    mail = [m for m in smtp.received if m.rcpt_tos == ["mia@example.com"] and "digest" in m.message["Subject"].lower()]
    assert len(mail) == 1
    text = mail[0].message.get_body(preferencelist=("plain",)).get_content()
    assert "Acct 3" in text and "Acct 0" in text


def test_an_event_within_the_cooldown_is_left_to_the_digest(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    # Back to average, then poor again two days later: the rule fires again within 72 hours.
    utilization(db_session, acct, days(2), 6)
    score(db_session, days(2), settings)
    utilization(db_session, acct, days(3), 3)
    summary = score(db_session, days(3), settings)
    assert summary.events_by_rule.get("any_into_poor") == 1
    assert summary.alerts.cooled_down >= 1
    fresh = [r for r in alerts(db_session) if r.day == days(3)]
    assert all("any_into_poor" not in {e["rule_id"] for e in r.payload["events"]} for r in fresh)


def test_an_event_after_the_cooldown_alerts_again_and_restarts_it(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    set_routing(db_session, cooldown_hours=0)
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    key = (acct.id, "any_into_poor")
    first = db_session.get(AlertCooldown, key)
    assert first is not None
    started = first.alerted_at
    utilization(db_session, acct, days(2), 6)
    score(db_session, days(2), settings)
    utilization(db_session, acct, days(3), 3)
    summary = score(db_session, days(3), settings)
    assert summary.events_by_rule.get("any_into_poor") == 1 and summary.alerts.cooled_down == 0
    fresh = [r for r in alerts(db_session) if r.day == days(3)]
    assert fresh and all("any_into_poor" in {e["rule_id"] for e in r.payload["events"]} for r in fresh)
    db_session.expire_all()
    restarted = db_session.get(AlertCooldown, key)
    assert restarted is not None and restarted.alerted_at > started


# --- dispatching --------------------------------------------------------------------------------


def test_dispatch_delivers_to_slack_and_email_and_marks_sent(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, slack: ScriptedHTTPServer, smtp: SmtpTestServer
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    counts = dispatcher(db_session, settings).run_once()
    assert (counts.claimed, counts.sent, counts.dead) == (3, 3, 0)
    assert all(r.status is AlertStatus.SENT and r.sent_at is not None for r in alerts(db_session))

    (request,) = slack.requests
    assert request.path == "/services/T0/B0/secret"
    body = request.json()
    assert "Acme" in body["text"]
    rendered = str(body["blocks"])
    assert "Poor" in rendered or "poor" in rendered
    assert "https://health.example.com/accounts/" in rendered  # the account page, not the JSON API
    assert "/alerts/ack?token=" in rendered  # a poor-health alert carries its acknowledge link

    assert sorted(m.rcpt_tos[0] for m in smtp.received) == ["ana@example.com", "mia@example.com"]
    message = smtp.received[0].message
    assert "Acme" in message["Subject"]
    assert message.get_body(preferencelist=("html",)) is not None
    assert "Acme" in message.get_body(preferencelist=("plain",)).get_content()

    # Nothing left to send.
    assert dispatcher(db_session, settings).run_once().claimed == 0


def test_429_honours_retry_after_and_500_backs_off_until_delivered(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, slack: ScriptedHTTPServer
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    clock = Clock(dt.datetime.now(dt.UTC))
    worker = dispatcher(db_session, settings, clock)
    slack.script(rate_limited(retry_after=120), status(500))
    counts = worker.run_once()
    assert counts.retried == 1 and counts.sent == 2  # the two emails went
    (row,) = alerts(db_session, recipient="channel:team")
    assert row.status is AlertStatus.PENDING and row.attempts == 1
    assert row.next_attempt_at.replace(tzinfo=dt.UTC) >= clock.now + dt.timedelta(seconds=120)
    assert "429" in (row.last_error or "")
    assert "secret" not in (row.last_error or "")  # the webhook path is a secret

    clock.advance(seconds=119)
    assert worker.run_once().claimed == 0  # not before Retry-After
    clock.advance(seconds=2)
    assert worker.run_once().retried == 1  # the 500
    clock.advance(hours=2)
    assert worker.run_once().sent == 1
    (row,) = alerts(db_session, recipient="channel:team")
    assert row.status is AlertStatus.SENT and row.attempts == 3
    assert len(slack.requests) == 3


def test_a_server_that_is_down_gets_the_alert_once_it_is_back(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, slack: ScriptedHTTPServer
) -> None:
    set_routing(db_session, escalate_after_hours=100)
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    clock = Clock(dt.datetime.now(dt.UTC))
    worker = dispatcher(db_session, settings, clock)
    slack.stop()
    assert worker.run_once().retried == 1
    clock.advance(hours=2)
    assert worker.run_once().retried == 1
    slack.start()
    clock.advance(hours=2)
    assert worker.run_once().sent == 1
    assert len(slack.requests) == 1


def test_after_max_attempts_an_alert_is_dead_listed_and_can_be_retried(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, slack: ScriptedHTTPServer, client: Any
) -> None:
    set_routing(db_session, max_attempts=2)
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    clock = Clock(dt.datetime.now(dt.UTC))
    worker = dispatcher(db_session, settings, clock)
    slack.script(status(503), status(503))
    worker.run_once()
    clock.advance(hours=2)
    assert worker.run_once().dead == 1
    (row,) = alerts(db_session, recipient="channel:team")
    assert row.status is AlertStatus.DEAD and row.attempts == 2

    listed = client.get("/api/v1/alerts?status=dead&scope=all").get_json()
    assert [a["id"] for a in listed["items"]] == [row.id]
    assert "503" in listed["items"][0]["last_error"]
    retried = client.post(f"/api/v1/alerts/{row.id}/retry")
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["status"] == "pending" and retried.get_json()["attempts"] == 0
    assert client.post(f"/api/v1/alerts/{row.id}/retry").status_code == 409  # not dead any more
    assert worker.run_once().sent == 1


def test_a_400_is_not_retried(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, slack: ScriptedHTTPServer
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    slack.script(status(400, b"invalid_payload"))
    assert dispatcher(db_session, settings).run_once().dead == 1


def test_a_claimed_row_returns_after_its_lease(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, slack: ScriptedHTTPServer
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    now = dt.datetime.now(dt.UTC)
    # Worker A claims everything and dies before sending.
    claimed = claim(db_session, worker="A", now=now, lease=dt.timedelta(seconds=60), limit=100)
    db_session.commit()
    assert len(claimed) == 3
    clock = Clock(now + dt.timedelta(seconds=30))
    worker_b = dispatcher(db_session, settings, clock, worker="B")
    assert worker_b.run_once().claimed == 0  # still leased to A
    clock.advance(seconds=31)
    counts = worker_b.run_once()
    assert counts.sent == 3
    assert all(r.attempts == 2 for r in alerts(db_session))  # A's claim counted as an attempt


def test_a_hanging_server_times_out_and_is_retried(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, slack: ScriptedHTTPServer
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    slack.script(hang(3))
    counts = dispatcher(db_session, settings).run_once()
    assert counts.retried == 1
    (row,) = alerts(db_session, recipient="channel:team")
    assert row.status is AlertStatus.PENDING


# --- acknowledge and escalate --------------------------------------------------------------------


def test_an_unacknowledged_poor_alert_escalates_to_the_manager_once(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, smtp: SmtpTestServer
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    created = alerts(db_session)[0].created_at.replace(tzinfo=dt.UTC)
    clock = Clock(created + dt.timedelta(hours=3, minutes=59))
    worker = dispatcher(db_session, settings, clock)
    assert worker.run_once().escalated == 0
    clock.advance(minutes=2)  # past the default 4 hours
    counts = worker.run_once()
    assert counts.escalated == 1
    (escalation,) = alerts(db_session, kind="escalation")
    assert escalation.recipient == "mia@example.com" and escalation.status is AlertStatus.SENT
    assert escalation.payload["unacknowledged_hours"] == pytest.approx(4.0, abs=0.1)
    clock.advance(hours=10)
    assert worker.run_once().escalated == 0  # once
    subjects = [m.message["Subject"] for m in smtp.received if m.rcpt_tos == ["mia@example.com"]]
    assert any("not acknowledged" in s.lower() or "escalat" in s.lower() for s in subjects)


def test_an_acknowledged_alert_does_not_escalate(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    acct = account(db_session)
    into_poor(db_session, [acct], settings)
    first = alerts(db_session, recipient="ana@example.com")[0]
    acknowledge(db_session, first.id, by="ana", now=dt.datetime.now(dt.UTC))
    db_session.commit()
    assert all(r.acknowledged_by == "ana" for r in alerts(db_session))  # its copies too
    clock = Clock(dt.datetime.now(dt.UTC) + dt.timedelta(hours=5))
    assert dispatcher(db_session, settings, clock).run_once().escalated == 0


def test_the_digest_waits_for_its_local_time(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    digest = {"at": "09:00", "timezone": "America/New_York", "managers": True, "csms": True, "max_accounts": 25}
    set_routing(db_session, digest=digest)
    account(db_session)
    before = dt.datetime(2026, 1, 15, 13, 59, tzinfo=dt.UTC)  # 08:59 in New York (EST)
    assert queue_digests(db_session, now=before, settings=settings) == 0
    at = dt.datetime(2026, 1, 15, 14, 0, tzinfo=dt.UTC)  # 09:00 in New York
    assert queue_digests(db_session, now=at, settings=settings) == 2  # mia (manager) and ana (a CSM)
    db_session.commit()
    assert sorted(a.recipient for a in alerts(db_session, kind="digest")) == ["ana@example.com", "mia@example.com"]
    assert {a.day for a in alerts(db_session, kind="digest")} == {dt.date(2026, 1, 15)}
    later = dt.datetime(2026, 1, 16, 4, 0, tzinfo=dt.UTC)  # 23:00 the same local day: nothing more
    assert queue_digests(db_session, now=later, settings=settings) == 0
    next_day = dt.datetime(2026, 1, 16, 14, 30, tzinfo=dt.UTC)
    assert queue_digests(db_session, now=next_day, settings=settings) == 2


# --- day one (issue 17) ---------------------------------------------------------------------------


def test_an_escalation_task_goes_to_the_csms_manager_or_else_the_default_assignee(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    """The demo had 127 escalation tasks with no assignee: a manager task was never assigned."""
    managed = account(db_session, name="Managed", owner="ana")
    orphan = account(db_session, name="Orphan", owner="zed@example.com")  # no user, so no manager
    set_routing(db_session, default_assignee="cs-ops@example.com")
    into_poor(db_session, [managed, orphan], settings)
    assignees = {
        (t.account_id, t.type.value): t.assignee for t in db_session.scalars(sa.select(Task).order_by(Task.id))
    }
    assert assignees == {
        (managed.id, "escalation"): "mia@example.com",  # ana's manager
        (managed.id, "meeting"): "ana",
        (orphan.id, "escalation"): "cs-ops@example.com",  # the admin-set default
        (orphan.id, "meeting"): "zed@example.com",
    }


def test_a_backfilled_day_queues_no_alert(db_session: Session, team: dict[str, Any], settings: AlertSettings) -> None:
    """`flask score run --days 31` sent 280 alerts at once about events up to a month old."""
    acct = account(db_session)
    utilization(db_session, acct, days(0), 5)
    run_scoring(db_session, as_of=days(0), alert_settings=settings, today=days(20))
    utilization(db_session, acct, days(1), 3)
    summary = run_scoring(db_session, as_of=days(1), alert_settings=settings, today=days(20))
    db_session.commit()
    assert summary.events_by_rule["any_into_poor"] == 1  # recorded, as history
    assert alerts(db_session) == []
    assert (summary.alerts.queued, summary.alerts.held, summary.alerts.backfilled) == (0, 0, 2)


def test_a_digest_lists_at_most_max_accounts_held_alerts_and_links_to_all(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    """The manager's first digest was 700 KB: every held alert in full."""
    digest = {"at": "08:00", "timezone": "UTC", "managers": True, "csms": True, "max_accounts": 2}
    set_routing(db_session, budget_per_day=1, digest=digest)
    accts = [account(db_session, name=f"Acct {i}", arr=1000 * (i + 1)) for i in range(5)]
    into_poor(db_session, accts, settings)
    assert queue_digests(db_session, now=dt.datetime.now(dt.UTC), settings=settings, force=True) == 2
    db_session.commit()
    for row in alerts(db_session, kind="digest"):
        assert len(row.payload["held"]) == 2 and row.payload["held_total"] == 4
        assert row.payload["held_url"] == f"https://health.example.com/api/v1/alerts?digest={row.id}"
        carried = alerts(db_session, digest_id=row.id)
        assert carried and all(a.status is AlertStatus.DIGESTED for a in carried)
    assert alerts(db_session, status=AlertStatus.HELD) == []  # all carried, the rest behind the link


def test_a_csm_named_by_their_address_gets_a_digest(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    """The demo's CSMs are users named by their email address, with no separate email."""
    create_user(db_session, "zoe@example.com", manager="mia")
    db_session.commit()
    account(db_session, owner="zoe@example.com")
    assert queue_digests(db_session, now=dt.datetime.now(dt.UTC), settings=settings, force=True) == 2
    db_session.commit()
    assert sorted(a.recipient for a in alerts(db_session, kind="digest")) == ["mia@example.com", "zoe@example.com"]


def test_a_digest_shows_times_in_the_recipients_time_zone(
    db_session: Session, team: dict[str, Any], settings: AlertSettings
) -> None:
    db_session.execute(sa.update(User).where(User.name == "mia").values(time_zone="Europe/Berlin"))
    db_session.commit()
    account(db_session)
    now = dt.datetime(2026, 1, 15, 8, 30, tzinfo=dt.UTC)
    assert queue_digests(db_session, now=now, settings=settings, force=True) == 2
    db_session.commit()
    by_user = {a.recipient_user: AlertDigest.from_dict(a.payload) for a in alerts(db_session, kind="digest")}
    assert by_user["mia"].time_zone == "Europe/Berlin" and by_user["ana"].time_zone == "UTC"
    assert "until Thu 15 Jan 2026, 09:30 CET." in email_content(by_user["mia"]).text
    assert "until Thu 15 Jan 2026, 08:30 UTC." in email_content(by_user["ana"]).text


def test_digest_force_racing_the_scheduler_ends_cleanly(
    db_session: Session, team: dict[str, Any], settings: AlertSettings, runner: Any
) -> None:
    """`flask alerts digest --force` while the scheduler's digest job is queueing the same digests:
    it used to end in a raw IntegrityError carrying the whole (700 KB) digest as parameters."""
    account(db_session)
    factory = sessionmaker(bind=db_session.get_bind())
    scheduler = factory()
    scheduler.begin()
    assert queue_digests(scheduler, now=dt.datetime.now(dt.UTC), settings=settings, force=True) == 2
    result: dict[str, Any] = {}
    cli = threading.Thread(target=lambda: result.update(out=runner.invoke(args=["alerts", "digest", "--force"])))
    cli.start()
    time.sleep(1.0)  # the command reads before the scheduler commits, then waits on the same keys
    scheduler.commit()
    scheduler.close()
    cli.join(60)
    out = result["out"]
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    assert "IntegrityError" not in out.output and "INSERT" not in out.output and len(out.output) < 500
    assert out.output.strip() in {"Queued 0 digest(s)."} or out.output.startswith("Error: Could not queue")
    assert len(alerts(db_session, kind="digest")) == 2
