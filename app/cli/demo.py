"""``flask demo``: reproducible demo data, and a user for each of its CSMs."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import sys
from collections.abc import Iterator

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from app.cli.common import DATE, exit_cleanly_on_domain_error
from app.db import session_factory
from app.errors import Conflict
from app.models import Account, Role
from app.pipeline.run import ScoringRunSummary, run_scoring
from app.services.alerts.settings import AlertSettings
from app.services.jobs.requests import lock_scoring_runs
from app.services.jobs.runs import run_recorded
from app.services.users import set_password

demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("seed")
@click.option("--accounts", type=click.IntRange(1, 2_000_000), default=500, show_default=True)
@click.option("--days", type=click.IntRange(1, 3_650), default=120, show_default=True, help="Days of usage history.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed: the same seed gives the same data.")
@click.option("--as-of", "as_of", type=DATE, default=None, help="Last day of the data (default: today, UTC).")
@click.option("--replace", is_flag=True, help="Delete every account and all data first.")
@exit_cleanly_on_domain_error
def demo_seed(accounts: int, days: int, seed: int, as_of: dt.date | None, replace: bool) -> None:
    """Generate reproducible, realistic demo data (accounts, usage, tickets, feedback, outcomes...)."""
    # The demo's generators are imported by the commands that use them, not by every command's start-up.
    from app.demo.seed import clear_demo, seed_demo

    as_of = as_of or dt.datetime.now(dt.UTC).date()
    try:
        with session_factory().begin() as session:
            if replace:
                clear_demo(session)
            summary = seed_demo(session, accounts=accounts, days=days, seed=seed, as_of=as_of)
    except Conflict as exc:
        raise click.ClickException(f"{exc.message} Add --replace to delete all data and seed again.") from exc
    click.echo(summary.one_line())


@demo_cli.command("users")
@click.option("--manager", default="cs-manager", show_default=True, help="The team's manager (created if missing).")
@click.option(
    "--manager-email",
    default="cs-manager@example.com",
    show_default=True,
    help="The manager's address (alerts, escalations and the daily digest).",
)
@click.option(
    "--password",
    default=None,
    help="Let the manager, every CSM and admin@example.com sign in to the pages with this password.",
)
@exit_cleanly_on_domain_error
def demo_users(manager: str, manager_email: str, password: str | None) -> None:
    """Make a user for each CSM that owns accounts, all in one manager's team (idempotent)."""
    from app.demo.seed import create_demo_users

    with session_factory().begin() as session:
        created, owners = create_demo_users(session, manager=manager, manager_email=manager_email)
        csms = sorted(name for name in session.scalars(sa.select(Account.owner).distinct()) if name)
        if password:
            now = dt.datetime.now(dt.UTC)
            set_password(session, "admin@example.com", password, role=Role.ADMIN, now=now)
            set_password(session, manager, password, role=Role.MANAGER, now=now)
            for name in csms:
                set_password(session, name, password, role=Role.CSM, now=now)
    click.echo(f"{len(created)} CSM user(s) created in {manager!r}'s team ({owners} account owners).")
    if password and csms:
        click.echo(f"Sign in as admin@example.com (admin), {manager_email} (manager) or {csms[0]} (a CSM).")


def history_days(as_of: dt.date, *, days: int, daily_days: int, every: int) -> list[dt.date]:
    """The days a demo history scores, oldest first: each of the last ``daily_days`` days up to
    ``as_of``, and before them every ``every``-th day (counted back from ``as_of``) of the ``days``."""
    return [
        as_of - dt.timedelta(days=back) for back in range(days - 1, -1, -1) if back < daily_days or back % every == 0
    ]


def _score_day(session: Session, *, day: dt.date) -> ScoringRunSummary:
    lock_scoring_runs(session)
    return run_scoring(
        session,
        as_of=day,
        alert_settings=AlertSettings.from_config(current_app.config),
        today=dt.datetime.now(dt.UTC).date(),  # a day before today is a back-fill: no alerts
    )


@contextlib.contextmanager
def _quiet_successes() -> Iterator[None]:
    """The job runs' logger at WARNING for a back-fill of many runs: their INFO lines are one per day."""
    runs_logger = logging.getLogger("app.services.jobs.runs")
    level = runs_logger.level
    runs_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        runs_logger.setLevel(level)


@demo_cli.command("history")
@click.option("--days", type=click.IntRange(1, 3_650), default=365, show_default=True, help="Days of history.")
@click.option(
    "--daily-days",
    type=click.IntRange(0, 3_650),
    default=120,
    show_default=True,
    help="Score each of the last DAILY_DAYS days (play effectiveness reads scores 30 and 90 days after a play).",
)
@click.option(
    "--every",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="Before them, score every EVERY-th day (a score at each outcome's horizon, within the preview's 14 days).",
)
@click.option("--as-of", "as_of", type=DATE, default=None, help="The last day scored (default: today, UTC).")
@exit_cleanly_on_domain_error
def demo_history(days: int, daily_days: int, every: int, as_of: dt.date | None) -> None:
    """Back-fill the demo's score history with the scoring run (oldest day first): daily for the
    last days, sparser before, so the analytics that read stored scores (the preview's AUC at the
    horizon, event lift, play effectiveness) have the year's outcomes to work on."""
    from tqdm import tqdm

    as_of = as_of or dt.datetime.now(dt.UTC).date()
    scored = history_days(as_of, days=days, daily_days=daily_days, every=every)
    # One progress bar (on a terminal) instead of a "job score succeeded" line per day; a failure still logs.
    with _quiet_successes(), tqdm(scored, desc="scoring history", unit="day", disable=not sys.stderr.isatty()) as bar:
        for day in bar:
            bar.set_postfix_str(day.isoformat())
            run_recorded(
                session_factory(), "score", {"as_of": day.isoformat()}, functools.partial(_score_day, day=day),
                ScoringRunSummary.counts,
            )  # fmt: skip
    click.echo(f"Scored {len(scored)} days from {scored[0].isoformat()} to {scored[-1].isoformat()}.")
