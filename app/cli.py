"""Command-line interface: ``flask --app wsgi db|score|demo ...`` (the Makefile sets FLASK_APP)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session
from tqdm import tqdm

from app import migrate
from app.auth import create_token, create_user, revoke_token
from app.db import get_engine, session_factory
from app.demo.seed import clear_demo, seed_demo
from app.errors import Conflict, DomainError
from app.models import Account, ApiToken, Role, SourceCursor, User
from app.pipeline.run import STEPS, ScoringRunSummary, run_scoring
from app.services.alerts.digest import queue_digests
from app.services.alerts.dispatch import Dispatcher
from app.services.alerts.settings import AlertSettings
from app.services.analysis import TRAIN_JOB, TrainSummary, evaluate_learning, train_churn_model
from app.services.ingest.pull import list_quarantine, retry_quarantine
from app.services.jobs.registry import JOB_REQUESTS_SECONDS, SchedulerProcess, find_job, job_specs, run_job
from app.services.jobs.requests import JobRequestWorker, lock_scoring_runs
from app.services.jobs.runs import last_runs, run_recorded
from app.sources.config import load_sources

P = ParamSpec("P")
R = TypeVar("R")

ingest_cli = AppGroup("ingest", help="Pulled records that were rejected: list and retry them.")
sources_cli = AppGroup("sources", help="The sources the scheduler pulls (HS_SOURCES_FILE).")
scheduler_cli = AppGroup("scheduler", help="The job scheduler (its own process).")
jobs_cli = AppGroup("jobs", help="Scheduled jobs: list them, run one now; run queued job requests.")
db_cli = AppGroup("db", help="Database schema migrations (alembic).")
score_cli = AppGroup("score", help="Health-score runs.")
demo_cli = AppGroup("demo", help="Demo data.")
users_cli = AppGroup("users", help="API users (people and machine clients).")
tokens_cli = AppGroup("tokens", help="API tokens: create (shown once), list, revoke.")
analysis_cli = AppGroup("analysis", help="Learning from outcomes: the churn model and the validation figures.")
alerts_cli = AppGroup("alerts", help="Alerts: send what is due, queue digests.")


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


def _domain_errors_exit_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    """A domain error (a conflict, bad input) ends the command with its message and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc

    return wrapper


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    engine = get_engine()
    migrate.upgrade(engine, revision)
    click.echo(
        f"Database at revision {migrate.current_revision(engine)} ({engine.url.render_as_string(hide_password=True)})"
    )


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


def _score_day(session: Session, *, day: dt.date, progress: Callable[[str], None]) -> ScoringRunSummary:
    lock_scoring_runs(session)  # after any scoring run in progress (the daily job, a rescore)
    return run_scoring(
        session, as_of=day, progress=progress, alert_settings=AlertSettings.from_config(current_app.config)
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
@_domain_errors_exit_cleanly
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


@demo_cli.command("seed")
@click.option("--accounts", type=click.IntRange(1, 2_000_000), default=500, show_default=True)
@click.option("--days", type=click.IntRange(1, 3_650), default=120, show_default=True, help="Days of usage history.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed: the same seed gives the same data.")
@click.option("--as-of", "as_of", type=DATE, default=None, help="Last day of the data (default: today, UTC).")
@click.option("--replace", is_flag=True, help="Delete every account and all data first.")
@_domain_errors_exit_cleanly
def demo_seed(accounts: int, days: int, seed: int, as_of: dt.date | None, replace: bool) -> None:
    """Generate reproducible, realistic demo data (accounts, usage, tickets, feedback, outcomes...)."""
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
@_domain_errors_exit_cleanly
def demo_users(manager: str, manager_email: str) -> None:
    """Make a user for each CSM that owns accounts, all in one manager's team (idempotent)."""
    with session_factory().begin() as session:
        boss = session.scalar(sa.select(User).where(User.name == manager)) or create_user(
            session, manager, email=manager_email
        )
        owners = [o for o in session.scalars(sa.select(Account.owner).distinct()).all() if o]
        known = set(session.scalars(sa.select(User.name)).all())
        created = [
            create_user(session, owner, manager=boss.name).name for owner in sorted(owners) if owner not in known
        ]
    click.echo(f"{len(created)} CSM user(s) created in {manager!r}'s team ({len(owners)} account owners).")


@scheduler_cli.command("run")
def scheduler_run() -> None:
    """Run the scheduler in this process (several may run: one leads, the others stand by)."""
    SchedulerProcess(current_app._get_current_object()).run_forever()  # type: ignore[attr-defined]


@jobs_cli.command("list")
def jobs_list() -> None:
    """The registered jobs, their next run and their last run."""
    now = dt.datetime.now(dt.UTC)
    with session_factory().begin() as session:
        last = last_runs(session)
    for spec in job_specs(current_app.config):
        next_run = spec.trigger.get_next_fire_time(None, now)
        run = last.get(spec.id)
        last_text = f"last {run.status} at {run.started_at:%Y-%m-%d %H:%M:%S}" if run else "never run"
        click.echo(f"{spec.id:<16} next {next_run:%Y-%m-%d %H:%M:%S} UTC  {last_text}  {spec.description}")


@jobs_cli.command("run")
@click.argument("name")
@_domain_errors_exit_cleanly
def jobs_run(name: str) -> None:
    """Run job NAME now, recorded like a scheduled run."""
    try:
        spec = find_job(current_app.config, name)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="NAME") from None
    result = run_job(current_app._get_current_object(), spec)  # type: ignore[attr-defined]
    click.echo(result.one_line() if hasattr(result, "one_line") else f"{name}: done")


