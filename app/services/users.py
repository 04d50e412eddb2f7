"""People who sign in to the pages: passwords (argon2), invitations and password resets.

A user signs in with email and password when they have a sign-in ``role`` and a password. An
admin invites a user (name, email, role, manager): the user is created without a password and
gets a one-time link; opening it and choosing a password signs them in. A password reset is the
same link for an existing user. Only the SHA-256 of a link's token is stored, with its expiry;
using the link clears it, so it works once. Setting a password stamps ``password_set_at``, which
ends every session signed in before (see ``session_id``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from app.auth import create_user
from app.db import as_utc
from app.errors import Conflict, DomainValidationError, NotFound
from app.models import Role, User

#: Roles a person may sign in to the pages with (ingest is for machines).
SIGN_IN_ROLES = (Role.ADMIN, Role.MANAGER, Role.CSM, Role.VIEWER)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

# argon2id with the library's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes).
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when no user matches, so an unknown email costs as long as a wrong password.
    Made on first use, not at import: an argon2 hash takes about half a second, which every
    process importing the app (each CLI command) paid."""
    return _hasher.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class WebUser:
    """A signed-in person, as the pages need them."""

    id: int
    name: str
    email: str | None
    role: Role
    session_id: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_id(user: User) -> str:
    """What the session cookie holds: the user's id and when their password was set, so a new
    password (or a reset) ends the sessions opened with the old one."""
    stamp = 0 if user.password_set_at is None else int(as_utc(user.password_set_at).timestamp())
    return f"{user.id}.{stamp}"


def _web_user(user: User) -> WebUser:
    assert user.role is not None
    return WebUser(user.id, user.name, user.email, user.role, session_id(user))


#: Ends the session id of a sign-in through SSO (app/web/sso.py): such a user may have no password.
SSO_MARK = ".sso"


def load_web_user(session: Session, sid: str) -> WebUser | None:
    """The user a session cookie stands for, or None (unknown, disabled, no role, password changed)."""
    sso = sid.endswith(SSO_MARK)
    stamped = sid.removesuffix(SSO_MARK)
    user_id, _, _ = stamped.partition(".")
    if not user_id.isdigit():
        return None
    user = session.get(User, int(user_id))
    if user is None or user.disabled or user.role not in SIGN_IN_ROLES:
        return None
    if user.password_hash is None and not sso:
        return None
    if session_id(user) != stamped:
        return None
    return _sso_user(user) if sso else _web_user(user)


def _sso_user(user: User) -> WebUser:
    web = _web_user(user)
    return WebUser(web.id, web.name, web.email, web.role, web.session_id + SSO_MARK)


def sso_sign_in(session: Session, claims: dict[str, object]) -> WebUser | None:
    """The user an OpenID Connect ID token's claims stand for: the one whose email the provider
    says it verified (``email_verified``), when they may sign in; None otherwise."""
    email = claims.get("email")
    if claims.get("email_verified") is not True or not isinstance(email, str) or not email.strip():
        return None
    user = session.scalar(sa.select(User).where(sa.func.lower(User.email) == email.strip().lower()))
    if user is None or user.disabled or user.role not in SIGN_IN_ROLES:
        return None
    return _sso_user(user)


def check_password(session: Session, email: str, password: str) -> WebUser | None:
    """The user when ``email`` and ``password`` match a user who may sign in; None otherwise (the
    same answer, and about the same time, whether the email is unknown or the password wrong)."""
    user = session.scalar(sa.select(User).where(sa.func.lower(User.email) == email.strip().lower()))
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.password_hash is None or user.disabled or user.role not in SIGN_IN_ROLES:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return _web_user(user)


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise DomainValidationError(
            "The password is too short.", errors={"password": [f"Use at least {MIN_PASSWORD} characters."]}
        )
    if len(password) > MAX_PASSWORD:
        raise DomainValidationError(
            "The password is too long.", errors={"password": [f"Use at most {MAX_PASSWORD} characters."]}
        )


def _store_password(user: User, password: str, now: dt.datetime) -> None:
    _check_password_rules(password)
    user.password_hash = _hasher.hash(password)
    # Whole seconds, and later than any stamp before: the session id compares them.
    stamp = now.replace(microsecond=0)
    if user.password_set_at is not None and as_utc(user.password_set_at) >= stamp:
        stamp = as_utc(user.password_set_at) + dt.timedelta(seconds=1)
    user.password_set_at = stamp
    user.link_token_hash = None
    user.link_expires_at = None


def issue_link(session: Session, user: User, *, now: dt.datetime, hours: int) -> str:
    """A new one-time link token for ``user`` (an earlier link stops working); shown once."""
    token = secrets.token_urlsafe(32)
    user.link_token_hash = _digest(token)
    user.link_expires_at = now + dt.timedelta(hours=hours)
    session.flush()
    return token


