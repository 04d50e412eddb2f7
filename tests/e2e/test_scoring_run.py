"""The scoring run against a real database (SQLite and PostgreSQL): measures, idempotence, as-of."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import DomainValidationError
from app.models import (
    AccountStatus,
    FeedbackKind,
    GoalStatus,
    HealthScore,
    JobRun,
    LatestScore,
    Outcome,
    OutcomeKind,
    ScoringConfigVersion,
    TicketPriority,
)
from app.pipeline.measures import compute_measures
from app.pipeline.run import measure_json, run_scoring
from app.services.scoring_config.active import ensure_default_config
from scoring.model import default_config_dict, model_from_dict
from tests import factories as f

pytestmark = [pytest.mark.e2e, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)


def history_rows(session: Session) -> list[HealthScore]:
    return list(session.scalars(sa.select(HealthScore).order_by(HealthScore.account_id, HealthScore.day)))


def latest(session: Session, account_id: int) -> LatestScore | None:
    return session.get(LatestScore, account_id)


def test_measures_from_raw_tables(db_session: Session) -> None:
    with db_session.begin():
        account = f.make_account(db_session, seats_purchased=10, contract_start=dt.date(2025, 1, 1))
        # 30 days at 5 active users, then the 30 days before at 10: a 50 % fall.
        f.add_usage(
            db_session, account, AS_OF - dt.timedelta(days=29), AS_OF, active_users=5, logins=10, key_feature_uses=3
        )
        f.add_usage(
            db_session,
            account,
            AS_OF - dt.timedelta(days=59),
            AS_OF - dt.timedelta(days=30),
            active_users=10,
            logins=20,
            key_feature_uses=1,
        )
        f.add_license(db_session, account, AS_OF - dt.timedelta(days=7), purchased=10, assigned=9, active=6)
        f.add_license(db_session, account, AS_OF + dt.timedelta(days=1), purchased=10, assigned=10, active=10)
        f.add_ticket(db_session, account, f.utc(2026, 6, 1), priority=TicketPriority.URGENT)
        f.add_ticket(db_session, account, f.utc(2026, 6, 2), priority=TicketPriority.HIGH, sla_breached=True)
        f.add_ticket(db_session, account, f.utc(2026, 5, 1), closed=f.utc(2026, 5, 2))
        f.add_ticket(db_session, account, f.utc(2026, 6, 3), closed=f.utc(2026, 7, 5))  # open as of AS_OF
        for score in (10, 9, 7, 3):  # 2 promoters, 1 detractor of 4: NPS 25
            f.add_feedback(db_session, account, AS_OF - dt.timedelta(days=10), FeedbackKind.NPS, score)
        f.add_feedback(db_session, account, AS_OF - dt.timedelta(days=200), FeedbackKind.NPS, 0)  # too old
        f.add_feedback(db_session, account, AS_OF - dt.timedelta(days=5), FeedbackKind.CSAT, 4)
        f.add_feedback(db_session, account, AS_OF - dt.timedelta(days=4), FeedbackKind.CSAT, 5)
        f.add_feedback(db_session, account, AS_OF - dt.timedelta(days=40), FeedbackKind.CSM_SENTIMENT, 2)
        f.add_feedback(db_session, account, AS_OF - dt.timedelta(days=3), FeedbackKind.CSM_SENTIMENT, 4)
        f.add_goal(
            db_session, account, created=dt.date(2026, 1, 1), achieved=dt.date(2026, 3, 1), status=GoalStatus.ACHIEVED
        )
        f.add_goal(db_session, account, created=dt.date(2026, 1, 1), due=dt.date(2026, 5, 1))
        f.add_goal(db_session, account, created=dt.date(2026, 1, 1), due=dt.date(2026, 12, 1))  # not due yet
        measures = compute_measures(db_session, as_of=AS_OF, model=model_from_dict(default_config_dict()))
    raw = {name: values[0] for name, values in measures.raw.items()}
    assert raw["active_user_ratio"] == pytest.approx(0.5)
    assert raw["usage_trend_pct"] == pytest.approx(-50.0)
    assert raw["key_feature_adoption_ratio"] == pytest.approx(0.3)
    assert raw["days_since_last_login"] == 0
    assert raw["license_utilization_ratio"] == pytest.approx(0.6)  # the snapshot after AS_OF is ignored
    assert raw["open_ticket_load"] == pytest.approx(4 + 2 + 1)
    assert raw["sla_breaches_90d"] == 1
    assert raw["nps"] == pytest.approx(25.0)
    assert raw["csat_avg"] == pytest.approx(4.5)
    assert raw["csm_sentiment"] == 4
    assert raw["goals_achieved_ratio"] == pytest.approx(0.5)


def test_rerun_same_day_replaces_rows(db_session: Session) -> None:
    with db_session.begin():
        for _ in range(3):
            account = f.make_account(db_session)
            f.add_usage(db_session, account, AS_OF - dt.timedelta(days=70), AS_OF)
    with db_session.begin():
        first = run_scoring(db_session, as_of=AS_OF)
    with db_session.begin():
        second = run_scoring(db_session, as_of=AS_OF)
    assert first.accounts_scored == second.accounts_scored == 3
    with db_session.begin():
        rows = history_rows(db_session)
        assert len(rows) == 3
        assert db_session.scalar(sa.select(sa.func.count()).select_from(LatestScore)) == 3
        assert {r.score for r in rows} == {latest(db_session, r.account_id).score for r in rows}


def test_churned_accounts_are_not_scored(db_session: Session) -> None:
    with db_session.begin():
        active = f.make_account(db_session)
        churned = f.make_account(db_session, status=AccountStatus.CHURNED)
        for account in (active, churned):
            f.add_usage(db_session, account, AS_OF - dt.timedelta(days=10), AS_OF)
    with db_session.begin():
        summary = run_scoring(db_session, as_of=AS_OF)
    assert summary.accounts_scored == 1
    with db_session.begin():
        assert [r.account_id for r in history_rows(db_session)] == [active.id]
        assert latest(db_session, churned.id) is None


def test_an_account_is_scored_until_its_churn_outcome(db_session: Session) -> None:
    """A back-filled history covers the days before a churn: the churn outcome's day says when
    the account stopped being scored (a churned account without one is never scored)."""
    churn_day = AS_OF - dt.timedelta(days=5)
    with db_session.begin():
        leaver = f.make_account(db_session, status=AccountStatus.CHURNED)
        f.add_usage(db_session, leaver, AS_OF - dt.timedelta(days=30), churn_day)
        db_session.add(
            Outcome(account_id=leaver.id, external_id="o-1", kind=OutcomeKind.CHURNED, day=churn_day, arr_change=-1.0)
        )
    with db_session.begin():
        before = run_scoring(db_session, as_of=churn_day - dt.timedelta(days=1))
        on_the_day = run_scoring(db_session, as_of=churn_day)
    assert (before.accounts_scored, on_the_day.accounts_scored) == (1, 0)


def test_account_with_no_data_has_no_score(db_session: Session) -> None:
    with db_session.begin():
        account = f.make_account(db_session, seats_purchased=0)
    with db_session.begin():
        summary = run_scoring(db_session, as_of=AS_OF)
    assert summary.accounts_without_score == 1
    with db_session.begin():
        row = latest(db_session, account.id)
        assert row is not None
        assert row.score is None and row.band is None and row.completeness == 0
        assert row.measure_values == [None] * 11


def test_as_of_ignores_later_data_and_keeps_newer_latest(db_session: Session) -> None:
    earlier = AS_OF - dt.timedelta(days=7)
    with db_session.begin():
        account = f.make_account(db_session)
        f.add_usage(db_session, account, AS_OF - dt.timedelta(days=90), earlier, active_users=8, logins=10)
        f.add_usage(db_session, account, earlier + dt.timedelta(days=1), AS_OF, active_users=1, logins=1)
    with db_session.begin():
        run_scoring(db_session, as_of=AS_OF)
    with db_session.begin():
        run_scoring(db_session, as_of=earlier)  # back-fill an older day
    with db_session.begin():
        rows = history_rows(db_session)
        assert [r.day for r in rows] == [earlier, AS_OF]
        assert rows[0].score > rows[1].score  # the later low usage did not leak into the earlier day
        newest = latest(db_session, account.id)
        assert newest.day == AS_OF  # the back-fill did not overwrite the newer latest score
        assert newest.score_change_7d is None  # there was no score 7 days earlier when it ran
    with db_session.begin():
        run_scoring(db_session, as_of=AS_OF)  # re-running the day picks up the back-filled one
    with db_session.begin():
        assert latest(db_session, account.id).score_change_7d == pytest.approx(rows[1].score - rows[0].score)


def test_stage_follows_dates(db_session: Session) -> None:
    with db_session.begin():
        onboarding = f.make_account(db_session, contract_start=AS_OF - dt.timedelta(days=89))
        value_reached = f.make_account(db_session, contract_start=AS_OF - dt.timedelta(days=30))
        f.add_signal(db_session, value_reached, AS_OF - dt.timedelta(days=1), "first_value")
        established = f.make_account(db_session, contract_start=AS_OF - dt.timedelta(days=90))
        renewing = f.make_account(
            db_session, contract_start=AS_OF - dt.timedelta(days=10), renewal_date=AS_OF + dt.timedelta(days=90)
        )
    with db_session.begin():
        run_scoring(db_session, as_of=AS_OF)
    with db_session.begin():
        stages = {a.id: latest(db_session, a.id).stage for a in (onboarding, value_reached, established, renewing)}
    assert stages == {
        onboarding.id: "onboarding",
        value_reached.id: "established",
        established.id: "established",
        renewing.id: "pre_renewal",
    }


def test_scoring_cli_records_job_runs(runner, db_session: Session) -> None:  # type: ignore[no-untyped-def]
    with db_session.begin():
        f.make_account(db_session)
    result = runner.invoke(args=["score", "run", "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Scored 1 accounts as of 2026-06-30 with config v1")
    with db_session.begin():
        run = db_session.scalars(sa.select(JobRun)).one()
        assert run.job == "score" and run.status == "succeeded"
        assert run.counts["accounts_scored"] == 1 and run.finished_at is not None


def test_scoring_cli_rejects_bad_date(runner) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(args=["score", "run", "--as-of", "2026-13-01"])
    assert result.exit_code == 2
    assert "is not a date in the form YYYY-MM-DD" in result.output


def test_failed_run_is_recorded_and_rolled_back(runner, db_session: Session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with db_session.begin():
        f.make_account(db_session)

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("warehouse went away")

    monkeypatch.setattr("app.pipeline.run.compute_health", broken)
    result = runner.invoke(args=["score", "run", "--as-of", AS_OF.isoformat()])
    assert result.exit_code != 0
    with db_session.begin():
        run = db_session.scalars(sa.select(JobRun)).one()
        assert run.status == "failed" and "warehouse went away" in run.error
        assert history_rows(db_session) == []


def test_default_config_is_stored_once_as_version_1(db_session: Session) -> None:
    with db_session.begin():
        first = ensure_default_config(db_session)
    with db_session.begin():
        again = ensure_default_config(db_session)
        assert db_session.scalar(sa.select(sa.func.count()).select_from(ScoringConfigVersion)) == 1
    assert first.version == again.version == 1 and again.active and again.author == "system"


def test_invalid_default_config_file_is_refused_with_field_messages(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = default_config_dict()
    broken["weights"]["onboarding"]["nps"] = -1
    monkeypatch.setattr("app.services.scoring_config.active.default_config_dict", lambda: broken)
    with pytest.raises(DomainValidationError) as excinfo, db_session.begin():
        ensure_default_config(db_session)
    assert excinfo.value.errors == {"weights": {"onboarding": {"nps": ["Weights must not be negative."]}}}


def test_measure_values_are_json_arrays_per_account_rounded_with_null_for_no_data() -> None:
    raw = np.array([[1.23456789, np.nan, -0.0, 1e-7], [5e20, 2.0, np.inf, 3.0000004]])
    rows = [json.loads(text) for text in measure_json(raw)]
    assert rows == [[1.234568, 5e20], [None, 2.0], [0.0, None], [0.0, 3.0]]
    assert measure_json(np.empty((2, 0))) == [] and measure_json(np.empty((0, 2))) == ["[]", "[]"]


def test_an_account_is_not_scored_before_its_contract_starts(db_session: Session) -> None:
    ensure_default_config(db_session)
    started = f.make_account(db_session, contract_start=AS_OF - dt.timedelta(days=10))
    f.make_account(db_session, contract_start=AS_OF + dt.timedelta(days=1))
    db_session.commit()
    summary = run_scoring(db_session, as_of=AS_OF)
    assert summary.accounts_scored == 1
    assert db_session.scalars(sa.select(HealthScore.account_id)).all() == [started.id]
