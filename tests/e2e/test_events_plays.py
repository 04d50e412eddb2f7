"""Events and plays in the scoring run, on a real database (SQLite and PostgreSQL): what fires,
what it stores, play runs and tasks, idempotent re-runs, cooldowns, backfills, config changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import (
    Account,
    Contact,
    ContactRole,
    Event,
    LatestScore,
    PlayRun,
    PlayRunStatus,
    ScoringConfigVersion,
    Task,
    TaskStatus,
)
from app.pipeline.run import ScoringRunSummary, run_scoring
from app.services.scoring_config.active import ensure_default_config
from scoring.model import default_config_dict
from tests import factories as f

pytestmark = [pytest.mark.e2e, pytest.mark.db]

D = dt.date(2026, 6, 1)


def days(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def license_only_config() -> dict[str, Any]:
    """The default config (rules included, each firing on the first scored day too) scoring license
    utilization alone: score = 100 x utilization."""
    config = f.firing_on_first_day()
    config["measures"] = [
        {"name": "license_utilization_ratio", "label": "", "group": "license",
         "direction": "higher_is_better", "thresholds": [0.0, 1.0]},
    ]  # fmt: skip
    config["weights"] = {stage: {"license_utilization_ratio": 1} for stage in config["weights"]}
    return config


# Each helper commits its own work; reads in between autobegin a transaction that the next commit ends.


def activate(session: Session, config: dict[str, Any]) -> int:
    ensure_default_config(session)
    session.execute(sa.update(ScoringConfigVersion).values(active=False))
    version = (session.scalar(sa.select(sa.func.max(ScoringConfigVersion.version))) or 0) + 1
    session.add(ScoringConfigVersion(version=version, config=config, author="test", active=True))
    session.commit()
    return version


def score(session: Session, day: dt.date) -> ScoringRunSummary:
    summary = run_scoring(session, as_of=day)
    session.commit()
    return summary


def utilization(session: Session, account: Account, day: dt.date, active: int) -> None:
    f.add_license(session, account, day, purchased=10, assigned=10, active=active)
    session.commit()


def events(session: Session, rule_id: str | None = None) -> list[Event]:
    query = sa.select(Event).order_by(Event.day, Event.id)
    if rule_id:
        query = query.where(Event.rule_id == rule_id)
    return list(session.scalars(query))


def runs(session: Session, play_id: str) -> list[PlayRun]:
    return list(session.scalars(sa.select(PlayRun).where(PlayRun.play_id == play_id).order_by(PlayRun.id)))


@pytest.fixture
def poor_account(db_session: Session) -> Account:
    activate(db_session, license_only_config())
    account = f.make_account(db_session, owner="ana@example.com")
    db_session.commit()
    return account


def test_moving_into_poor_fires_once_and_starts_the_escalation_play(db_session: Session, poor_account: Account) -> None:
    utilization(db_session, poor_account, days(0), 5)  # 50: average
    first = score(db_session, days(0))
    assert "any_into_poor" not in first.events_by_rule

    utilization(db_session, poor_account, days(1), 3)  # 30: poor
    summary = score(db_session, days(1))
    assert summary.events_by_rule["any_into_poor"] == 1
    assert summary.play_runs_by_play["poor-health-escalation"] == 1
    (event,) = events(db_session, "any_into_poor")
    assert (event.account_id, event.day, event.kind.value, event.severity.value) == (
        poor_account.id, days(1), "risk", "high",
    )  # fmt: skip
    assert event.stage.value == "established"
    assert event.trigger_values == {"band": "poor", "score": 30.0}
    assert event.score == pytest.approx(30.0)

    (run,) = runs(db_session, "poor-health-escalation")
    assert (run.status, run.started_on, run.trigger_rule_id, run.watchlist) == (
        PlayRunStatus.OPEN, days(1), "any_into_poor", True,
    )  # fmt: skip
    assert run.band is not None and run.band.value == "poor"
    tasks = list(db_session.scalars(sa.select(Task).where(Task.play_run_id == run.id).order_by(Task.position)))
    # No user is ana's manager and no default assignee is set: the escalation falls back to the CSM.
    assert [(t.type.value, t.owner_role.value, t.assignee, t.due_on, t.status) for t in tasks] == [
        ("escalation", "manager", "ana@example.com", days(2), TaskStatus.OPEN),
        ("meeting", "csm", "ana@example.com", days(8), TaskStatus.OPEN),
    ]

    # Re-running the day, and the next days while it stays poor, create nothing new.
    for day in (days(1), days(1), days(2), days(3)):
        again = score(db_session, day)
        assert "any_into_poor" not in again.events_by_rule
        assert again.play_runs_by_play.get("poor-health-escalation") is None
    assert len(events(db_session, "any_into_poor")) == 1
    assert len(runs(db_session, "poor-health-escalation")) == 1


def test_fires_again_after_clearing_but_plays_keep_one_open_run_and_the_cooldown(
    db_session: Session, poor_account: Account
) -> None:
    utilization(db_session, poor_account, days(0), 3)
    score(db_session, days(0))
    assert len(runs(db_session, "poor-health-escalation")) == 1

    utilization(db_session, poor_account, days(1), 5)  # cleared
    score(db_session, days(1))
    utilization(db_session, poor_account, days(2), 3)  # poor again: a new occurrence
    again = score(db_session, days(2))
    assert again.events_by_rule["any_into_poor"] == 1
    assert "poor-health-escalation" not in again.play_runs_by_play  # its run is still open

    db_session.execute(sa.update(Task).values(status=TaskStatus.DONE))  # the CSM closes the run
    db_session.execute(sa.update(PlayRun).values(status=PlayRunStatus.COMPLETED))
    db_session.commit()
    utilization(db_session, poor_account, days(3), 5)
    score(db_session, days(3))
    utilization(db_session, poor_account, days(4), 3)
    within_cooldown = score(db_session, days(4))
    assert within_cooldown.events_by_rule["any_into_poor"] == 1
    assert "poor-health-escalation" not in within_cooldown.play_runs_by_play  # 30-day cooldown from day 0

    utilization(db_session, poor_account, days(30), 5)
    score(db_session, days(30))
    utilization(db_session, poor_account, days(31), 3)
    after = score(db_session, days(31))
    assert after.play_runs_by_play["poor-health-escalation"] == 1
    assert len(events(db_session, "any_into_poor")) == 4
    assert [r.started_on for r in runs(db_session, "poor-health-escalation")] == [days(0), days(31)]


def test_scoring_an_older_day_writes_history_only(db_session: Session, poor_account: Account) -> None:
    utilization(db_session, poor_account, days(0), 3)
    score(db_session, days(5))
    backfill = score(db_session, days(0))
    assert backfill.accounts_backfilled == 1
    assert backfill.events == 0 and backfill.play_runs == 0
    latest = db_session.get(LatestScore, poor_account.id)
    assert latest is not None and latest.day == days(5)


def test_rule_state_survives_a_config_change_that_reorders_rules(db_session: Session, poor_account: Account) -> None:
    utilization(db_session, poor_account, days(0), 3)
    assert score(db_session, days(0)).events_by_rule["any_into_poor"] == 1
    config = license_only_config()
    config["rules"] = list(reversed(config["rules"]))
    activate(db_session, config)
    summary = score(db_session, days(1))
    assert "any_into_poor" not in summary.events_by_rule
    latest = db_session.get(LatestScore, poor_account.id)
    assert latest is not None and latest.config_version == summary.config_version


def test_signal_contact_usage_and_overdue_inputs_come_from_the_raw_tables(db_session: Session) -> None:
    as_of = days(60)
    activate(db_session, f.firing_on_first_day())
    # Established, renewing in 60 days: exports data, loses its champion, active users fall by half.
    renewing = f.make_account(db_session, contract_start=dt.date(2025, 1, 1), renewal_date=days(120))
    f.add_usage(db_session, renewing, days(1), days(30), active_users=10, logins=20)
    f.add_usage(db_session, renewing, days(31), days(60), active_users=5, logins=10)
    f.add_signal(db_session, renewing, days(58), "data_export")
    f.add_signal(db_session, renewing, days(40), "business_review")
    db_session.add(
        Contact(account_id=renewing.id, external_id="c1", role=ContactRole.CHAMPION,
                added_on=dt.date(2025, 1, 1), removed_on=days(50))
    )  # fmt: skip
    # Onboarding for 20 days with no activity at all.
    idle = f.make_account(db_session, contract_start=days(40), renewal_date=days(400))
    db_session.commit()
    summary = score(db_session, as_of)
    fired = {(e.account_id, e.rule_id): e for e in events(db_session)}

    export = fired[(renewing.id, "any_data_export")]
    assert export.stage.value == "pre_renewal"
    assert export.trigger_values == {"count": 1.0, "days": 1.0, "signal": "data_export", "window_days": 7,
                                     "absent": False}  # fmt: skip
    left = fired[(renewing.id, "pre_champion_left")]
    assert left.trigger_values["count"] == 1.0
    down = fired[(renewing.id, "any_active_users_down")]
    assert down.trigger_values["current"] == 150.0 and down.trigger_values["previous"] == 300.0
    assert down.trigger_values["change_pct"] == -50.0
    assert (renewing.id, "pre_engagement_falling") in fired
    assert (renewing.id, "pre_low_review_engagement") not in fired  # a review 20 days ago

    assert (idle.id, "onb_no_activity") in fired
    assert fired[(idle.id, "onb_no_activity")].trigger_values["days_since_start"] == 20.0
    assert summary.play_runs_by_play["onboarding-not-started"] == 1
    assert summary.play_runs_by_play["active-users-decline"] == 1
    (run,) = runs(db_session, "onboarding-not-started")
    assert run.account_id == idle.id and run.trigger_rule_id == "onb_no_activity"

    # The same day again: nothing new anywhere.
    again = score(db_session, as_of)
    assert again.events == 0 and again.play_runs == 0 and again.tasks == 0


def test_an_event_is_never_stored_twice_even_if_the_rule_state_was_lost(
    db_session: Session, poor_account: Account
) -> None:
    utilization(db_session, poor_account, days(0), 3)
    assert score(db_session, days(0)).events_by_rule["any_into_poor"] == 1
    db_session.execute(sa.update(LatestScore).values(rule_state=0))
    db_session.commit()
    again = score(db_session, days(0))
    assert "any_into_poor" not in again.events_by_rule
    assert len(events(db_session, "any_into_poor")) == 1


def test_change_rules_on_other_windows_get_their_own_sums(db_session: Session) -> None:
    config = default_config_dict()
    config["rules"] = [
        {"id": "logins_down_7", "name": "Logins down in a week", "kind": "risk", "severity": "low",
         "type": "change", "value": "logins", "window_days": 7, "change_pct": -40, "fire_on_first_day": True},
        {"id": "kf_up_45", "name": "Key features up over 45 days", "kind": "milestone", "severity": "low",
         "type": "change", "value": "key_feature_uses", "window_days": 45, "change_pct": 50,
         "fire_on_first_day": True},
    ]  # fmt: skip
    activate(db_session, config)
    account = f.make_account(db_session)
    as_of = days(100)
    f.add_usage(db_session, account, days(11), days(55), logins=10, key_feature_uses=1)  # 45 days before
    f.add_usage(db_session, account, days(56), days(93), logins=10, key_feature_uses=2)
    f.add_usage(db_session, account, days(94), days(100), logins=5, key_feature_uses=2)  # last 7 days
    db_session.commit()
    score(db_session, as_of)
    fired = {e.rule_id: e.trigger_values for e in events(db_session)}
    assert fired["logins_down_7"]["current"] == 35.0 and fired["logins_down_7"]["previous"] == 70.0
    assert fired["kf_up_45"]["current"] == 90.0 and fired["kf_up_45"]["previous"] == 45.0


# --- day one (issue 17): the first scored day records, it does not fire --------------------------


def test_the_first_scored_day_records_every_rule_without_firing(db_session: Session) -> None:
    """The shipped rules as they are: an account already poor when first scored gets no event,
    play or task that day, its state is stored, and it fires once it clears and falls again."""
    config = license_only_config()
    for rule in config["rules"]:
        rule.pop("fire_on_first_day", None)
    activate(db_session, config)
    account = f.make_account(db_session, owner="ana@example.com")
    db_session.commit()
    utilization(db_session, account, days(0), 3)  # 30: poor from the start
    first = score(db_session, days(0))
    assert (first.events, first.play_runs, first.tasks) == (0, 0, 0)
    latest = db_session.get(LatestScore, account.id)
    assert latest is not None and latest.rule_state != 0  # the conditions that hold are recorded
    assert score(db_session, days(0)).events == 0  # re-running the first day is still quiet
    assert score(db_session, days(1)).events == 0  # still poor: no change, no event
    utilization(db_session, account, days(2), 5)  # 50: average, the poor condition clears
    score(db_session, days(2))
    utilization(db_session, account, days(3), 3)
    again = score(db_session, days(3))
    assert again.events_by_rule["any_into_poor"] == 1
    assert again.play_runs_by_play["poor-health-escalation"] == 1


def test_a_rule_that_opts_in_fires_on_the_first_day(db_session: Session) -> None:
    config = license_only_config()
    for rule in config["rules"]:
        rule["fire_on_first_day"] = rule["id"] == "any_into_poor"  # "already poor at install"
    activate(db_session, config)
    account = f.make_account(db_session, owner="ana@example.com", contract_start=days(-400))
    db_session.commit()
    utilization(db_session, account, days(0), 3)
    first = score(db_session, days(0))
    assert first.events_by_rule == {"any_into_poor": 1}
    assert first.play_runs_by_play == {"poor-health-escalation": 1}


def test_a_band_play_starts_when_the_account_enters_its_band_not_on_day_one_or_two(db_session: Session) -> None:
    """``onboarding-good-health-training`` starts when an onboarding account becomes good: not on
    the day it is first scored already good, nor the day after while it stays good (its state was
    recorded, not acted on); it starts the day the account enters the band."""
    activate(db_session, license_only_config())
    account = f.make_account(db_session, owner="ana@example.com", contract_start=days(-10), renewal_date=days(400))
    db_session.commit()
    utilization(db_session, account, days(0), 9)  # 90: good, onboarding
    assert "onboarding-good-health-training" not in score(db_session, days(0)).play_runs_by_play
    assert "onboarding-good-health-training" not in score(db_session, days(1)).play_runs_by_play
    utilization(db_session, account, days(2), 5)  # 50: average
    assert "onboarding-good-health-training" not in score(db_session, days(2)).play_runs_by_play
    utilization(db_session, account, days(3), 9)  # good again: it entered the band
    assert score(db_session, days(3)).play_runs_by_play["onboarding-good-health-training"] == 1


def test_a_backfilled_day_dates_its_tasks_from_the_runs_clock(db_session: Session, poor_account: Account) -> None:
    """Issue 17: `flask score run --days 31` started plays a month back whose tasks were due weeks
    before the run: 73% of the demo's open tasks were overdue the moment they were created."""
    utilization(db_session, poor_account, days(0), 5)
    run_scoring(db_session, as_of=days(0), today=days(30))
    utilization(db_session, poor_account, days(1), 3)
    summary = run_scoring(db_session, as_of=days(1), today=days(30))
    db_session.commit()
    assert summary.play_runs_by_play["poor-health-escalation"] == 1
    (run,) = runs(db_session, "poor-health-escalation")
    assert run.started_on == days(1)  # the play belongs to the day its event happened
    due = sorted(t.due_on for t in db_session.scalars(sa.select(Task).where(Task.play_run_id == run.id)))
    assert due == [days(31), days(37)]  # 1 and 7 days after the day the run ran, none overdue
    assert summary.alerts.queued == 0 and summary.alerts.held == 0 and summary.alerts.backfilled == 2
