"""Security headers on every answer (flask-talisman): ``X-Content-Type-Options: nosniff``, a
Content-Security-Policy that allows scripts and styles from this origin only and no framing
(``frame-ancestors 'none'``), ``Referrer-Policy: no-referrer``, HSTS on https; and
``Cache-Control: no-store`` on the API's answers and the operational endpoints (they hold
customer data or live state: no proxy or browser may keep them).

Pages follow the policy: no inline scripts or styles, no CDN. The API's docs page does too, with
its vendored Swagger UI (app/static/vendor); only a deployment that points
``OPENAPI_SWAGGER_UI_URL`` at another origin gets that origin and an inline start-up script added.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_talisman import Talisman

#: The policy of every answer (pages included).
CSP: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
DOCS_ENDPOINT = "api-docs.openapi_swagger_ui"
#: Answers under these prefixes are never stored by a cache.
NO_STORE_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics", "/alerts/ack")


def docs_policy(swagger_ui_url: str | None) -> dict[str, str]:
    """The docs page's policy: ``CSP`` plus Swagger UI's origin when it is another one, and its
    inline start-up script (flask-smorest's template)."""
    policy = dict(CSP)
    if not swagger_ui_url or not urlsplit(swagger_ui_url).netloc:
        return policy  # served from this origin (vendored): the plain policy
    parts = urlsplit(swagger_ui_url)
    origin = f" {parts.scheme}://{parts.netloc}"
    policy["script-src"] = f"'self' 'unsafe-inline'{origin}"
    policy["style-src"] = f"'self'{origin}"
    return policy


def _no_store(response: Response) -> Response:
    if request.path.startswith(NO_STORE_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_headers(app: Flask) -> Talisman:
    """Talisman on ``app`` with ``CSP``; the docs and acknowledge pages get their own policies."""
    talisman = Talisman(
        app,
        force_https=bool(app.config["FORCE_HTTPS"]),
        strict_transport_security=True,  # sent on https requests only
        content_security_policy=CSP,
        frame_options="DENY",
        referrer_policy="no-referrer",
        # The pages' session cookie (app/web): Secure unless SESSION_COOKIE_SECURE is off (plain-http dev).
        session_cookie_secure=bool(app.config["FORCE_HTTPS"] or app.config.get("SESSION_COOKIE_SECURE", True)),
    )
    views: dict[str, Any] = app.view_functions
    if DOCS_ENDPOINT in views:
        page = views[DOCS_ENDPOINT]  # a bound method: wrapped to carry talisman's per-view options

        def docs_page(*args: Any, **kwargs: Any) -> Any:
            return page(*args, **kwargs)

        docs_page.talisman_view_options = {  # type: ignore[attr-defined]
            "content_security_policy": docs_policy(app.config.get("OPENAPI_SWAGGER_UI_URL"))
        }
        views[DOCS_ENDPOINT] = docs_page
    app.after_request(_no_store)
    return talisman