@jobs_cli.command("work")
@click.option("--loop", is_flag=True, help="Keep working: look for queued requests every few seconds until Ctrl-C.")
@click.option("--once", is_flag=True, help="Run one queued request at most.")
def jobs_work(loop: bool, once: bool) -> None:
    """Run queued job requests (the rescore after an activation, suggestions, churn-model training)
    in this process, one line each; by default every due one, then stop. Exits 1 when one failed."""
    if loop and once:
        raise click.UsageError("Use --loop or --once, not both.")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = JobRequestWorker(
        session_factory(), alert_settings=AlertSettings.from_config(app.config), worker=f"cli:{os.getpid()}"
    )
    failed = ran = 0
    try:
        while True:
            outcomes = worker.run_due(limit=1 if once else None)
            for outcome in outcomes:
                click.echo(outcome.one_line())
            ran += len(outcomes)
            failed += sum(outcome.failed for outcome in outcomes)
            if not loop:
                break
            time.sleep(JOB_REQUESTS_SECONDS)
    except KeyboardInterrupt:
        pass
    if not ran:
        click.echo("No job requests are due.")
    if failed:
        raise click.ClickException(f"{failed} of {ran} job request(s) did not succeed (see above).")


@ingest_cli.command("quarantine")
@click.option("--source", default=None, help="Only records pulled from this source.")
@click.option("--kind", default=None, help="Only records of this kind.")
def ingest_quarantine(source: str | None, kind: str | None) -> None:
    """List quarantined records: rejected pulled records with their reasons."""
    with session_factory().begin() as session:
        items, total = list_quarantine(session, source=source, kind=kind, page=1, per_page=1_000)
    for item in items:
        click.echo(
            f"{item.id:>6} {item.source}/{item.kind} at {item.quarantined_at:%Y-%m-%d %H:%M} "
            f"(retried {item.retries}x): {json.dumps(item.errors)} {json.dumps(item.payload)[:200]}"
        )
    click.echo(f"{total} quarantined record(s)" + (f", first {len(items)} shown" if total > len(items) else ""))


@ingest_cli.command("retry")
@click.option("--source", default=None, help="Only records pulled from this source.")
@click.option("--kind", default=None, help="Only records of this kind.")
def ingest_retry(source: str | None, kind: str | None) -> None:
    """Validate quarantined records again; those that land leave the quarantine."""
    with session_factory().begin() as session:
        summary = retry_quarantine(session, source=source, kind=kind, now=dt.datetime.now(dt.UTC))
    click.echo(f"Retried {summary.retried}: {summary.landed} landed, {summary.still_rejected} still rejected")


@sources_cli.command("list")
@_domain_errors_exit_cleanly
def sources_list() -> None:
    """The configured sources (HS_SOURCES_FILE) and when each kind was last pulled."""
    configured = load_sources(current_app.config.get("SOURCES_FILE"))
    if not configured:
        click.echo("No sources configured (set HS_SOURCES_FILE to a sources file).")
        return
    with session_factory().begin() as session:
        cursors = {(c.source, c.kind): c for c in session.scalars(sa.select(SourceCursor))}
    for entry in configured:
        source = entry.source
        pulled = ", ".join(
            f"{kind} {cursors[(source.name, kind)].pulled_at:%Y-%m-%d %H:%M}"
            if (source.name, kind) in cursors
            else f"{kind} never"
            for kind in source.kinds
        )
        click.echo(
            f"{source.name:<16} {type(source).__name__:<10} every {entry.every_minutes} min; last pulled: {pulled}"
        )


