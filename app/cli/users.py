"""``flask users``: API users, people and machine clients (create, list)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.auth import create_user, list_users, set_time_zone
from app.cli.common import exit_cleanly_on_domain_error
from app.db import session_factory

users_cli = AppGroup("users", help="API users (people and machine clients).")


@users_cli.command("create")
@click.argument("name")
@click.option("--email", default=None, help="The address accounts' owner field uses for this CSM, if not the name.")
@click.option("--manager", default=None, help="The name of this user's manager (an existing user): their team.")
@click.option("--time-zone", default="UTC", show_default=True, help="The IANA zone their messages show times in.")
@exit_cleanly_on_domain_error
def users_create(name: str, email: str | None, manager: str | None, time_zone: str) -> None:
    """Create a user named NAME (a CSM's name or email is what accounts' owner holds)."""
    with session_factory().begin() as session:
        user = create_user(session, name, email=email, manager=manager, time_zone=time_zone)
        click.echo(f"Created user {user.name!r} (id {user.id}).")


@users_cli.command("time-zone")
@click.argument("name")
@click.argument("zone")
@exit_cleanly_on_domain_error
def users_time_zone(name: str, zone: str) -> None:
    """Show the times in NAME's messages (digests) in ZONE, an IANA name such as Europe/Berlin."""
    with session_factory().begin() as session:
        user = set_time_zone(session, name, zone)
        click.echo(f"{user.name!r} now sees times in {user.time_zone}.")


@users_cli.command("list")
def users_list() -> None:
    """Users with their manager and live tokens."""
    with session_factory().begin() as session:
        rows = list_users(session)
    for name, email, manager_name, disabled, tokens in rows:
        extra = f" <{email}>" if email else ""
        team = f", manager {manager_name}" if manager_name else ""
        click.echo(f"{name}{extra}{team}; {tokens} live token(s){' (disabled)' if disabled else ''}")
