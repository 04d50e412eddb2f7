"""Who is signed in to the pages, and which pages each role may open.

The pages use cookie sessions (Flask-Login over Flask's signed cookie) while the API stays
cookie-free: ``PageSessions`` opens no session for ``/api/`` and ``/static/`` requests. A
signed-in request gets the same ``g.principal`` a bearer token gives the API, so the services'
books and the change rules (``app.auth.default_owners``, ``require_in_book``) apply unchanged.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Request, Response, abort, current_app, g, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect

from app.auth import Principal
from app.db import get_session
from app.models import Role
from app.services.users import WebUser, load_web_user

F = TypeVar("F", bound=Callable[..., Any])

ALL = (Role.ADMIN, Role.MANAGER, Role.CSM, Role.VIEWER)
WORK = (Role.ADMIN, Role.MANAGER, Role.CSM)
TEAM = (Role.ADMIN, Role.MANAGER)
ADMIN = (Role.ADMIN,)

login_manager = LoginManager()
csrf = CSRFProtect()


class PageSessions(SecureCookieSessionInterface):
    """Cookie sessions for the pages only: API requests carry a bearer token and never get or
    send a cookie (and skip building the signing serializer, ~0.1 ms of a cached API call)."""

    def open_session(self, app: Flask, request: Request) -> Any:  # a cookie session, or the null one
        if request.path.startswith(("/api/", "/static/")):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if request.path.startswith(("/api/", "/static/")):
            return None
        return super().save_session(app, session, response)


class SignedIn(UserMixin):
    """Flask-Login's view of a ``WebUser``; the id is the session id (user id and password stamp)."""

    def __init__(self, user: WebUser) -> None:
        self.user = user
        self.role = user.role
        self.name = user.name

    def get_id(self) -> str:
        return self.user.session_id


#: Signed-in users a worker has checked, by session id: (monotonic deadline, user). Like API tokens
#: (app/auth.py), trusted ``TOKEN_CACHE_SECONDS``: disabling a user or a new password reaches
#: other workers within that time; this worker forgets at once (``forget_users``).
_USERS_MAX = 4096


def _user_cache() -> dict[str, tuple[float, WebUser]]:
    cache: dict[str, tuple[float, WebUser]] = current_app.extensions.setdefault("web_user_cache", {})
    return cache


def forget_users() -> None:
    current_app.extensions.pop("web_user_cache", None)


@login_manager.user_loader
def _load(sid: str) -> SignedIn | None:
    cache, clock = _user_cache(), time.monotonic()
    hit = cache.get(sid)
    if hit is not None and hit[0] > clock:
        return SignedIn(hit[1])
    session = get_session()
    with session.begin():
        user = load_web_user(session, sid)
    if user is None:
        cache.pop(sid, None)
        return None
    ttl = float(current_app.config.get("TOKEN_CACHE_SECONDS", 0))
    if ttl > 0:
        if len(cache) >= _USERS_MAX:
            cache.clear()
        cache[sid] = (clock + ttl, user)
    return SignedIn(user)


@login_manager.unauthorized_handler
def _to_sign_in() -> Response:
    # Back to the page asked for after signing in (a path of this site only).
    return redirect(url_for("web_auth.sign_in", next=request.full_path.rstrip("?")))  # type: ignore[return-value]


def safe_next(target: str | None) -> str:
    """``target`` when it is a path of this site, else the watchlist (no open redirects)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("web.watchlist")


def page(*roles: Role) -> Callable[[F], F]:
    """A page for these roles: anonymous visitors go to sign-in and come back; other roles get 403.
    Sets ``g.principal`` as a token would, for the services' books and change rules."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            user: WebUser = current_user.user
            if user.role not in roles:
                abort(403)
            g.principal = Principal(user.id, user.name, user.email, user.role, token_id=0)
            return view(*args, **kwargs)

        inner._page_roles = frozenset(roles)  # type: ignore[attr-defined]
        return inner  # type: ignore[return-value]

    return wrap


def page_roles(view: Callable[..., Any] | None) -> frozenset[Role] | None:
    return getattr(view, "_page_roles", None)