ROLE = click.Choice([role.value for role in Role])


@users_cli.command("create")
@click.argument("name")
@click.option("--email", default=None, help="The address accounts' owner field uses for this CSM, if not the name.")
@click.option("--manager", default=None, help="The name of this user's manager (an existing user): their team.")
@_domain_errors_exit_cleanly
def users_create(name: str, email: str | None, manager: str | None) -> None:
    """Create a user named NAME (a CSM's name or email is what accounts' owner holds)."""
    with session_factory().begin() as session:
        user = create_user(session, name, email=email, manager=manager)
        click.echo(f"Created user {user.name!r} (id {user.id}).")


@users_cli.command("list")
def users_list() -> None:
    """Users with their manager and live tokens."""
    with session_factory().begin() as session:
        manager = sa.orm.aliased(User)
        live = (
            sa.select(sa.func.count())
            .where(ApiToken.user_id == User.id, ApiToken.revoked_at.is_(None))
            .scalar_subquery()
        )
        rows = session.execute(
            sa.select(User.name, User.email, manager.name, User.disabled, live)
            .outerjoin(manager, manager.id == User.manager_id)
            .order_by(User.name)
        ).all()
    for name, email, manager_name, disabled, tokens in rows:
        extra = f" <{email}>" if email else ""
        team = f", manager {manager_name}" if manager_name else ""
        click.echo(f"{name}{extra}{team}; {tokens} live token(s){' (disabled)' if disabled else ''}")


@tokens_cli.command("create")
@click.option("--user", "user_name", required=True, help="The user (created when missing).")
@click.option("--role", required=True, type=ROLE)
@click.option("--email", default=None, help="The new user's email, when the user is created.")
@click.option("--description", default="", help="What the token is for.")
@click.option("--expires-days", type=int, default=None, help="Days until the token expires (default: never).")
@_domain_errors_exit_cleanly
def tokens_create(user_name: str, role: str, email: str | None, description: str, expires_days: int | None) -> None:
    """Create an API token and print it, once, alone on the last line (only its hash is kept)."""
    with session_factory().begin() as session:
        user, token = create_token(
            session, user_name, Role(role), description=description, expires_in_days=expires_days, email=email
        )
        name = user.name
    click.echo(f"Token for {name!r} with role {role}; store it now, it cannot be shown again:", err=True)
    click.echo(token)


@tokens_cli.command("list")
def tokens_list() -> None:
    """Tokens by prefix, with user, role and state (never the token itself)."""
    with session_factory().begin() as session:
        rows = session.execute(
            sa.select(ApiToken.prefix, User.name, ApiToken.role, ApiToken.description, ApiToken.expires_at,
                      ApiToken.revoked_at)
            .join(User, User.id == ApiToken.user_id)
            .order_by(User.name, ApiToken.created_at)
        ).all()  # fmt: skip
    for prefix, name, role, description, expires, revoked in rows:
        state = "revoked" if revoked else f"expires {expires:%Y-%m-%d}" if expires else "live"
        click.echo(f"{prefix}...  {name}  {role.value}  {state}  {description}")


@tokens_cli.command("revoke")
@click.argument("prefix")
@_domain_errors_exit_cleanly
def tokens_revoke(prefix: str) -> None:
    """Revoke the token(s) starting with PREFIX (as `flask tokens list` shows)."""
    with session_factory().begin() as session:
        count = revoke_token(session, prefix)
    click.echo(f"Revoked {count} token(s).")


@alerts_cli.command("dispatch")
@click.option("--loop", is_flag=True, help="Keep dispatching every ALERT_DISPATCH_SECONDS until Ctrl-C.")
def alerts_dispatch(loop: bool) -> None:
    """Send every due alert once (escalations first) and print what happened."""
    settings = AlertSettings.from_config(current_app.config)
    dispatcher = Dispatcher(session_factory(), settings, worker=f"cli:{os.getpid()}")
    try:
        while True:
            counts = dispatcher.run_once()
            click.echo(" ".join(f"{name}={value}" for name, value in counts.counts().items()))
            if not loop:
                return
            time.sleep(int(current_app.config["ALERT_DISPATCH_SECONDS"]))
    except KeyboardInterrupt:
        pass
    finally:
        dispatcher.close()


@alerts_cli.command("digest")
@click.option("--force", is_flag=True, help="Queue today's digests now, before the routing's local time.")
def alerts_digest(force: bool) -> None:
    """Queue the daily digests that are due (each person once a day); `alerts dispatch` sends them."""
    settings = AlertSettings.from_config(current_app.config)
    with session_factory().begin() as session:
        queued = queue_digests(session, now=dt.datetime.now(dt.UTC), settings=settings, force=force)
    click.echo(f"Queued {queued} digest(s).")


