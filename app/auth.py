"""Bearer-token authentication and role-based access for every ``/api/v1`` route.

Each view declares who may call it with ``@access(...)``; a ``before_request`` hook checks the
token and the role before any view runs. A route under ``/api/v1`` that declares nothing is
refused to everyone (fail closed), and a test walks the URL map so none ships that way. Only
the OpenAPI document and its interactive page are public (they describe the API, hold no data).

Successful token lookups are cached per process for ``TOKEN_CACHE_SECONDS`` (5 s by default,
``HS_TOKEN_CACHE_SECONDS``; 0 turns it off): revoking a token or disabling a user from another
process takes effect within that time, not at once (see docs/watchlist.md, "Authentication").

The role matrix:

=========  =====================================================================================
admin      everything
manager    read everything (lists default to the team's book); change the team's accounts only
csm        read everything (lists default to the own book); change the own accounts only
viewer     read everything, change nothing
ingest     push data (``/api/v1/ingest/...``) and read the quarantine; nothing else
=========  =====================================================================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from apispec import BasePlugin
from flask import Flask, current_app, g, has_app_context, request
from sqlalchemy.orm import Session

from app.db import get_session
from app.errors import Conflict, DomainError, DomainValidationError, NotFound
from app.limits import check_auth_failures, count_auth_failure
from app.models import Account, ApiToken, Role, Task, User

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_PREFIX = "hs_"
API_PREFIX = "/api/v1/"
#: Endpoints anyone may call: the API's own documentation.
PUBLIC_ENDPOINTS = frozenset({"api-docs.openapi_json", "api-docs.openapi_swagger_ui"})

READ = (Role.ADMIN, Role.MANAGER, Role.CSM, Role.VIEWER)
WORK = (Role.ADMIN, Role.MANAGER, Role.CSM)
ADMIN = (Role.ADMIN,)
INGEST = (Role.ADMIN, Role.INGEST)


class Unauthorized(DomainError):
    code = 401


class Forbidden(DomainError):
    code = 403


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's user and role."""

    user_id: int
    name: str
    email: str | None
    role: Role
    token_id: int

    @property
    def identities(self) -> tuple[str, ...]:
        """What an account's ``owner`` holds when this user owns it."""
        return (self.name,) if not self.email else (self.name, self.email)


def access(*roles: Role) -> Callable[[F], F]:
    """Declare the roles that may call a view (place it below the route decorator)."""

    def mark(view: F) -> F:
        view._access_roles = frozenset(roles)  # type: ignore[attr-defined]
        return view

    return mark


def roles_of(view: Callable[..., Any] | None) -> frozenset[Role] | None:
    return getattr(view, "_access_roles", None)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # Segment's HTTP destinations send the write key as the Basic-auth user name.
    if scheme.lower() == "basic" and request.authorization and request.authorization.username:
        return request.authorization.username
    return None


#: Successful token lookups are kept in the process ``TOKEN_CACHE_SECONDS`` (config.py; 0 turns the
#: cache off). A request with a cached token does no database work to authenticate. The trade-off:
#: revoking a token or disabling its user takes effect in each worker process within that time,
#: not at once. A token's expiry is still checked on every request; unknown or refused tokens are
#: never cached.
_TOKEN_CACHE_MAX = 4096


def _token_cache() -> dict[str, tuple[float, Principal, dt.datetime | None]]:
    """The app's cache: token hash -> (monotonic deadline, principal, token expiry)."""
    cache: dict[str, tuple[float, Principal, dt.datetime | None]] = current_app.extensions.setdefault("token_cache", {})
    return cache


def clear_token_cache(app: Flask | None = None) -> None:
    """Forget every cached token lookup (of ``app``, else of the current app)."""
    (app or current_app).extensions.pop("token_cache", None)


def _lookup(session: Session, digest: str) -> tuple[Principal, dt.datetime | None] | None:
    # Plain columns, one indexed lookup: ORM objects cost more than the query. Revoked tokens and
    # disabled users never match.
    row = session.execute(
        sa.select(ApiToken.token_hash, ApiToken.expires_at, ApiToken.role, ApiToken.id, User.id, User.name, User.email)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None), ~User.disabled)
    ).first()
    if row is None:
        return None
    stored, expires, role, token_id, user_id, name, email = row
    # Constant-time comparison of the hashes, for good measure (the lookup is by hash already).
    if not hmac.compare_digest(stored, digest):
        return None
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    return Principal(user_id, name, email, Role(role), token_id), expires


def authenticate(session: Session, token: str, now: dt.datetime) -> Principal | None:
    """The principal a token stands for, or None when it is unknown, revoked, expired or disabled
    (always read from the database: the request hook adds the cache)."""
    found = _lookup(session, hash_token(token))
    if found is None:
        return None
    principal, expires = found
    return None if expires is not None and expires <= now else principal


