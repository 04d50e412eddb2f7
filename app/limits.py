"""Rate limits (Flask-Limiter): one ``limiter`` for the app, bound by ``init_limits(app)``.

Nothing is limited by default; a view opts in with ``@limiter.limit(...)`` (the sign-in form,
per account and per address). The storage is ``RATELIMIT_STORAGE_URI`` (memory by default: each
worker process counts on its own; give a shared store such as Redis to count across workers).
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[])


def init_limits(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    limiter.init_app(app)
