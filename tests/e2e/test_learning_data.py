"""Training data from the raw tables: nothing dated after an observation enters its features,
accounts that churned later are observed before their churn, the renewal date is the one that
stood on the day, and the scoring run still skips churned accounts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import Session

from app.demo.seed import seed_demo
from app.models import (
    Account,
    AccountStatus,
    DailyUsage,
    FeedbackKind,
    GoalStatus,
    LicenseSnapshot,
    Outcome,
    TicketPriority,
    UsageSignal,
)
from app.models.enums import OutcomeKind
from app.pipeline.measures import compute_measures
from app.pipeline.run import run_scoring
from app.services.analysis import TrainingData, build_training_data
from scoring.model import default_config_dict, model_from_dict
from scoring.stage import STAGE_CODE, LifecycleStage
from tests import factories as f

pytestmark = [pytest.mark.e2e, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)


def build(session: Session, **kwargs: object) -> TrainingData:
    with session.begin():
        return build_training_data(session, as_of=AS_OF, **kwargs)  # type: ignore[arg-type]


def by_row(training: TrainingData) -> dict[tuple[int, str], tuple[int, bool, tuple[float, ...]]]:
    d = training.data
    return {
        (int(a), str(day)): (int(s), bool(y), tuple(np.nan_to_num(row, nan=-1.0).tolist()))
        for a, day, s, y, row in zip(d.account_id, d.observed_on, d.stage, d.label, d.measure_scores, strict=True)
    }


def test_rows_dated_after_the_observation_change_nothing(db_session: Session) -> None:
    with db_session.begin():
        seed_demo(db_session, accounts=80, days=300, as_of=AS_OF, seed=5)
    before = build(db_session, periodic_months=3)
    assert before.data.size > 50
    last = max(before.data.observed_on.tolist())
    after = last + dt.timedelta(days=1)
    moment = dt.datetime.combine(after, dt.time(9), tzinfo=dt.UTC)
    # Every raw table changes after the last observation date, for every account, in the direction
    # that would move a measure: usage and licenses emptied, signals replaced by a first value, a
    # new urgent ticket with a breach, detractor NPS, bad CSAT and sentiment, a goal achieved.
    with db_session.begin():
        db_session.execute(
            sa.update(DailyUsage).where(DailyUsage.day > last).values(active_users=1, logins=1, key_feature_uses=0)
        )
        db_session.execute(sa.update(LicenseSnapshot).where(LicenseSnapshot.day > last).values(seats_active=0))
        db_session.execute(sa.delete(UsageSignal).where(UsageSignal.day > last))
        for account in db_session.scalars(sa.select(Account)).all():
            f.add_signal(db_session, account, after, "first_value")
            f.add_ticket(db_session, account, moment, priority=TicketPriority.URGENT, sla_breached=True)
            f.add_feedback(db_session, account, after, FeedbackKind.NPS, 0)
            f.add_feedback(db_session, account, after, FeedbackKind.CSAT, 1)
            f.add_feedback(db_session, account, after, FeedbackKind.CSM_SENTIMENT, 1)
            f.add_goal(db_session, account, created=after, due=after, achieved=after, status=GoalStatus.ACHIEVED)
    again = build(db_session, periodic_months=3)
    assert by_row(again) == by_row(before)
    # ...while the same rows on the observation date itself do move features (the test can fail).
    with db_session.begin():
        for account in db_session.scalars(sa.select(Account)).all():
            f.add_feedback(db_session, account, last, FeedbackKind.CSM_SENTIMENT, 1)
    moved = build(db_session, periodic_months=3)
    assert by_row(moved) != by_row(before)


def test_accounts_that_churned_later_are_observed_before_their_churn(db_session: Session) -> None:
    with db_session.begin():
        seed_demo(db_session, accounts=150, days=300, as_of=AS_OF, seed=5)
        churned = set(db_session.scalars(sa.select(Account.id).where(Account.status == AccountStatus.CHURNED)))
        churn_day = dict(
            db_session.execute(
                sa.select(Outcome.account_id, Outcome.day).where(Outcome.kind == OutcomeKind.CHURNED)
            ).all()
        )
    training = build(db_session, periodic_months=6)
    d = training.data
    observed_churned = {int(a) for a in d.account_id[d.label]}
    assert observed_churned and observed_churned <= churned
    # Never after the churn, and a churned account's observations within the horizon are positive.
    for account, day, label in zip(d.account_id.tolist(), d.observed_on.tolist(), d.label.tolist(), strict=True):
        if account in churn_day:
            assert day < churn_day[account]
            assert label == ((churn_day[account] - day).days <= 90)
    # The scoring run keeps skipping accounts churned now (its behaviour is unchanged).
    with db_session.begin():
        summary = run_scoring(db_session, as_of=AS_OF)
        scored = compute_measures(db_session, as_of=AS_OF, model=model_from_dict(default_config_dict())).account_id
    assert churned.isdisjoint(scored.tolist()) and summary.accounts_scored == scored.size


def test_the_stage_uses_the_renewal_date_that_stood_on_the_day(db_session: Session) -> None:
    with db_session.begin():
        # Renewed on 2026-05-01; the account's renewal date has since moved a year on.
        account = f.make_account(db_session, contract_start=dt.date(2024, 5, 1), renewal_date=dt.date(2027, 5, 1))
        f.add_usage(db_session, account, dt.date(2025, 10, 1), dt.date(2026, 6, 30))
        db_session.add(Outcome(account_id=account.id, source="t", external_id="r1", kind=OutcomeKind.RENEWED,
                               day=dt.date(2026, 5, 1)))  # fmt: skip
        other = f.make_account(db_session, contract_start=dt.date(2026, 2, 15))  # not a customer 90 days before
        db_session.add(Outcome(account_id=other.id, source="t", external_id="r2", kind=OutcomeKind.EXPANDED,
                               day=dt.date(2026, 5, 1)))  # fmt: skip
    training = build(db_session, periodic_months=0)
    d = training.data
    assert d.account_id.tolist() == [account.id]
    assert d.observed_on.tolist() == [dt.date(2026, 1, 31)]  # 90 days before the outcome
    assert d.stage.tolist() == [STAGE_CODE[LifecycleStage.PRE_RENEWAL]]
    assert d.label.tolist() == [False]
    assert training.skipped["not_a_customer"] == 1
    assert training.outcomes == 1 and training.outcome_observations == 1


def test_cli_evaluate_and_suggest_print_the_figures_and_refuse_what_cannot_be_learned(
    runner: FlaskCliRunner, db_session: Session, tmp_path: Path
) -> None:
    refused = runner.invoke(args=["analysis", "evaluate", "--as-of", AS_OF.isoformat()])
    assert refused.exit_code == 1
    assert "There is no data to learn from" in refused.output
    with db_session.begin():
        seed_demo(db_session, accounts=250, days=300, as_of=AS_OF, seed=3)
    early = runner.invoke(args=["analysis", "suggest", "--as-of", "2020-01-01"])
    assert early.exit_code == 1 and "is before any data" in early.output
    args = ["--as-of", AS_OF.isoformat(), "--periodic-months", "6", "--min-per-class", "10"]
    result = runner.invoke(args=["analysis", "evaluate", *args])
    assert result.exit_code == 0, result.output
    assert f"Suggestion as of {AS_OF.isoformat()} (horizon 90 days, 6 monthly dates)" in result.output
    assert "Measures of the suggested config:" in result.output and "Ranks churn with AUC" in result.output
    assert "churn model: ROC AUC" in result.output
    assert ("Walk-forward validation" in result.output) != ("no validation" in result.output)
    out = tmp_path / "proposal.json"
    suggested = runner.invoke(args=["analysis", "suggest", *args, "--write", str(out)])
    assert suggested.exit_code == 0, suggested.output
    body = json.loads(out.read_text())
    assert set(body) == {"config", "comment"} and body["config"]["measures"]
    trained = runner.invoke(args=["analysis", "train", *args])
    assert trained.exit_code == 0, trained.output
    assert trained.output.startswith("Churn model v1 trained on ")


def test_the_sources_offered_to_discovery_are_those_the_catalog_shows_with_data(db_session: Session) -> None:
    from app.services.scoring_config.catalog import measure_catalog
    from app.services.suggestions import available_sources

    with db_session.begin():
        assert available_sources(db_session) == []
        seed_demo(db_session, accounts=40, days=120, as_of=AS_OF, seed=2)
    with db_session.begin():
        catalog = measure_catalog(db_session)
        got = available_sources(db_session)
    held = [s["source"] for s in catalog["sources"] if s["records"]]
    signals = [s["source"] for s in sorted(catalog["signals"], key=lambda s: (-s["events"], s["signal"]))]
    assert got == held + signals
    assert "feedback.nps" in got and any(s.startswith("signal.") for s in got)


def test_dates_computed_two_at_a_time_give_the_same_observations(db_session: Session) -> None:
    with db_session.begin():
        seed_demo(db_session, accounts=60, days=200, as_of=AS_OF, seed=4)
    one = build(db_session, periodic_months=3)
    two = build(db_session, periodic_months=3, workers=2)
    assert by_row(two) == by_row(one)
    assert two.skipped == one.skipped and two.outcomes == one.outcomes
    assert np.array_equal(np.nan_to_num(two.data.raw_values, nan=-1), np.nan_to_num(one.data.raw_values, nan=-1))
