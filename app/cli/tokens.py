"""``flask tokens``: API tokens (create, shown once; list; revoke)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.auth import create_token, list_tokens, revoke_token
from app.cli.common import exit_cleanly_on_domain_error
from app.db import session_factory
from app.models import Role

tokens_cli = AppGroup("tokens", help="API tokens: create (shown once), list, revoke.")

ROLE = click.Choice([role.value for role in Role])


@tokens_cli.command("create")
@click.option("--user", "user_name", required=True, help="The user (created when missing).")
@click.option("--role", required=True, type=ROLE)
@click.option("--email", default=None, help="The new user's email, when the user is created.")
@click.option("--description", default="", help="What the token is for.")
@click.option("--expires-days", type=int, default=None, help="Days until the token expires (default: never).")
@exit_cleanly_on_domain_error
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
        rows = list_tokens(session)
    for prefix, name, role, description, expires, revoked in rows:
        state = "revoked" if revoked else f"expires {expires:%Y-%m-%d}" if expires else "live"
        click.echo(f"{prefix}...  {name}  {role.value}  {state}  {description}")


@tokens_cli.command("revoke")
@click.argument("prefix")
@exit_cleanly_on_domain_error
def tokens_revoke(prefix: str) -> None:
    """Revoke the token(s) starting with PREFIX (as `flask tokens list` shows)."""
    with session_factory().begin() as session:
        count = revoke_token(session, prefix)
    click.echo(f"Revoked {count} token(s).")
