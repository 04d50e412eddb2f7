"""Command-line interface: ``flask --app wsgi db|score|demo ...`` (the Makefile sets FLASK_APP).

One module per command group; this file only registers them, so the whole CLI reads in one place.
"""

from __future__ import annotations

from flask import Flask

from app.cli.alerts import alerts_cli
from app.cli.analysis import analysis_cli
from app.cli.db import db_cli
from app.cli.demo import demo_cli
from app.cli.ingest import ingest_cli
from app.cli.jobs import jobs_cli
from app.cli.scheduler import scheduler_cli
from app.cli.score import score_cli
from app.cli.sources import sources_cli
from app.cli.tokens import tokens_cli
from app.cli.users import users_cli


def register_cli(app: Flask) -> None:
    app.cli.add_command(alerts_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(ingest_cli)
    app.cli.add_command(sources_cli)
    app.cli.add_command(scheduler_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(db_cli)
    app.cli.add_command(score_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(analysis_cli)
