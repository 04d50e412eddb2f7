"""``flask scheduler``: the job scheduler, in a process of its own."""

from __future__ import annotations

from flask import current_app
from flask.cli import AppGroup

scheduler_cli = AppGroup("scheduler", help="The job scheduler (its own process).")


@scheduler_cli.command("run")
def scheduler_run() -> None:
    """Run the scheduler in this process (several may run: one leads, the others stand by)."""
    # Imported when the scheduler runs: APScheduler's schedulers and executors (multiprocessing
    # with them) are no part of the other commands' start-up.
    from app.services.jobs.scheduler import SchedulerProcess

    SchedulerProcess(current_app._get_current_object()).run_forever()  # type: ignore[attr-defined]
