"""``flask sources``: the configured sources (HS_SOURCES_FILE) and their last pulls."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli.common import exit_cleanly_on_domain_error
from app.db import session_factory
from app.services.ingest.pull import last_pulls
from app.sources.config import load_sources

sources_cli = AppGroup("sources", help="The sources the scheduler pulls (HS_SOURCES_FILE).")


@sources_cli.command("list")
@exit_cleanly_on_domain_error
def sources_list() -> None:
    """The configured sources (HS_SOURCES_FILE) and when each kind was last pulled."""
    configured = load_sources(current_app.config.get("SOURCES_FILE"))
    if not configured:
        click.echo("No sources configured (set HS_SOURCES_FILE to a sources file).")
        return
    with session_factory().begin() as session:
        pulled_at = last_pulls(session)
    for entry in configured:
        source = entry.source
        pulled = ", ".join(
            f"{kind} {pulled_at[(source.name, kind)]:%Y-%m-%d %H:%M}"
            if (source.name, kind) in pulled_at
            else f"{kind} never"
            for kind in source.kinds
        )
        click.echo(
            f"{source.name:<16} {type(source).__name__:<10} every {entry.every_minutes} min; last pulled: {pulled}"
        )
