"""``flask ingest``: the quarantine of rejected pulled records (list, retry)."""

from __future__ import annotations

import datetime as dt
import json

import click
from flask.cli import AppGroup

from app.db import session_factory
from app.services.ingest.pull import list_quarantine, retry_quarantine

ingest_cli = AppGroup("ingest", help="Pulled records that were rejected: list and retry them.")


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
