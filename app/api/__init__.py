"""The JSON API: every blueprint is registered here, so the URL map reads in one file."""

from __future__ import annotations

import threading
from typing import Any

from apispec import APISpec
from flask import Flask
from flask_smorest import Api, Blueprint

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


class LazyDocApi(Api):  # type: ignore[misc]
    """flask-smorest's ``Api`` with the OpenAPI document built when first read (``/api/openapi.json``,
    ``flask openapi print``) rather than in ``create_app``: documenting every view converts each
    marshmallow schema, about a third of a second that every process (each CLI command, each web
    worker) paid at start-up. Blueprints are registered with the app at once, as before; only their
    documentation waits, and is added in the same order, so the document is the same."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pending: list[tuple[Blueprint, str, Any]] = []
        self._lock = threading.Lock()
        self._spec: APISpec | None = None
        super().__init__(*args, **kwargs)

    @property
    def spec(self) -> APISpec | None:
        if self._pending and not self._lock.locked():
            with self._lock:
                while self._pending:
                    blp, name, parameters = self._pending.pop(0)
                    blp.register_views_in_doc(self, self._app, self._spec, name=name, parameters=parameters)
                    self._spec.tag({"name": name, "description": blp.description})  # type: ignore[union-attr]
        return self._spec

    @spec.setter
    def spec(self, value: APISpec | None) -> None:
        self._spec = value

    def register_blueprint(self, blp: Blueprint, *, parameters: Any = None, **options: Any) -> None:
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._pending.append((blp, name, parameters))


def init_api(app: Flask) -> Api:
    plugin = AccessDocPlugin()
    api = LazyDocApi(app, spec_kwargs={"extra_plugins": [plugin]})
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
