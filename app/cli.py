"""Command-line interface: ``flask --app wsgi db|score|demo ...`` (the Makefile sets FLASK_APP)."""

from __future__ import annotations

import datetime as dt
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from tqdm import tqdm

from app import migrate
from app.db import get_engine, session_factory
from app.job_runs import run_recorded
from app.services.scoring import STEPS, ScoringRunSummary, run_scoring

db_cli = AppGroup("db", help="Database schema migrations (alembic).")
score_cli = AppGroup("score", help="Health-score runs.")
demo_cli = AppGroup("demo", help="Demo data.")


class DateParam(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date in the form YYYY-MM-DD", param, ctx)


DATE = DateParam()


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    engine = get_engine()
    migrate.upgrade(engine, revision)
    click.echo(f"Database at revision {migrate.current_revision(engine)} ({engine.url.render_as_string(hide_password=True)})")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" for an empty database)."""
    engine = get_engine()
    migrate.downgrade(engine, revision)
    click.echo(f"Database at revision {migrate.current_revision(engine) or 'base'}")


@db_cli.command("current")
def db_current() -> None:
    """Show the database's revision and the code's head."""
    engine = get_engine()
    click.echo(f"database: {migrate.current_revision(engine) or 'base'}; code head: {migrate.head_revision()}")


@db_cli.command("check")
def db_check() -> None:
    """Fail when the models and the migrated database disagree."""
    differences = migrate.schema_differences(get_engine())
    if differences:
        for diff in differences:
            click.echo(f"  {diff}", err=True)
        raise click.ClickException(f"{len(differences)} difference(s) between models and migrations")
    click.echo("Models and migrations agree.")


@score_cli.command("run")
@click.option("--as-of", "as_of", type=DATE, default=None, help="Score as of this date (default: today, UTC).")
def score_run(as_of: dt.date | None) -> None:
    """Score every active account and print a one-line summary."""
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    show = sys.stderr.isatty()
    with tqdm(total=len(STEPS), desc="scoring", unit="step", disable=not show, leave=False) as bar:

        def progress(step: str) -> None:
            bar.set_postfix_str(step)
            bar.update(1)

        summary = run_recorded(
            session_factory(),
            "score",
            {"as_of": as_of.isoformat()},
            lambda session: run_scoring(session, as_of=as_of, progress=progress),
            ScoringRunSummary.counts,
        )
    click.echo(summary.one_line())


def register_cli(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(score_cli)
    app.cli.add_command(demo_cli)


__all__ = ["register_cli", "current_app"]
