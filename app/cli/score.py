"""``flask score``: health-score runs, one day or a back-fill of several."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session
from tqdm import tqdm

from app.cli.common import DATE, exit_cleanly_on_domain_error
from app.db import session_factory
from app.pipeline.run import STEPS, ScoringRunSummary, run_scoring
from app.services.alerts.settings import AlertSettings
from app.services.jobs.requests import lock_scoring_runs
from app.services.jobs.runs import run_recorded

score_cli = AppGroup("score", help="Health-score runs.")


def _score_day(session: Session, *, day: dt.date, progress: Callable[[str], None]) -> ScoringRunSummary:
    lock_scoring_runs(session)  # after any scoring run in progress (the daily job, a rescore)
    return run_scoring(
        session,
        as_of=day,
        progress=progress,
        alert_settings=AlertSettings.from_config(current_app.config),
        today=dt.datetime.now(dt.UTC).date(),  # a day before today is a back-fill: no alerts
    )


@score_cli.command("run")
@click.option("--as-of", "as_of", type=DATE, default=None, help="Score as of this date (default: today, UTC).")
@click.option(
    "--days",
    type=click.IntRange(1, 3_650),
    default=1,
    show_default=True,
    help="Score each of the DAYS days ending at --as-of, oldest first (a back-fill of history).",
)
@exit_cleanly_on_domain_error
def score_run(as_of: dt.date | None, days: int) -> None:
    """Score every active account and print a one-line summary per day scored."""
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    show = sys.stderr.isatty()
    for offset in range(days - 1, -1, -1):
        day = as_of - dt.timedelta(days=offset)
        with tqdm(total=len(STEPS), desc=f"scoring {day}", unit="step", disable=not show, leave=False) as bar:

            def progress(step: str, bar: tqdm = bar) -> None:  # type: ignore[type-arg]
                bar.set_postfix_str(step)
                bar.update(1)

            summary = run_recorded(
                session_factory(),
                "score",
                {"as_of": day.isoformat()},
                functools.partial(_score_day, day=day, progress=progress),
                ScoringRunSummary.counts,
            )
        click.echo(summary.one_line())
