"""The at-risk watchlist: which accounts need attention and why (pins put on it by hand: ``pins.py``).

An account (not churned) is on the watchlist when any of these holds (its ``reasons``):

- ``poor_band``: its effective band is poor;
- ``falling_trend``: its effective band is average and its score is falling: down by at least
  ``falling_7d_points`` over 7 days (``HS_WATCHLIST_FALLING_7D_POINTS``, default 2: a dip of a
  fraction of a point is noise) or by 5 points or more over 30 days (``score_change_30d <= -5``);
- ``play:<play id>``: an open run of a play with the watchlist flag;
- ``pinned``: a live pin (not removed, not expired).

The *effective band* is the live override's band when there is one, else the computed band:
an override says "the score is wrong here", so it moves the account on or off the list.

A page is one SQL query over ``accounts``, ``latest_scores``, ``watchlist_pins``,
``band_overrides`` (outer joins on the live rows) and ``play_runs`` (an ``EXISTS``), plus one
query for the page's open play runs and their open task counts, plus one for the config
versions the page's drivers need. It never reads score history. Pagination is by keyset: the
cursor is the last row's sort key and account id (base64 JSON), so a page costs the same at any
depth and rows are never skipped or repeated while paging.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from app.db import as_utc
from app.errors import DomainValidationError
from app.models import (
    Account,
    AccountStatus,
    BandOverride,
    ChurnModel,
    LatestScore,
    PlayDefinition,
    PlayRun,
    PlayRunStatus,
    ScoringConfigVersion,
    Task,
    TaskStatus,
    User,
    WatchlistPin,
)
from app.services.churn_state import churn_note, has_churn_model
from app.services.scoring_config.active import load_models
from scoring.bands import Band
from scoring.health import compute_health
from scoring.model import ScoringModel
from scoring.stage import STAGE_CODE

FALLING_7D_POINTS = 2.0  # default: a fall of this many points or more over 7 days is falling
FALLING_30D = -5.0  # score_change_30d at or below this is falling
TOP_DRIVERS = 3

_NO_SCORE = 1000.0  # sorts accounts without a score after every real score (0-100)
_NO_CHANGE = 1e9
_NO_EXPECTED = -1.0  # below every expected ARR at risk (>= 0): sorts accounts without one last
_NO_RENEWAL = dt.date(9999, 12, 31)


@dataclass(frozen=True, slots=True)
class Sort:
    name: str
    key: Any  # a column or SQL expression
    descending: bool
    kind: str  # how the key travels in a cursor: "float" or "date"


def _sorts() -> dict[str, Sort]:
    return {
        "arr_at_risk": Sort("arr_at_risk", Account.arr, True, "float"),
        "score": Sort("score", sa.func.coalesce(LatestScore.score, _NO_SCORE), False, "float"),
        "change": Sort("change", sa.func.coalesce(LatestScore.score_change_7d, _NO_CHANGE), False, "float"),
        # Probability x ARR from the churn model, largest first; accounts without one last.
        "expected_arr_at_risk": Sort(
            "expected_arr_at_risk", sa.func.coalesce(LatestScore.expected_arr_at_risk, _NO_EXPECTED), True, "float"
        ),
        "days_to_renewal": Sort(
            "days_to_renewal", sa.func.coalesce(Account.renewal_date, sa.literal(_NO_RENEWAL, sa.Date)), False, "date"
        ),
    }


SORTS = _sorts()
SORT_NAMES = tuple(SORTS)


@dataclass(frozen=True, slots=True)
class WatchlistFilters:
    owner: str | None = None
    owners: tuple[str, ...] | None = None  # the caller's book or the team (see app.auth.default_owners)
    segment: str | None = None
    stage: str | None = None
    band: str | None = None  # the effective band
    renewal_within_days: int | None = None
    name: str | None = None  # part of the account's name, any case


# --- cursors ------------------------------------------------------------------------------------------


def encode_cursor(sort: Sort, key: Any, account_id: int) -> str:
    value = key.isoformat() if sort.kind == "date" else float(key)
    raw = json.dumps([sort.name, value, account_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, int]:
    """The (key, account id) a cursor holds; ``DomainValidationError`` when it is not one of ours
    or was made for another sort."""
    bad = DomainValidationError(
        "The cursor is not valid: pass next_cursor from a previous page unchanged, with the same sort.",
        errors={"cursor": ["Not a valid cursor for this sort."]},
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, value, account_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise bad from None
    if name != sort.name or type(account_id) is not int:
        raise bad
    try:
        if sort.kind == "date":
            return dt.date.fromisoformat(value), account_id
        if type(value) not in (int, float) or not np.isfinite(value):
            raise bad
        return float(value), account_id
    except (TypeError, ValueError):
        raise bad from None


# --- the list -----------------------------------------------------------------------------------------


def team_owners(session: Session, team: str) -> tuple[str, ...]:
    """The owners of a team's book: the manager named ``team`` and the users they manage (names
    and emails, as an account's ``owner`` holds them). ``DomainValidationError`` for an unknown name."""
    manager = session.execute(sa.select(User.id, User.name, User.email).where(User.name == team)).first()
    if manager is None:
        raise DomainValidationError(f"No user named {team!r} (team).", errors={"team": ["Unknown manager."]})
    owners = [manager.name] + ([manager.email] if manager.email else [])
    for name, email in session.execute(sa.select(User.name, User.email).where(User.manager_id == manager.id)):
        owners.append(name)
        if email:
            owners.append(email)
    return tuple(owners)


