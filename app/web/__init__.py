"""The pages for CSMs, managers and admins: server-rendered Flask/Jinja over the API's services.

Every blueprint is registered here (``init_web``), with the session cookie, Flask-Login, CSRF on
every form (Flask-WTF) and the sign-in rate limits. Errors on a page answer with a page (400,
403, 404, 409, 422), never the API's JSON. See docs/web.md.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask
from werkzeug.exceptions import NotFound

from app.web import admin, console, pages, signin
from app.web.access import PageSessions, csrf, login_manager
from app.web.errors import not_found
from app.web.formatting import register_filters

#: The page blueprints (their URL map reads here).
BLUEPRINTS: tuple[Blueprint, ...] = (signin.bp, pages.bp, admin.bp, console.bp)


def init_web(app: Flask) -> None:
    app.session_interface = PageSessions()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="hs_session",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=int(app.config.get("WEB_SESSION_MINUTES", 720))),
        # CSRF is checked by each page blueprint (below), never on the API (bearer tokens, no cookies).
        WTF_CSRF_CHECK_DEFAULT=False,
        # The cookie is written when the session changes (sign-in), not on every page: it expires
        # WEB_SESSION_MINUTES after sign-in.
        SESSION_REFRESH_EACH_REQUEST=False,
        # The token lives as long as the session that holds it.
        WTF_CSRF_TIME_LIMIT=None,
    )
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    csrf.init_app(app)
    register_filters(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    # More specific than the app's HTTPException handler (app/errors.py), which stays for /api/.
    app.register_error_handler(NotFound, not_found)
