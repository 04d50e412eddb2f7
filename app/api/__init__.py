"""The JSON API: every blueprint is registered here, so the URL map reads in one file."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from app.api import (
    accounts,
    alerts,
    analysis,
    effectiveness,
    events,
    ingest,
    jobs,
    plays,
    scoring_config,
    tasks,
    watchlist,
)
from app.auth import AccessDocPlugin, init_auth


def init_api(app: Flask) -> Api:
    plugin = AccessDocPlugin()
    api = Api(app, spec_kwargs={"extra_plugins": [plugin]})
    init_auth(app, api, plugin)
    api.register_blueprint(accounts.bp)
    api.register_blueprint(jobs.bp)
    api.register_blueprint(ingest.bp)
    api.register_blueprint(effectiveness.bp)
    api.register_blueprint(events.bp)
    api.register_blueprint(plays.bp)
    api.register_blueprint(tasks.bp)
    api.register_blueprint(watchlist.bp)
    api.register_blueprint(watchlist.accounts_bp)
    api.register_blueprint(scoring_config.bp)
    api.register_blueprint(scoring_config.measures_bp)
    api.register_blueprint(analysis.bp)
    api.register_blueprint(alerts.bp)
    app.register_blueprint(alerts.links)
    app.extensions["healthscore_api"] = api
    return api
