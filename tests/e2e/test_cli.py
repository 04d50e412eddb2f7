"""CLI commands end to end: demo seed, score run, readable errors and exit codes."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import Session

from app.models import Account, HealthScore

pytestmark = [pytest.mark.e2e, pytest.mark.db]


def count(session: Session, model: type) -> int:
    with session.begin():
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_demo_seed_then_score(runner: FlaskCliRunner, db_session: Session) -> None:
    seeded = runner.invoke(args=["demo", "seed", "--accounts", "40", "--days", "70", "--as-of", "2026-06-30"])
    assert seeded.exit_code == 0, seeded.output
    assert "40 accounts" in seeded.output
    assert count(db_session, Account) == 40
    scored = runner.invoke(args=["score", "run", "--as-of", "2026-06-30", "--days", "2"])
    assert scored.exit_code == 0, scored.output
    lines = scored.output.strip().splitlines()
    assert [line.split(" as of ")[1][:10] for line in lines] == ["2026-06-29", "2026-06-30"]
    with db_session.begin():
        days = db_session.scalars(sa.select(HealthScore.day).distinct()).all()
    assert len(days) == 2


def test_demo_seed_refuses_a_populated_database_unless_replacing(runner: FlaskCliRunner, db_session: Session) -> None:
    args = ["demo", "seed", "--accounts", "10", "--days", "30", "--as-of", "2026-06-30"]
    assert runner.invoke(args=args).exit_code == 0
    again = runner.invoke(args=args)
    assert again.exit_code == 1
    assert "Error:" in again.output and "--replace" in again.output
    assert count(db_session, Account) == 10  # nothing half-written
    replaced = runner.invoke(args=[*args[:3], "12", *args[4:], "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert count(db_session, Account) == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "seed", "--accounts", "0"], "0 is not in the range"),
        (["demo", "seed", "--as-of", "yesterday"], "is not a date in the form YYYY-MM-DD"),
        (["score", "run", "--days", "-3"], "-3 is not in the range"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(runner: FlaskCliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == 2
    assert message in result.output


def test_demo_history_scores_quietly_and_restores_the_job_log(
    runner: FlaskCliRunner, db_session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """A back-fill of many days logs no "job score succeeded" line per day (a failed run still would),
    and the job log is as it was afterwards."""
    seeded = runner.invoke(args=["demo", "seed", "--accounts", "20", "--days", "40", "--as-of", "2026-06-30"])
    assert seeded.exit_code == 0, seeded.output
    runs_logger = logging.getLogger("app.services.jobs.runs")
    level = runs_logger.level
    with caplog.at_level(logging.INFO):
        history = runner.invoke(
            args=["demo", "history", "--days", "10", "--daily-days", "3", "--every", "2", "--as-of", "2026-06-30"]
        )
    assert history.exit_code == 0, history.output
    assert history.output.strip() == "Scored 6 days from 2026-06-22 to 2026-06-30."
    assert not [r for r in caplog.records if r.name == "app.services.jobs.runs" and r.levelno < logging.WARNING]
    assert runs_logger.level == level
    with db_session.begin():
        days = db_session.scalars(sa.select(HealthScore.day).distinct()).all()
    assert len(days) == 6