def list_watchlist(
    session: Session,
    *,
    filters: WatchlistFilters,
    sort: str = "arr_at_risk",
    limit: int = 50,
    cursor: str | None = None,
    now: dt.datetime,
    falling_7d_points: float = FALLING_7D_POINTS,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the watchlist and the cursor of the next page (None at the end).

    Items are JSON-ready (ISO dates, enum values): the hot path skips schema serialization.
    ``falling_7d_points``: the least 7-day fall that makes an average account ``falling_trend``.
    """
    order = SORTS[sort]
    today = now.date()
    falling_7d = -abs(float(falling_7d_points))
    params = _params(filters, now, falling_7d)
    params["page_limit"] = limit + 1
    if cursor is not None:
        params["cursor_key"], params["cursor_id"] = decode_cursor(cursor, order)
    connection = session.connection()
    statement = _statement(sort, frozenset(params), connection.dialect.name)
    # Through the connection: the statement selects columns, not entities, so the ORM layer adds nothing.
    rows = connection.execute(statement, params).all()
    more = len(rows) > limit
    rows = rows[:limit]
    drivers = _top_drivers(session, rows)
    # A newest model this version ignores (an older format) is named in the notes; looked up only
    # when a row on the page lacks a probability while a model exists.
    model: bool | str = any(row.churn_probability is None and row.churn_model is not None for row in rows) and (
        has_churn_model(session)
    )
    items = [_item(row, _open_runs(row.runs), drivers.get(row.id, []), today, falling_7d, model=model) for row in rows]
    next_cursor = encode_cursor(order, rows[-1].sort_key, rows[-1].id) if more and rows else None
    return items, next_cursor


def watchlist_totals(
    session: Session, *, filters: WatchlistFilters, now: dt.datetime, falling_7d_points: float = FALLING_7D_POINTS
) -> dict[str, Any]:
    """How many accounts the watchlist holds under ``filters``, their ARR and the expected ARR at
    risk (churn probability x ARR, where the churn model gave one): one aggregate query."""
    params = _params(filters, now, -abs(float(falling_7d_points)))
    statement = _totals_statement(frozenset(params))
    accounts, arr, expected = session.connection().execute(statement, params).one()
    return {"accounts": int(accounts or 0), "arr": float(arr or 0), "expected_arr_at_risk": float(expected or 0)}


def _params(filters: WatchlistFilters, now: dt.datetime, falling_7d: float) -> dict[str, Any]:
    """The bound parameters of the filters given (their names say which conditions apply), and the
    7-day fall (negative points) that lists an average account."""
    params: dict[str, Any] = {"now": now, "falling_7d": falling_7d}
    if filters.owner is not None:
        params["owner"] = filters.owner
    if filters.owners is not None:
        params["owners"] = list(filters.owners)
    if filters.segment is not None:
        params["segment"] = filters.segment
    if filters.stage is not None:
        params["stage"] = filters.stage
    if filters.band is not None:
        params["band"] = filters.band
    if filters.renewal_within_days is not None:
        params["renewal_by"] = now.date() + dt.timedelta(days=filters.renewal_within_days)
    if filters.name:
        # LIKE's own characters are escaped: a search for "50%" finds names holding "50%".
        escaped = filters.name.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["name_like"] = f"%{escaped}%"
    return params


#: The page query's columns, in order: ``_item`` and ``_top_drivers`` unpack rows by position.
_COLUMNS = (
    "id", "name", "owner", "segment", "arr", "renewal_date", "score", "band", "stage", "completeness",
    "score_change_7d", "score_change_30d", "config_version", "measure_values", "config_epoch",
    "pin_reason", "pin_author", "pin_created_at", "pin_expires_at", "pin_id", "override_band", "override_reason",
    "override_author", "override_created_at", "override_expires_at", "churn_probability", "expected_arr_at_risk",
    "churn_model", "sort_key", "runs",
)  # fmt: skip


@functools.lru_cache(maxsize=512)
def _statement(sort: str, present: frozenset[str], dialect: str) -> Any:  # a Select
    """The page query for a sort, the set of parameters given and the SQL dialect (built once per
    shape: values are bound parameters, so SQLAlchemy's compiled cache and the server's prepared
    plans apply)."""
    order = SORTS[sort]
    pin = aliased(WatchlistPin, name="pin")
    override = aliased(BandOverride, name="override")
    query = _listed(sa.select(*_page_columns(pin, override), order.key.label("sort_key")), pin, override, present)
    query = _keyset(query, order, present)
    # The limit is rendered inline: as a parameter, a server-side prepared statement's generic plan
    # would not know it is small and would sort every account instead of walking an index.
    page = query.limit(sa.bindparam("page_limit", type_=sa.Integer, literal_execute=True)).cte("page")
    runs = _runs(dialect, page)
    outer = sa.select(page, runs.c.runs).select_from(page.outerjoin(runs, runs.c.account_id == page.c.id))
    if tuple(outer.selected_columns.keys()) != _COLUMNS:  # _item and _top_drivers read rows by position
        raise RuntimeError(f"watchlist columns moved: {outer.selected_columns.keys()}")
    if order.descending:
        return outer.order_by(page.c.sort_key.desc(), page.c.id.desc())
    return outer.order_by(page.c.sort_key.asc(), page.c.id.asc())


@functools.lru_cache(maxsize=128)
def _totals_statement(present: frozenset[str]) -> Any:  # a Select
    """The count, ARR and expected ARR at risk of the whole (filtered) watchlist."""
    pin = aliased(WatchlistPin, name="pin")
    override = aliased(BandOverride, name="override")
    columns = (
        sa.func.count(Account.id),
        sa.func.sum(Account.arr),
        sa.func.sum(LatestScore.expected_arr_at_risk),
    )
    return _listed(sa.select(*columns), pin, override, present)


def _listed(query: Any, pin: Any, override: Any, present: frozenset[str]) -> Any:
    """``query`` over the accounts on the watchlist (with their live pin and override), filtered."""
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    effective_band = sa.func.coalesce(override.band, LatestScore.band)
    query = (
        query.select_from(Account)
        .outerjoin(LatestScore, LatestScore.account_id == Account.id)
        .outerjoin(
            pin,
            sa.and_(
                pin.account_id == Account.id,
                pin.removed_at.is_(None),
                sa.or_(pin.expires_at.is_(None), pin.expires_at > now),
            ),
        )
        .outerjoin(
            override,
            sa.and_(override.account_id == Account.id, override.revoked_at.is_(None), override.expires_at > now),
        )
        .where(Account.status != AccountStatus.CHURNED, _on_watchlist(effective_band, pin))
    )
    return _filtered(query, present, effective_band)


def _page_columns(pin: Any, override: Any) -> list[Any]:
    """The page query's columns up to ``sort_key`` (see ``_COLUMNS``), given the live pin and override."""
    return [
        Account.id,
        Account.name,
        Account.owner,
        Account.segment,
        Account.arr,
        Account.renewal_date,
        LatestScore.score,
        LatestScore.band,
        LatestScore.stage,
        LatestScore.completeness,
        LatestScore.score_change_7d,
        LatestScore.score_change_30d,
        LatestScore.config_version,
        # As JSON text: the top drivers are cached by it, so a page read again parses nothing.
        sa.cast(LatestScore.measure_values, sa.Text).label("measure_values"),
        # The newest config version's creation time, which keys the model and drivers caches:
        # uncorrelated, so computed once per query (an InitPlan), where each row's own version's
        # time was a subquery per row (0.1 ms of a 1.3 ms page on PostgreSQL).
        sa.select(sa.func.max(ScoringConfigVersion.created_at)).scalar_subquery().label("config_epoch"),
        pin.reason.label("pin_reason"),
        pin.author.label("pin_author"),
        pin.created_at.label("pin_created_at"),
        pin.expires_at.label("pin_expires_at"),
        pin.id.label("pin_id"),
        override.band.label("override_band"),
        override.reason.label("override_reason"),
        override.author.label("override_author"),
        override.created_at.label("override_created_at"),
        override.expires_at.label("override_expires_at"),
        LatestScore.churn_probability,
        LatestScore.expected_arr_at_risk,
        # Whether any churn model exists (for the note of a null probability): uncorrelated, so
        # computed once per query, not a round trip of its own.
        sa.select(sa.func.max(ChurnModel.version)).scalar_subquery().label("churn_model"),
    ]


def _on_watchlist(effective_band: Any, pin: Any) -> Any:
    """The watchlist's reasons as one condition: poor band, average and falling, pinned, or a flagged play."""
    fall_7d = sa.and_(
        LatestScore.score_change_7d < 0, LatestScore.score_change_7d <= sa.bindparam("falling_7d", type_=sa.Float)
    )
    falling = sa.or_(fall_7d, LatestScore.score_change_30d <= FALLING_30D)
    # A scalar subquery, not EXISTS: PostgreSQL turns an EXISTS under OR into a hashed subplan that
    # reads every open watchlist run, where one index probe per row scanned is what a page needs.
    flagged = (
        sa.select(PlayRun.id)
        .where(PlayRun.account_id == Account.id, PlayRun.status == PlayRunStatus.OPEN, PlayRun.watchlist)
        .limit(1)
        .scalar_subquery()
    )
    return sa.or_(
        effective_band == Band.POOR.value,
        sa.and_(effective_band == Band.AVERAGE.value, falling),
        pin.id.is_not(None),
        flagged.is_not(None),
    )


def _filtered(query: Any, present: frozenset[str], effective_band: Any) -> Any:
    """``query`` narrowed by the filters given (their values are bound parameters)."""
    if "owner" in present:
        query = query.where(Account.owner == sa.bindparam("owner"))
    if "owners" in present:
        query = query.where(Account.owner.in_(sa.bindparam("owners", expanding=True)))
    if "segment" in present:
        query = query.where(Account.segment == sa.bindparam("segment"))
    if "stage" in present:
        query = query.where(LatestScore.stage == sa.bindparam("stage"))
    if "band" in present:
        query = query.where(effective_band == sa.bindparam("band", type_=LatestScore.band.type))
    if "renewal_by" in present:
        query = query.where(Account.renewal_date <= sa.bindparam("renewal_by", type_=sa.Date))
    if "name_like" in present:
        query = query.where(sa.func.lower(Account.name).like(sa.bindparam("name_like"), escape="\\"))
    return query


def _keyset(query: Any, order: Sort, present: frozenset[str]) -> Any:
    """``query`` in the sort's order, starting after the cursor when one is given."""
    if "cursor_key" in present:
        key = sa.bindparam("cursor_key", type_=order.key.type)
        cursor_id = sa.bindparam("cursor_id", type_=sa.Integer)
        # Ties break by id in the key's direction, so one index on (key, id) walked either way
        # serves the order; the first bound lets it start at the cursor.
        if order.descending:
            query = query.where(order.key <= key, sa.or_(order.key < key, Account.id < cursor_id))
        else:
            query = query.where(order.key >= key, sa.or_(order.key > key, Account.id > cursor_id))
    if order.descending:
        return query.order_by(order.key.desc(), Account.id.desc())
    return query.order_by(order.key.asc(), Account.id.asc())


def _moment(value: dt.datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


_POOR, _AVERAGE = Band.POOR, Band.AVERAGE


def _item(
    row: Any,
    runs: list[dict[str, Any]],
    drivers: list[dict[str, Any]],
    today: dt.date,
    falling_7d: float,
    *,
    model: bool | str = False,
) -> dict[str, Any]:
    # Unpacked once (in the select's order): a Row's attribute lookups were most of this function.
    (
        account_id, name, owner, segment, arr, renewal_date, score, band, stage, completeness, change_7d,
        change_30d, _, _, _, pin_reason, pin_author, pin_created_at, pin_expires_at, pin_id, override_band,
        override_reason, override_author, override_created_at, override_expires_at, churn_probability,
        expected_arr_at_risk, churn_model, *_,
    ) = row  # fmt: skip
    effective = override_band or band
    reasons = []
    if effective is _POOR:
        reasons.append("poor_band")
    elif effective is _AVERAGE and (
        (change_7d is not None and change_7d < 0 and change_7d <= falling_7d)
        or (change_30d is not None and change_30d <= FALLING_30D)
    ):
        reasons.append("falling_trend")
    for run in runs:
        if run.pop("watchlist"):
            reasons.append("play:" + run["play_id"])
    if pin_id is not None:
        reasons.append("pinned")
    return {
        "account_id": account_id,
        "name": name,
        "owner": owner,
        "segment": segment,
        "score": score,
        "band": band and band.value,
        "override": None
        if override_band is None
        else {
            "band": override_band.value,
            "reason": override_reason,
            "author": override_author,
            "created_at": _moment(override_created_at),
            "expires_at": _moment(override_expires_at),
        },
        "effective_band": effective and effective.value,
        "change_7d": change_7d,
        "change_30d": change_30d,
        "stage": stage and stage.value,
        "renewal_date": None if renewal_date is None else renewal_date.isoformat(),
        "days_to_renewal": None if renewal_date is None else (renewal_date - today).days,
        "arr": arr,
        "completeness": completeness,
        "drivers": drivers,
        "play_runs": runs,
        "pin": None
        if pin_id is None
        else {
            "reason": pin_reason,
            "author": pin_author,
            "created_at": _moment(pin_created_at),
            "expires_at": _moment(pin_expires_at),
        },
        "reasons": reasons,
        "churn_probability": churn_probability,
        "expected_arr_at_risk": expected_arr_at_risk,
        "churn_probability_note": None
        if churn_probability is not None
        else churn_note(None, scored=stage is not None, model_exists=model if churn_model is not None else False),
    }


def _runs(dialect: str, page: Any) -> Any:
    """The open play runs of the page's accounts, one row per account: ``runs`` is a JSON array of
    [id, play id, play name, started_on, watchlist, open tasks]. Set-based over the page (a CTE),
    so the page and its runs are one statement and one round trip; a correlated subquery per row
    cost twice as much on PostgreSQL."""
    open_tasks = (
        sa.select(sa.func.count(Task.id))
        .where(Task.play_run_id == PlayRun.id, Task.status == TaskStatus.OPEN)
        .scalar_subquery()
    )
    fields = (
        PlayRun.id,
        PlayRun.play_id,
        PlayDefinition.definition["name"].as_string(),
        PlayRun.started_on,
        PlayRun.watchlist,
        open_tasks,
    )
    runs: Any
    if dialect == "postgresql":
        runs = sa.cast(sa.func.json_agg(sa.func.json_build_array(*fields)), sa.Text)
    else:
        runs = sa.func.json_group_array(sa.func.json_array(*fields))
    return (
        sa.select(PlayRun.account_id, runs.label("runs"))
        .join(PlayDefinition, PlayDefinition.id == PlayRun.play_id)
        .where(PlayRun.account_id.in_(sa.select(page.c.id)), PlayRun.status == PlayRunStatus.OPEN)
        .group_by(PlayRun.account_id)
        .subquery("runs")
    )


def _open_runs(text: str | None) -> list[dict[str, Any]]:
    """The open runs of a row's ``runs`` column, oldest first."""
    if text is None:
        return []
    return [
        {
            "id": run_id,
            "play_id": play_id,
            "play_name": play_name or play_id,
            "started_on": started_on,
            "open_tasks": tasks,
            "watchlist": bool(watchlist),
        }
        for run_id, play_id, play_name, started_on, watchlist, tasks in sorted(
            orjson.loads(text), key=lambda run: (run[3], run[0])
        )
    ]


#: Models of config versions, by (version, epoch), the epoch being the newest version's creation
#: time: versions are immutable, and the epoch tells a version apart from one that reuses its number
#: (a database rebuilt under a live process, or emptied between tests). A new version changes the
#: epoch, so the caches start over then (rare: versions are made by hand).
_MODELS: dict[tuple[int, Any], ScoringModel] = {}
_MODELS_MAX = 64
#: Top drivers by (version, epoch, stage, values as JSON text): a pure function of its key, so pages read
#: again (the common case) skip the scoring. Bounded; items are shared, so never mutate them.
_DRIVERS: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
_DRIVERS_MAX = 50_000


def _models(session: Session, wanted: dict[int, Any]) -> dict[int, ScoringModel]:
    """The models of config versions {version: epoch}, loading (one query) only the uncached."""
    found = {version: _MODELS[(version, at)] for version, at in wanted.items() if (version, at) in _MODELS}
    missing = {version for version in wanted if version not in found}
    if missing:
        loaded = load_models(session, missing)
        if len(_MODELS) + len(loaded) > _MODELS_MAX:
            _MODELS.clear()
        for version, model in loaded.items():
            _MODELS[(version, wanted[version])] = model
            found[version] = model
    return found


def _top_drivers(session: Session, rows: Sequence[Any]) -> dict[int, list[dict[str, Any]]]:
    """The three most negative drivers per account, scored per config version in one array call.

    A page read again finds every row in ``_DRIVERS`` and touches neither the models nor numpy."""
    drivers: dict[int, list[dict[str, Any]]] = {}
    misses: dict[int, list[tuple[Any, tuple[Any, ...]]]] = {}
    epochs: dict[int, Any] = {}
    for row in rows:
        # By position (see _item): a Row's attribute lookups cost more than the cache lookup.
        account_id, score, stage, version, values, epoch = (
            row[0], row[6], row[8], row[12], row[13], row[14]
        )  # fmt: skip
        if values is None or score is None:
            continue
        key = (version, epoch, stage, values)
        cached = _DRIVERS.get(key)
        if cached is not None:
            drivers[account_id] = cached
        else:
            misses.setdefault(version, []).append((row, key))
            epochs[version] = epoch
    if not misses:
        return drivers
    models = _models(session, epochs)
    for version, group in misses.items():
        model = models.get(version)
        if model is None:  # a score from a config version that no longer exists: no drivers
            continue
        m = len(model.measures)
        todo = []
        for row, key in group:
            values = json.loads(row.measure_values)
            if isinstance(values, list) and len(values) == m:
                todo.append((row, key, values))
        if not todo:
            continue
        raw = np.array([[np.nan if v is None else v for v in values] for _, _, values in todo], dtype=np.float64).T
        stages = np.array([STAGE_CODE[row.stage] for row, _, _ in todo], dtype=np.int8)
        contributions = compute_health(raw, stages, model).contributions
        with np.errstate(invalid="ignore"):
            negative = np.where(contributions < 0, contributions, np.inf)
        order = np.argsort(negative, axis=0, kind="stable")[:TOP_DRIVERS]
        if len(_DRIVERS) + len(todo) > _DRIVERS_MAX:
            _DRIVERS.clear()
        for column, (row, key, _) in enumerate(todo):
            picked = []
            for j in order[:, column]:
                value = float(negative[j, column])
                if not np.isfinite(value):
                    break
                measure = model.measures[j]
                label = measure.label or measure.name
                picked.append({"measure": measure.name, "label": label, "contribution": round(value, 2)})
            _DRIVERS[key] = drivers[row.id] = picked
    return drivers


__all__ = [
    "SORT_NAMES",
    "WatchlistFilters",
    "decode_cursor",
    "encode_cursor",
    "list_watchlist",
    "team_owners",
    "watchlist_totals",
]
