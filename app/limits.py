"""Rate limits (Flask-Limiter): failed authentication per client address, and the expensive
POSTs per caller. The storage is ``RATE_LIMIT_STORAGE_URI``: ``memory://`` counts in one process
(one web worker), ``redis://host:6379`` shares the counts between every worker and machine.

``limiter`` is the one ``flask_limiter.Limiter``: views import it (``@limiter.limit(...)``) and
``init_limits(app)`` binds it to an app. Its checks run after authentication (``init_limits``
is called after ``init_api``), so a limit on a view counts per token's user.
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from werkzeug.exceptions import TooManyRequests

from config import ConfigError


def client_address() -> str:
    """The caller's address (``request.remote_addr``: behind a proxy, configure it to set the
    real one, e.g. werkzeug's ProxyFix; see docs/operations.md)."""
    return request.remote_addr or "unknown"


def caller_key() -> str:
    """Per authenticated user when there is one, else per address."""
    principal = g.get("principal")
    return f"user:{principal.user_id}" if principal is not None else f"addr:{client_address()}"


limiter = Limiter(key_func=caller_key, strategy="fixed-window", headers_enabled=True)


def expensive_limit() -> str:
    """The limit of each expensive POST (a preview, a backtest, queuing suggestions or a training,
    an activation): ``RATE_LIMIT_EXPENSIVE`` per caller."""
    return str(current_app.config["RATE_LIMIT_EXPENSIVE"])


def _auth_failures_item() -> RateLimitItem:
    return parse(str(current_app.config["RATE_LIMIT_AUTH_FAILURES"]))


def check_auth_failures() -> None:
    """429 when the caller's address has failed authentication too often lately (guessing
    tokens): before the token is even looked up."""
    if not limiter.enabled:
        return
    item = _auth_failures_item()
    if not limiter.limiter.test(item, "auth-failures", client_address()):
        raise TooManyRequests(f"Too many failed authentications from this address; try again later (limit {item}).")


def count_auth_failure() -> None:
    """Count one failed authentication against the caller's address."""
    if limiter.enabled:
        limiter.limiter.hit(_auth_failures_item(), "auth-failures", client_address())


def init_limits(app: Flask) -> None:
    """Bind ``limiter`` to ``app`` with the configured storage; refuses malformed limits."""
    for name in ("RATE_LIMIT_AUTH_FAILURES", "RATE_LIMIT_EXPENSIVE"):
        try:
            parse(str(app.config[name]))
        except ValueError:
            raise ConfigError(f"{name} must be a limit like '20 per minute', got {app.config[name]!r}") from None
    app.config["RATELIMIT_ENABLED"] = bool(app.config["RATE_LIMIT_ENABLED"])
    app.config["RATELIMIT_STORAGE_URI"] = app.config["RATE_LIMIT_STORAGE_URI"]
    limiter.init_app(app)
