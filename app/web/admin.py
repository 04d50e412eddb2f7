"""The admin console's people: users (invite, reset links, disable and enable) and API tokens (revoke)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from app.auth import actor_name, clear_token_cache, current_principal, list_tokens, revoke_token
from app.db import get_session
from app.errors import Conflict, DomainValidationError, NotFound
from app.models import Role
from app.services.audit import record
from app.services.users import SIGN_IN_ROLES, invite_user, list_sign_in_users, reset_link, set_disabled
from app.web.access import ADMIN, forget_users, page
from app.web.errors import guard

bp = guard(Blueprint("web_admin", __name__, url_prefix="/admin"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _users_page(*, errors: dict[str, Any] | None = None, link: dict[str, str] | None = None, status: int = 200) -> Any:
    session = get_session()
    with session.begin():
        users = list_sign_in_users(session)
        tokens = list_tokens(session)
    values = request.form if errors else {}
    roles = [role.value for role in SIGN_IN_ROLES]
    return render_template("web/admin_users.html", users=users, tokens=tokens, errors=errors or {}, values=values,
                           link=link, roles=roles), status  # fmt: skip


@bp.get("/users")
@page(*ADMIN)
def users() -> Any:
    """Users with their sign-in role and manager; the invite form; API tokens (never the token itself)."""
    return _users_page()


def _link_url(token: str) -> str:
    base = str(current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return base + url_for("web_auth.set_password", token=token)


@bp.post("/users")
@page(*ADMIN)
def invite() -> Any:
    """Invite a user: they get a one-time link to choose a password (shown here once, to pass on)."""
    form = {key: request.form.get(key, "").strip() for key in ("name", "email", "role", "manager")}
    errors: dict[str, list[str]] = {}
    for key in ("name", "email", "role"):
        if not form[key]:
            errors[key] = ["Required."]
    if form["role"] and form["role"] not in {r.value for r in SIGN_IN_ROLES}:
        errors["role"] = ["Must be one of: " + ", ".join(r.value for r in SIGN_IN_ROLES) + "."]
    if errors:
        return _users_page(errors=errors, status=422)
    session = get_session()
    try:
        with session.begin():
            user, token = invite_user(session, name=form["name"], email=form["email"], role=Role(form["role"]),
                                      manager=form["manager"] or None, now=_now(),
                                      hours=int(current_app.config["WEB_LINK_HOURS"]))  # fmt: skip
            name = user.name
    except DomainValidationError as exc:
        return _users_page(errors=exc.errors or {"name": [exc.message]}, status=422)
    except Conflict as exc:
        return _users_page(errors={"email" if "email" in exc.message else "name": [exc.message]}, status=409)
    except NotFound as exc:
        return _users_page(errors={"manager": [exc.message]}, status=422)
    return _users_page(link={"name": name, "url": _link_url(token), "kind": "invitation"})


@bp.post("/users/reset")
@page(*ADMIN)
def reset() -> Any:
    """A password-reset link for a user (the old password works until the new one is set)."""
    who = request.form.get("who", "").strip()
    session = get_session()
    with session.begin():
        user, token = reset_link(session, who, now=_now(), hours=int(current_app.config["WEB_LINK_HOURS"]))
        name = user.name
    return _users_page(link={"name": name, "url": _link_url(token), "kind": "password reset"})


@bp.post("/users/<int:user_id>/disable")
@page(*ADMIN)
def user_state(user_id: int) -> Any:
    """Disable a user (``disabled=true``: their sessions and tokens stop) or enable them again."""
    disabled = request.form.get("disabled", "")
    if disabled not in ("true", "false"):
        return _users_page(errors={"disabled": ["Must be true or false."]}, status=422)
    session = get_session()
    try:
        with session.begin():
            user = set_disabled(session, user_id, disabled=disabled == "true", actor_id=current_principal().user_id)
            record(session, actor=actor_name(), action="user.disable" if user.disabled else "user.enable",
                   target=f"user:{user.name}")  # fmt: skip
    except Conflict as exc:
        return _users_page(errors={"disabled": [exc.message]}, status=409)
    # This worker forgets at once; the others within TOKEN_CACHE_SECONDS (as for a revoked token).
    forget_users()
    clear_token_cache()
    return redirect(url_for("web_admin.users"))


@bp.post("/tokens/revoke")
@page(*ADMIN)
def revoke() -> Any:
    """Revoke the live API tokens starting with ``prefix`` (as the tokens table shows it)."""
    prefix = request.form.get("prefix", "").strip()
    session = get_session()
    try:
        with session.begin():
            count = revoke_token(session, prefix)
            record(session, actor=actor_name(), action="token.revoke", target=f"token:{prefix}",
                   details={"revoked": count})  # fmt: skip
    except (DomainValidationError, NotFound) as exc:
        return _users_page(
            errors={"prefix": [exc.message]}, status=422 if isinstance(exc, DomainValidationError) else 404
        )
    return redirect(url_for("web_admin.users"))
