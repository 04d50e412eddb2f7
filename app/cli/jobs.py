"""``flask jobs``: the scheduled jobs (list, run one now) and the queued job requests (work)."""

from __future__ import annotations

import datetime as dt
import os
import time

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli.common import exit_cleanly_on_domain_error
from app.db import learning_cache_dir, session_factory
from app.services.alerts.settings import AlertSettings
from app.services.jobs.registry import JOB_REQUESTS_SECONDS, find_job, job_specs, run_job
from app.services.jobs.requests import JobRequestWorker
from app.services.jobs.runs import last_runs

jobs_cli = AppGroup("jobs", help="Scheduled jobs: list them, run one now; run queued job requests.")


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
@exit_cleanly_on_domain_error
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
        session_factory(),
        alert_settings=AlertSettings.from_config(app.config),
        worker=f"cli:{os.getpid()}",
        cache_dir=learning_cache_dir(),
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
