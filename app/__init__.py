"""The Flask shell around the pure core: ``create_app`` builds the app in small named steps."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask.logging import default_handler
from werkzeug.routing import IntegerConverter, Map

from app.validation import MAX_INT
from config import Config, ConfigError, config_from_env


def create_app(config: Config | None = None) -> Flask:
    """Build the app. Opens no connection, starts no scheduler and runs no migration.

    The app's parts are imported here, not at the top of the package: importing any ``app.*``
    module (the scoring run, a job, a benchmark) runs this file first, and would otherwise load
    the whole web app with it (the API, its schemas, the pages, the CLI: about a second)."""
    from app.api import init_api
    from app.cli import register_cli
    from app.db import init_db
    from app.errors import register_error_handlers
    from app.headers import init_headers
    from app.limits import init_limits
    from app.ops import init_ops
    from app.web import init_web

    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the schemas' field order
    load_config(app, config)
    # Ids in URLs fit a database INTEGER; a larger one matches no route (404), never overflows (500).
    app.url_map.converters["int"] = BoundedIntConverter
    init_db(app)
    init_api(app)
    init_web(app)  # the pages: cookie sessions for them only (the API stays cookie-free)
    init_limits(app)  # after the API and the pages: its checks run after authentication
    init_headers(app)
    init_ops(app)
    register_error_handlers(app)
    register_cli(app)
    configure_logging(app)
    return app


class BoundedIntConverter(IntegerConverter):
    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_INT)
        super().__init__(map, *args, **kwargs)


def load_config(app: Flask, config: Config | None) -> None:
    config = config if config is not None else config_from_env()
    if not config.SECRET_KEY:
        # No constant fallback anywhere: a key anyone can read signs links anyone can forge.
        raise ConfigError("SECRET_KEY is empty: set SECRET_KEY (config_from_env generates one for development)")
    app.config.from_mapping(config.as_flask_mapping())
    app.config.update(
        API_TITLE="Customer health scoring API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        # The interactive page at /api/v1/docs, from the vendored Swagger UI (app/static/vendor, no CDN:
        # it works offline; scripts/vendor_assets.py refreshes it). The template is app/templates/swagger_ui.html.
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/static/vendor/swagger-ui/",
        API_SPEC_OPTIONS={"security": [{"bearerAuth": []}]},
    )


def configure_logging(app: Flask) -> None:
    level = getattr(logging, str(app.config.get("LOG_LEVEL", "INFO")).upper(), logging.INFO)
    app.logger.setLevel(level)
    logging.getLogger("app").setLevel(level)
    # The alert channels log under "alerts" (the demo's log channel is one line per message):
    # give it the app's handler when nothing else (the root logger) would show it.
    alerts_logger = logging.getLogger("alerts")
    alerts_logger.setLevel(level)
    if not alerts_logger.hasHandlers():
        alerts_logger.addHandler(default_handler)
