"""``flask db``: schema migrations (alembic).

Each command imports ``app.migrate`` when it runs: alembic (with Mako and Pygments) is a quarter
of a second of start-up that the other commands and the web app do not need."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.db import get_engine

db_cli = AppGroup("db", help="Database schema migrations (alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from app import migrate

    engine = get_engine()
    migrate.upgrade(engine, revision)
    click.echo(
        f"Database at revision {migrate.current_revision(engine)} ({engine.url.render_as_string(hide_password=True)})"
    )


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" for an empty database)."""
    from app import migrate

    engine = get_engine()
    migrate.downgrade(engine, revision)
    click.echo(f"Database at revision {migrate.current_revision(engine) or 'base'}")


@db_cli.command("current")
def db_current() -> None:
    """Show the database's revision and the code's head."""
    from app import migrate

    engine = get_engine()
    click.echo(f"database: {migrate.current_revision(engine) or 'base'}; code head: {migrate.head_revision()}")


@db_cli.command("check")
def db_check() -> None:
    """Fail when the models and the migrated database disagree."""
    from app import migrate

    differences = migrate.schema_differences(get_engine())
    if differences:
        for diff in differences:
            click.echo(f"  {diff}", err=True)
        raise click.ClickException(f"{len(differences)} difference(s) between models and migrations")
    click.echo("Models and migrations agree.")