def _learning_options(command: Callable[P, R]) -> Callable[P, R]:
    options = (
        click.option(
            "--as-of", "as_of", type=DATE, default=None, help="Outcomes up to this day (default: today, UTC)."
        ),
        click.option("--horizon-days", type=click.IntRange(7, 730), default=90, show_default=True),
        click.option(
            "--periodic-months",
            type=click.IntRange(0, 60),
            default=12,
            show_default=True,
            help="Monthly observations of every customer besides the outcomes (0: outcomes only).",
        ),
        click.option("--min-per-class", type=click.IntRange(1, 100_000), default=30, show_default=True),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _figure(value: float | None, digits: int = 3, *, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%" if percent else f"{value:.{digits}f}"


@analysis_cli.command("train")
@_learning_options
@_domain_errors_exit_cleanly
def analysis_train(as_of: dt.date | None, horizon_days: int, periodic_months: int, min_per_class: int) -> None:
    """Train a churn model now and store it as the newest version (recorded in job_runs)."""
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    summary = run_recorded(
        session_factory(),
        TRAIN_JOB,
        {"as_of": as_of.isoformat(), "horizon_days": horizon_days, "periodic_months": periodic_months, "runner": "cli"},
        lambda session: TrainSummary(
            train_churn_model(
                session,
                as_of=as_of,
                actor="cli",
                horizon_days=horizon_days,
                periodic_months=periodic_months,
                min_per_class=min_per_class,
            )
        ),
        TrainSummary.counts,
    )
    click.echo(summary.one_line())


@analysis_cli.command("evaluate")
@_learning_options
@_domain_errors_exit_cleanly
def analysis_evaluate(as_of: dt.date | None, horizon_days: int, periodic_months: int, min_per_class: int) -> None:
    """Print the validation figures: suggested weights against the active config (ROC AUC, top-decile
    lift, churned in the poor band) and a churn model (ROC AUC, Brier score). Stores nothing."""
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    with session_factory().begin() as session:
        report = evaluate_learning(
            session, as_of=as_of, horizon_days=horizon_days, periodic_months=periodic_months,
            min_per_class=min_per_class,
        )  # fmt: skip
    s, churn = report["suggestions"], report["churn_model"]
    data, validation = s["data"], s["validation"]
    split = validation["split"]
    click.echo(f"Learning from outcomes as of {as_of} (horizon {horizon_days} days, {periodic_months} monthly dates)")
    click.echo(
        f"  {data['observations']} observations ({data['churned']} churned) of {data['accounts']} accounts: "
        f"{data['outcome_observations']} before {data['outcomes']} outcomes, {data['periodic_observations']} periodic"
    )
    click.echo(
        f"Validation: fitted on observations before {split['cutoff']}, tested on {split['test']} later ones "
        f"of other accounts ({split['dropped']} left out so no account is on both sides)"
    )
    proposed, active = validation["proposed"], validation["active"]
    if proposed is None or active is None:
        click.echo("  suggested weights: " + " ".join(validation["messages"]))
    else:
        title = f"suggested weights vs active config v{s['active_version']}"
        click.echo(f"  {title:<44}{'proposed':>10}{'active':>10}")
        click.echo(f"  {'ROC AUC':<44}{_figure(proposed['auc']):>10}{_figure(active['auc']):>10}")
        click.echo(
            f"  {'top-decile lift':<44}{_figure(proposed['top_decile_lift'], 2):>10}"
            f"{_figure(active['top_decile_lift'], 2):>10}"
        )
        click.echo(
            f"  {'churned in the poor band':<44}{_figure(proposed['churned_in_poor_share'], percent=True):>10}"
            f"{_figure(active['churned_in_poor_share'], percent=True):>10}"
        )
        click.echo(f"  ({proposed['observations']} test observations, {proposed['churned']} churned)")
    click.echo(
        f"  churn model: ROC AUC {_figure(churn['auc'])}, Brier {_figure(churn['brier'], 4)} "
        f"(always the base rate: {_figure(churn['base_rate_brier'], 4)}) on {churn['observations']} observations, "
        f"{churn['churned']} churned"
    )
    for message in [*s["messages"], *(flag["message"] for flag in s["flags"])]:
        click.echo(f"  note: {message}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(alerts_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(ingest_cli)
    app.cli.add_command(sources_cli)
    app.cli.add_command(scheduler_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(db_cli)
    app.cli.add_command(score_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(analysis_cli)