def _find_user(session: Session, who: str) -> User:
    user = session.scalar(sa.select(User).where(sa.or_(User.name == who, sa.func.lower(User.email) == who.lower())))
    if user is None:
        raise NotFound(f"No user named {who!r} or with that email.")
    return user


def _check_role(role: Role) -> None:
    if role not in SIGN_IN_ROLES:
        allowed = ", ".join(r.value for r in SIGN_IN_ROLES)
        raise DomainValidationError("That role cannot sign in.", errors={"role": [f"Must be one of: {allowed}."]})


def invite_user(
    session: Session, *, name: str, email: str, role: Role, manager: str | None, now: dt.datetime, hours: int
) -> tuple[User, str]:
    """Create a user who will sign in with ``role``, and their one-time link token (to set a
    password). ``Conflict`` for a taken name or email; ``NotFound`` for an unknown manager."""
    _check_role(role)
    if "@" not in email or len(email) > 255:
        raise DomainValidationError("An invite needs an email.", errors={"email": ["Not a valid email address."]})
    user = create_user(session, name, email=email.strip(), manager=manager or None)
    user.role = role
    return user, issue_link(session, user, now=now, hours=hours)


def reset_link(session: Session, who: str, *, now: dt.datetime, hours: int) -> tuple[User, str]:
    """A password-reset link token for the user named ``who`` (name or email)."""
    user = _find_user(session, who)
    if user.role is None:
        raise DomainValidationError(
            "This user cannot sign in.",
            errors={"role": ["Give the user a sign-in role first (flask users set-password --role)."]},
        )
    return user, issue_link(session, user, now=now, hours=hours)


def user_for_link(session: Session, token: str, now: dt.datetime) -> User | None:
    """The user a link token belongs to while it is unused and unexpired, else None."""
    if not token:
        return None
    user = session.scalar(sa.select(User).where(User.link_token_hash == _digest(token)))
    if user is None or user.disabled or user.link_expires_at is None or as_utc(user.link_expires_at) <= now:
        return None
    return user


def set_password_with_link(session: Session, token: str, password: str, now: dt.datetime) -> WebUser:
    """Use a one-time link: set the password, end the link and older sessions, and return the user.
    ``NotFound`` when the link is unknown, used or expired; ``DomainValidationError`` for a weak password."""
    user = user_for_link(session, token, now)
    if user is None:
        raise NotFound("This link is not valid: it was used, replaced or has expired. Ask an admin for a new one.")
    _store_password(user, password, now)
    session.flush()
    return _web_user(user)


def set_password(session: Session, who: str, password: str, *, role: Role | None, now: dt.datetime) -> User:
    """Set a user's password (the CLI; the first admin), and their sign-in role when given.
    The user must exist (``flask users create``) unless ``role`` is given: then they are created."""
    user = session.scalar(sa.select(User).where(sa.or_(User.name == who, sa.func.lower(User.email) == who.lower())))
    if user is None:
        if role is None:
            raise NotFound(f"No user named {who!r} or with that email (give --role to create one).")
        user = create_user(session, who, email=who if "@" in who else None)
    if role is not None:
        _check_role(role)
        user.role = role
    if user.role is None:
        raise DomainValidationError(
            "This user has no sign-in role.", errors={"role": ["Give --role (admin, manager, csm or viewer)."]}
        )
    if not user.email and "@" in user.name:  # a CSM known by their address (accounts' owner) signs in with it
        user.email = user.name
    if not user.email:
        raise DomainValidationError("Users sign in with their email.", errors={"email": ["The user has no email."]})
    _store_password(user, password, now)
    session.flush()
    return user


def set_disabled(session: Session, user_id: int, *, disabled: bool, actor_id: int | None) -> User:
    """Disable a user (their sessions and API tokens stop working: both check ``disabled``) or enable
    them again. An admin cannot disable themselves (the last way in could go with it)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    if disabled and user.id == actor_id:
        raise Conflict("You cannot disable yourself: ask another admin.")
    user.disabled = disabled
    session.flush()
    return user


def list_sign_in_users(session: Session) -> list[dict[str, object]]:
    """Every user with what the admin page shows: role, manager, whether a password or link is set."""
    manager = sa.orm.aliased(User)
    rows = session.execute(
        sa.select(User, manager.name.label("manager"))
        .outerjoin(manager, manager.id == User.manager_id)
        .order_by(User.name)
    ).all()
    return [
        {
            "id": user.id,
            "name": user.name,
            "email": user.email,
            "role": user.role.value if user.role else None,
            "manager": manager_name,
            "disabled": user.disabled,
            "has_password": user.password_hash is not None,
            "link_expires_at": user.link_expires_at,
        }
        for user, manager_name in rows
    ]
