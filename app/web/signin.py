"""Sign in (password, or SSO through OpenID Connect when configured), sign out, and setting a password
from a one-time link (an invitation or a reset)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from app.db import get_session
from app.errors import DomainValidationError, NotFound
from app.limits import limiter
from app.services.users import MIN_PASSWORD, check_password, set_password_with_link, sso_sign_in, user_for_link
from app.web.access import SignedIn, forget_users, safe_next
from app.web.errors import guard
from app.web.sso import callback_url, client, end_session_url, sso_enabled

bp = guard(Blueprint("web_auth", __name__))

LINK_GONE = "This link is not valid: it was used, replaced or has expired. Ask an admin for a new one."


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _account_key() -> str:
    """Sign-in attempts are counted per account (the email given) as well as per address."""
    return "sign-in:" + request.form.get("email", "").strip().lower()[:255]


def _address_limit() -> str:
    return str(current_app.config["SIGN_IN_LIMIT_ADDRESS"])


def _account_limit() -> str:
    return str(current_app.config["SIGN_IN_LIMIT_ACCOUNT"])


def _start_session(user: SignedIn) -> None:
    session.clear()  # a new session on sign-in: nothing from before it carries over
    session.permanent = True  # expires WEB_SESSION_MINUTES after sign-in
    login_user(user)


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_address_limit, methods=["POST"])
@limiter.limit(_account_limit, key_func=_account_key, methods=["POST"])
def sign_in() -> Any:
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(target)
        return render_template("web/sign_in.html", next=target, email="", error=None, sso=sso_enabled())
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    db = get_session()
    with db.begin():
        user = check_password(db, email, password) if email and password else None
    if user is None:
        error = "Email or password is wrong." if email and password else "Give your email and password."
        return render_template("web/sign_in.html", next=target, email=email, error=error, sso=sso_enabled()), 401
    _start_session(SignedIn(user))
    return redirect(target)


SSO_REFUSED = (
    "The identity provider signed you in, but there is no user here with that verified email, or "
    "the user is disabled. Ask an admin to invite you with the email your provider gives."
)


def _sso_claims() -> tuple[dict[str, Any], str | None]:
    """The checked ID token's claims and the token itself; the email from the userinfo endpoint when
    the ID token leaves it out (providers may), for the same subject only."""
    sso = client()
    token = sso.authorize_access_token()
    claims = dict(token.get("userinfo") or {})
    if "email" not in claims:
        info = sso.userinfo(token=token)
        if info.get("sub") == claims.get("sub"):
            claims.update({key: info[key] for key in ("email", "email_verified") if key in info})
    return claims, token.get("id_token")


@bp.get("/sign-in/sso")
def sso_start() -> Any:
    """Off to the OpenID Connect provider (404 when SSO is not configured)."""
    if not sso_enabled():
        abort(404)
    session["sso_next"] = safe_next(request.args.get("next"))
    return client().authorize_redirect(callback_url(url_for("web_auth.sso_callback")))


@bp.get("/sign-in/sso/callback")
@limiter.limit(_address_limit)
def sso_callback() -> Any:
    """Back from the provider: the code exchanged for tokens, the ID token checked (Authlib), and
    the person signed in as the user with the verified email; refused (403) otherwise."""
    if not sso_enabled():
        abort(404)
    target = safe_next(session.get("sso_next"))
    try:
        claims, id_token = _sso_claims()
    except (AuthlibBaseError, JoseError, requests.RequestException) as exc:
        # A refused or replayed answer (state, nonce, signature, issuer, audience, expiry), or the
        # provider out of reach: nobody is signed in.
        reason = getattr(exc, "error", None) or type(exc).__name__
        message = f"The sign-in with SSO failed ({reason}). Try again."
        return render_template("web/sign_in.html", next=target, email="", error=message, sso=True), 400
    db = get_session()
    with db.begin():
        user = sso_sign_in(db, claims)
    if user is None:
        return render_template("web/sign_in.html", next=target, email="", error=SSO_REFUSED, sso=True), 403
    _start_session(SignedIn(user))
    if id_token:
        session[_SSO_ID_TOKEN] = id_token  # the hint that ends the provider's session at sign-out
    return redirect(target)


#: The session key of the ID token of an SSO sign-in (the provider's session is ended with it).
_SSO_ID_TOKEN = "sso_id_token"


@bp.post("/sign-out")
def sign_out() -> Response:
    """End the app's session; after an SSO sign-in, the provider's too (RP-initiated logout: the
    browser goes through the provider's end-session page and comes back to the sign-in page).

    To the provider by a page that refreshes to it, not a redirect: the pages' policy allows forms
    to post to this origin only (CSP ``form-action 'self'``), which browsers apply to the redirects
    a form's answer makes too."""
    id_token = session.get(_SSO_ID_TOKEN)
    logout_user()
    session.clear()
    back = url_for("web_auth.sign_in")
    if id_token and sso_enabled():
        try:
            target = end_session_url(id_token, callback_url(back))
        except (AuthlibBaseError, requests.RequestException):
            target = None  # the provider out of reach: the app's session is ended all the same
        if target:
            return Response(render_template("web/signed_out.html", target=target), mimetype="text/html")
    return redirect(back)


@bp.route("/set-password", methods=["GET", "POST"])
def set_password() -> Any:
    """The one-time link of an invitation or a reset: choose a password, and be signed in."""
    token = request.values.get("token", "")
    db = get_session()
    if request.method == "GET":
        with db.begin():
            user = user_for_link(db, token, _now())
            if user is None:
                raise NotFound(
                    "This link is not valid: it was used, replaced or has expired. Ask an admin for a new one."
                )
            name = user.name
        return render_template("web/set_password.html", token=token, name=name, errors={}, minimum=MIN_PASSWORD)
    password = request.form.get("password", "")
    errors: dict[str, list[str]] = {}
    if password != request.form.get("confirm", ""):
        errors["confirm"] = ["The two passwords differ."]
    else:
        try:
            with db.begin():
                web_user = set_password_with_link(db, token, password, _now())
        except DomainValidationError as exc:
            errors = exc.errors or {"password": [exc.message]}
    if errors:
        with db.begin():
            user = user_for_link(db, token, _now())
            if user is None:
                raise NotFound(LINK_GONE)
            name = user.name
        page = render_template("web/set_password.html", token=token, name=name, errors=errors, minimum=MIN_PASSWORD)
        return page, 422
    forget_users()  # this worker drops the sessions of the old password at once (others within TOKEN_CACHE_SECONDS)
    _start_session(SignedIn(web_user))
    return redirect(url_for("web.watchlist"))
