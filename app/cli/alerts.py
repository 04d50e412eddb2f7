"""``flask alerts``: send the alerts that are due, queue the daily digests."""

from __future__ import annotations

import datetime as dt
import os
import time

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from app.db import session_factory
from app.services.alerts.digest import queue_digests
from app.services.alerts.dispatch import Dispatcher
from app.services.alerts.settings import AlertSettings

alerts_cli = AppGroup("alerts", help="Alerts: send what is due, queue digests.")


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
    try:
        with session_factory().begin() as session:
            queued = queue_digests(session, now=dt.datetime.now(dt.UTC), settings=settings, force=force)
    except sa.exc.DBAPIError as exc:
        # Racing the scheduler's digest job: say so in a line, never the statement and its parameters.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise click.ClickException(
            f"Could not queue the digests: another process is writing them ({reason[:200]}). "
            "Nothing was queued by this command; run it again to queue what is still due."
        ) from None
    click.echo(f"Queued {queued} digest(s).")
