"""``flask demo``: reproducible demo data, and a user for each of its CSMs."""

from __future__ import annotations

import datetime as dt

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from app.cli.common import DATE, exit_cleanly_on_domain_error
from app.db import session_factory
from app.demo.seed import clear_demo, create_demo_users, seed_demo
from app.errors import Conflict
from app.models import Account, Role
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