def _authenticate_cached(token: str, now: dt.datetime) -> Principal | None:
    """``authenticate`` through the per-process cache of successful lookups (see ``TOKEN_CACHE_SECONDS``)."""
    digest = hash_token(token)
    ttl = float(current_app.config["TOKEN_CACHE_SECONDS"])
    cache = _token_cache()
    clock = time.monotonic()
    hit = cache.get(digest)
    if hit is not None and hit[0] > clock:
        _, principal, expires = hit
    else:
        session = get_session()
        with session.begin():
            found = _lookup(session, digest)
        if found is None:
            cache.pop(digest, None)
            return None
        principal, expires = found
        if ttl > 0:
            if len(cache) >= _TOKEN_CACHE_MAX:
                cache.clear()
            cache[digest] = (clock + ttl, principal, expires)
    return None if expires is not None and expires <= now else principal


def _check_access() -> None:
    """The ``before_request`` hook: authenticate and authorize every ``/api/v1`` request."""
    if not request.path.startswith(API_PREFIX) or request.endpoint in PUBLIC_ENDPOINTS:
        return
    if request.endpoint is None:  # no such route: let the 404/405 handlers answer
        return
    roles = roles_of(current_app.view_functions.get(request.endpoint))
    token = bearer_token()
    if token is None:
        raise Unauthorized("Send an API token: 'Authorization: Bearer <token>'.")
    check_auth_failures()  # 429 for an address that guessed too many tokens lately
    principal = _authenticate_cached(token, dt.datetime.now(dt.UTC))
    if principal is None:
        count_auth_failure()
        raise Unauthorized("The API token is unknown, revoked or expired.")
    g.principal = principal
    if roles is None:
        raise Forbidden("This route declares no access rule, so it is closed to everyone.")
    if principal.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"The {principal.role.value} role may not do this (allowed: {allowed}).")


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:  # pragma: no cover - only reachable from a route without access control
        raise Unauthorized("Not authenticated.")
    return principal


def actor_name() -> str:
    """Who to record as the author of a change made by this request."""
    return current_principal().name


def require_may_name_closer(by: str | None) -> str:
    """Who to record as having closed a task: ``by`` when the caller may name someone else (an
    admin or a manager), else the caller; a CSM naming another person is ``Forbidden``."""
    principal = current_principal()
    if by is None or by in principal.identities:
        return principal.name if by is None else by
    if principal.role is Role.CSM:
        raise Forbidden("A CSM records only themself as the one who closed a task: leave out 'by'.")
    return by


def default_owners(session: Session) -> tuple[str, ...] | None:
    """The book a list shows when the caller names no owner: a CSM's own accounts, a manager's
    team (their CSMs' and their own); None (everything) for the other roles."""
    principal = current_principal()
    if principal.role is Role.CSM:
        return principal.identities
    if principal.role is Role.MANAGER:
        team = session.execute(
            sa.select(User.name, User.email).where(User.manager_id == principal.user_id, ~User.disabled)
        ).all()
        owners = list(principal.identities)
        for name, email in team:
            owners.append(name)
            if email:
                owners.append(email)
        return tuple(owners)
    return None


def require_in_book(session: Session, *, account_id: int | None = None, task_id: int | None = None) -> None:
    """Changes to an account (pins, overrides, its tasks): a CSM only in their own book, a manager in
    their team's; ``Forbidden`` otherwise. An unknown account or task passes (the change says 404)."""
    owners = default_owners(session)
    if owners is None:
        return
    if task_id is not None:
        account_id = session.scalar(sa.select(Task.account_id).where(Task.id == task_id))
    if account_id is None:
        return
    row = session.execute(sa.select(Account.owner).where(Account.id == account_id)).first()
    if row is not None and row.owner not in owners:
        who = "your own accounts" if current_principal().role is Role.CSM else "your team's accounts"
        raise Forbidden(f"Account {account_id} is not in your book: you may change {who} only.")


def book(session: Session, scope: str, owner: str | None) -> tuple[str, ...] | None:
    """The owners a list is limited to: the caller's book for ``scope="book"`` when no owner
    filter is given (None: no limit)."""
    if scope == "all" or owner is not None:
        return None
    return default_owners(session)


# --- users and tokens (the CLI) --------------------------------------------------------------------


def check_time_zone(time_zone: str) -> str:
    """``time_zone`` if it is an IANA zone name this machine knows; ``DomainValidationError`` otherwise."""
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise DomainValidationError(
            f"Unknown time zone {time_zone!r}.",
            errors={"time_zone": ["Use an IANA time zone name such as Europe/Berlin or UTC."]},
        ) from None
    return time_zone


def set_time_zone(session: Session, name: str, time_zone: str) -> User:
    """Set the time zone a user's messages show times in."""
    user = session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"No user named {name!r}.")
    user.time_zone = check_time_zone(time_zone)
    session.flush()
    return user


