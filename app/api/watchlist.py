"""The at-risk watchlist and pins; band overrides and score-change attribution of one account."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from typing import Any

import orjson
import sqlalchemy as sa
from flask import Response, current_app
from marshmallow import RAISE
from sqlalchemy.orm import Session

from app.api.body import ApiBlueprint as Blueprint
from app.auth import READ, WORK, access, actor_name, book, require_in_book
from app.db import get_session
from app.schemas.watchlist import (
    OverrideInSchema,
    OverrideListSchema,
    OverrideSchema,
    PinInSchema,
    PinSchema,
    ScoreChangeQuerySchema,
    ScoreChangeSchema,
    WatchlistPageSchema,
    WatchlistQuerySchema,
)
from app.services.watchlist.cache import PageCache, change_log_exists, prune_changes
from app.services.watchlist.listing import WatchlistFilters, list_watchlist, team_owners
from app.services.watchlist.overrides import create_override, list_overrides, revoke_override
from app.services.watchlist.pins import pin_account, unpin_account
from app.services.watchlist.score_change import score_change

bp = Blueprint("watchlist", __name__, url_prefix="/api/v1/watchlist", description="The at-risk watchlist and pins")
accounts_bp = Blueprint(
    "account_overrides",
    __name__,
    url_prefix="/api/v1/accounts",
    description="Band overrides and score-change attribution of one account",
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@bp.get("")
@access(*READ)
# An instance, not the class: webargs would build a new schema on every request (a tenth of
# the default page's Python time).
@bp.arguments(WatchlistQuerySchema(), location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, WatchlistPageSchema)
def list_(
    sort: str, limit: int, scope: str, cursor: str | None = None, team: str | None = None, **filters: Any
) -> Response:
    """Accounts that need attention: poor band, average and falling, flagged by a play, or pinned.

    Falling: down ``HS_WATCHLIST_FALLING_7D_POINTS`` (default 2) or more over 7 days, or
    ``score_change_30d <= -5``. Bands are effective bands (a
    live override wins). Keyset pagination: pass ``next_cursor`` back as ``cursor``.
    """
    session = get_session()
    now = _now()
    for attempt in (1, 2):
        try:
            body = page_body(
                session, now, sort=sort, limit=limit, scope=scope, cursor=cursor, team=team, filters=filters
            )
            break
        except sa.exc.DBAPIError as error:
            # A connection lost in a way its socket did not show at checkout (see app.db): the
            # pool has dropped it (and every connection as old), and a read is safe to run again.
            if attempt == 2 or not error.connection_invalidated:
                raise
    return Response(body, mimetype="application/json")


#: Renders a watchlist page's items (session, items, next cursor, the owners the page is limited to)
#: into the body to answer and keep.
Render = Callable[[Session, list[dict[str, Any]], str | None, tuple[str, ...] | None], bytes]


def page_body(
    session: Session,
    now: dt.datetime,
    *,
    sort: str,
    limit: int,
    scope: str,
    cursor: str | None,
    team: str | None,
    filters: dict[str, Any],
    render: Render | None = None,
    variant: Hashable = None,
) -> bytes:
    """The page's JSON: from this worker's cache when provably current (app/services/watchlist/cache.py),
    else read (and kept).

    ``render`` turns the page's items into another body kept under the same stamp, in the same
    snapshot (the watchlist page, app/web/pages.py, renders its HTML with it); ``variant`` tells
    its bodies apart in the cache (whatever else the body depends on: the user, the page's path)."""

    falling_7d_points = current_app.config.get("WATCHLIST_FALLING_7D_POINTS", 2)

    def read() -> bytes:
        items, next_cursor = list_watchlist(
            session,
            filters=WatchlistFilters(**filters, owners=owners),
            sort=sort,
            limit=limit,
            cursor=cursor,
            now=now,
            falling_7d_points=falling_7d_points,
        )
        if render is not None:
            return render(session, items, next_cursor, owners)
        # The items are JSON-ready (tests check them against the schema): dumping 50 rows through
        # marshmallow cost more than the rest of the request, and the standard library's encoder of
        # a ~50 kB body ~0.5 ms more; orjson writes the same JSON (UTF-8, not \u escapes) in a tenth.
        return orjson.dumps({"items": items, "sort": sort, "limit": limit, "next_cursor": next_cursor})

    with session.begin():
        # Read-only, one statement at a time: in autocommit, no BEGIN and COMMIT round trips.
        connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        owners = book(session, scope, filters.get("owner") or team)
        if team is not None:
            owners = team_owners(session, team)
        cache = _cache(connection)
        if cache is None:
            return read()
        key = (
            sort,
            limit,
            cursor,
            team,
            owners,
            tuple(sorted(filters.items())),
            now.date(),
            falling_7d_points,
            variant,
        )
        if (body := cache.get(connection, key, now)) is not None:
            return body
    with session.begin():
        # One snapshot for the page and its stamp: the stamp says what the page has seen.
        stamp = cache.stamp(session.connection(execution_options={"isolation_level": "REPEATABLE READ"}), now)
        body = read()
    cache.put(key, stamp, body)
    if cache.prune_due():
        with session.begin():
            prune_changes(session.connection(), now)
    return body


def _cache(connection: sa.Connection) -> PageCache | None:
    """This app's page cache; None when off (``WATCHLIST_CACHE_ENTRIES`` 0, SQLite, or no change log)."""
    extensions = current_app.extensions
    if "watchlist_cache" not in extensions:
        size = current_app.config["WATCHLIST_CACHE_ENTRIES"]
        extensions["watchlist_cache"] = PageCache(size) if size > 0 and change_log_exists(connection) else None
    cache: PageCache | None = extensions["watchlist_cache"]
    return cache


@bp.post("/<int:account_id>")
@access(*WORK)
@bp.arguments(PinInSchema)
@bp.response(201, PinSchema)
@bp.alt_response(404, description="No such account")
@bp.alt_response(409, description="The account is already pinned")
def pin(body: dict[str, Any], account_id: int) -> dict[str, Any]:
    """Pin an account on the watchlist with a reason (and an optional expiry); audited."""
    session = get_session()
    with session.begin():
        require_in_book(session, account_id=account_id)
        return pin_account(
            session,
            account_id,
            reason=body["reason"].strip(),
            expires_at=body.get("expires_at"),
            actor=actor_name(),
            now=_now(),
        )


@bp.delete("/<int:account_id>")
@access(*WORK)
@bp.response(200, PinSchema)
@bp.alt_response(404, description="No such account, or it has no live pin")
def unpin(account_id: int) -> dict[str, Any]:
    """End the account's live pin (kept with who removed it and when); audited."""
    session = get_session()
    with session.begin():
        require_in_book(session, account_id=account_id)
        return unpin_account(session, account_id, actor=actor_name(), now=_now())


@accounts_bp.post("/<int:account_id>/override")
@access(*WORK)
@accounts_bp.arguments(OverrideInSchema)
@accounts_bp.response(201, OverrideSchema)
@accounts_bp.alt_response(404, description="No such account")
@accounts_bp.alt_response(409, description="A live override exists: revoke it first")
def override(body: dict[str, Any], account_id: int) -> dict[str, Any]:
    """Override the account's band until ``expires_at`` (at most 180 days), with a mandatory reason.

    The computed score and history are untouched; after the expiry the computed band applies
    again by itself. Audited.
    """
    session = get_session()
    with session.begin():
        require_in_book(session, account_id=account_id)
        return create_override(
            session,
            account_id,
            band=body["band"],
            reason=body["reason"].strip(),
            expires_at=body["expires_at"],
            actor=actor_name(),
            now=_now(),
        )


@accounts_bp.delete("/<int:account_id>/override")
@access(*WORK)
@accounts_bp.response(200, OverrideSchema)
@accounts_bp.alt_response(404, description="No such account, or no live override")
def revoke(account_id: int) -> dict[str, Any]:
    """Revoke the account's live override; audited."""
    session = get_session()
    with session.begin():
        require_in_book(session, account_id=account_id)
        return revoke_override(session, account_id, actor=actor_name(), now=_now())


@accounts_bp.get("/<int:account_id>/overrides")
@access(*READ)
@accounts_bp.response(200, OverrideListSchema)
@accounts_bp.alt_response(404, description="No such account")
def overrides(account_id: int) -> dict[str, Any]:
    """Every override of the account, newest first: live, expired or revoked (the audit trail)."""
    session = get_session()
    with session.begin():
        return {"items": list_overrides(session, account_id, _now())}


@accounts_bp.get("/<int:account_id>/score-change")
@access(*READ)
@accounts_bp.arguments(ScoreChangeQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@accounts_bp.response(200, ScoreChangeSchema)
@accounts_bp.alt_response(404, description="No such account, or no score row on one of the days")
def score_change_(account_id: int, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Explain the score change between two days per measure: the data effect (to-data minus
    from-data, both under the from day's config) and the config effect (to-data under the to
    day's config minus under the from day's config). They add up to the change."""
    session = get_session()
    with session.begin():
        return score_change(session, account_id, start, end)
