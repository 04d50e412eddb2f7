"""``flask users``: API users, people and machine clients (create, list); passwords for the pages."""

from __future__ import annotations

import datetime as dt

import click
from flask import current_app
from flask.cli import AppGroup

from app.auth import create_user, list_users, set_time_zone
from app.cli.common import exit_cleanly_on_domain_error
from app.db import session_factory
from app.models import Role
from app.services.users import SIGN_IN_ROLES, reset_link, set_password

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


@users_cli.command("set-password")
@click.argument("who")
@click.option(
    "--role",
    type=click.Choice([r.value for r in SIGN_IN_ROLES]),
    default=None,
    help="The role to sign in to the pages with (creates the user when WHO is a new email).",
)
@click.password_option(help="The password (asked twice when not given; at least 10 characters).")
@exit_cleanly_on_domain_error
def users_set_password(who: str, role: str | None, password: str) -> None:
    """Set the password WHO (a user's name or email) signs in to the pages with: the first admin's way in."""
    with session_factory().begin() as session:
        user = set_password(session, who, password, role=Role(role) if role else None, now=dt.datetime.now(dt.UTC))
        click.echo(f"Password set for {user.name!r} <{user.email}> ({user.role.value if user.role else '-'}).")


@users_cli.command("reset-link")
@click.argument("who")
@exit_cleanly_on_domain_error
def users_reset_link(who: str) -> None:
    """Print a one-time link for WHO (name or email) to choose a new password."""
    with session_factory().begin() as session:
        _, token = reset_link(
            session, who, now=dt.datetime.now(dt.UTC), hours=int(current_app.config["WEB_LINK_HOURS"])
        )
    base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    click.echo(f"{base}/set-password?token={token}")