def create_user(
    session: Session, name: str, *, email: str | None = None, manager: str | None = None, time_zone: str = "UTC"
) -> User:
    """A new user; ``manager`` names an existing user. Raises ``Conflict`` for a taken name or email."""
    check_time_zone(time_zone)
    name = name.strip()
    if not name:
        raise DomainValidationError("A user needs a name.", errors={"name": ["Must not be empty."]})
    if session.scalar(sa.select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"A user named {name!r} exists.")
    if email and session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"A user with email {email!r} exists.")
    manager_id = None
    if manager:
        manager_id = session.scalar(sa.select(User.id).where(User.name == manager))
        if manager_id is None:
            raise NotFound(f"No user named {manager!r} (the manager).")
    user = User(name=name, email=email or None, manager_id=manager_id, time_zone=time_zone)
    session.add(user)
    session.flush()
    return user


def create_token(
    session: Session,
    user_name: str,
    role: Role,
    *,
    description: str = "",
    expires_in_days: int | None = None,
    email: str | None = None,
) -> tuple[User, str]:
    """A new token for ``user_name`` (created when missing). Returns the user and the token,
    which is shown once: only its hash is stored."""
    user = session.scalar(sa.select(User).where(User.name == user_name.strip()))
    if user is None:
        user = create_user(session, user_name, email=email)
    if user.disabled:
        raise Conflict(f"User {user.name!r} is disabled.")
    token = new_token()
    expires = None
    if expires_in_days is not None:
        if expires_in_days < 1:
            raise DomainValidationError(
                "A token must live at least one day.", errors={"expires_in_days": ["Must be at least 1."]}
            )
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_in_days)
    session.add(
        ApiToken(
            user_id=user.id,
            role=role,
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            description=description,
            expires_at=expires,
        )
    )
    session.flush()
    return user, token


def revoke_token(session: Session, prefix: str) -> int:
    """Revoke every live token starting with ``prefix`` (as shown by ``flask tokens list``)."""
    if len(prefix) < len(TOKEN_PREFIX) + 4:
        raise DomainValidationError("Give at least the first 7 characters of the token.")
    result = session.execute(
        sa.update(ApiToken)
        .where(ApiToken.prefix.startswith(prefix[: len(TOKEN_PREFIX) + 6]), ApiToken.revoked_at.is_(None))
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )
    count: int = result.rowcount  # type: ignore[attr-defined]
    if not count:
        raise NotFound(f"No live token starts with {prefix!r}.")
    if has_app_context():  # this process forgets at once; the others within TOKEN_CACHE_SECONDS
        clear_token_cache()
    return count


def list_users(session: Session) -> list[Any]:
    """Every user by name: (name, email, manager's name, disabled, live tokens)."""
    manager = sa.orm.aliased(User)
    live = (
        sa.select(sa.func.count()).where(ApiToken.user_id == User.id, ApiToken.revoked_at.is_(None)).scalar_subquery()
    )
    rows = session.execute(
        sa.select(User.name, User.email, manager.name, User.disabled, live)
        .outerjoin(manager, manager.id == User.manager_id)
        .order_by(User.name)
    ).all()
    return list(rows)


def list_tokens(session: Session) -> list[Any]:
    """Every token by user and age: (prefix, user name, role, description, expires, revoked);
    never the token itself, which is not stored."""
    rows = session.execute(
        sa.select(ApiToken.prefix, User.name, ApiToken.role, ApiToken.description, ApiToken.expires_at,
                  ApiToken.revoked_at)
        .join(User, User.id == ApiToken.user_id)
        .order_by(User.name, ApiToken.created_at)
    ).all()  # fmt: skip
    return list(rows)


# --- OpenAPI -------------------------------------------------------------------------------------------


class AccessDocPlugin(BasePlugin):
    """Documents the bearer scheme, and on every protected operation the 401, 403 and 429 answers
    and the roles that may call it."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        rule = kwargs.get("rule")
        if self.app is None or rule is None or not operations:
            return
        roles = roles_of(self.app.view_functions.get(rule.endpoint))
        for operation in operations.values():
            if rule.endpoint in PUBLIC_ENDPOINTS:
                operation["security"] = []
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", "UNAUTHORIZED")
            responses.setdefault("403", "FORBIDDEN")
            responses.setdefault("429", "TOO_MANY_REQUESTS")
            if roles:
                who = ", ".join(sorted(r.value for r in roles))
                operation["description"] = (operation.get("description", "") + f"\n\nRoles: {who}.").strip()


def init_auth(app: Flask, api: Any, plugin: AccessDocPlugin) -> None:
    plugin.app = app
    app.before_request(_check_access)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for name, text in (
        ("UNAUTHORIZED", "No valid API token"),
        ("FORBIDDEN", "The token's role may not do this"),
        (
            "TOO_MANY_REQUESTS",
            "Too many failed authentications from this address, or (for previews, activations, "
            "suggestions, trainings and quarantine retries) too many calls by this user; try again later",
        ),
    ):
        api.spec.components.response(name, {"description": text, "content": {"application/json": {"schema": "Error"}}})
