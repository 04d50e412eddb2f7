"""The pages people work in: the watchlist, an account and its story, my work, the team's book.

Each view reads its input with the API's own schema (the same rules and messages), calls the
same services as the JSON views inside one transaction, and renders a template. Changes are
forms that POST and redirect back (they work without a script); a refused form is shown again
with the field's message and what was typed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.api.watchlist import page_body
from app.auth import actor_name, current_principal, default_owners, require_in_book
from app.db import get_session
from app.errors import DomainValidationError, NotFound
from app.models import TaskStatus
from app.schemas.plays import TaskUpdateSchema
from app.schemas.watchlist import OverrideInSchema, PinInSchema, ScoreChangeQuerySchema, WatchlistQuerySchema
from app.services.accounts import (
    all_owners,
    arr_by_band,
    get_account,
    latest_scored_day,
    measure_freshness,
    moved_into_poor,
    score_series,
)
from app.services.alerts.admin import AlertFilters, acknowledge_alert, alert_account, list_alerts
from app.services.alerts.digest import build_digest
from app.services.alerts.settings import AlertSettings
from app.services.events import EventFilters, list_events
from app.services.scoring_config.active import load_models
from app.services.tasks import TaskFilters, list_play_runs, list_tasks, update_task
from app.services.watchlist.cache import ACCOUNT_PAGE_LOGS, PageCache, change_log_exists, prune_changes
from app.services.watchlist.listing import WatchlistFilters, list_watchlist, watchlist_totals
from app.services.watchlist.overrides import create_override, revoke_override
from app.services.watchlist.pins import live_pin, pin_account, unpin_account
from app.services.watchlist.score_change import score_change
from app.web.access import ALL, TEAM, WORK, page
from app.web.errors import guard


def _falling() -> float:
    """The 7-day fall that lists an average account (the API's setting: the same watchlist)."""
    return float(current_app.config.get("WATCHLIST_FALLING_7D_POINTS", 2))


bp = guard(Blueprint("web", __name__))

_WATCHLIST_QUERY = WatchlistQuerySchema()
_FILTER_FIELDS = ("owner", "segment", "stage", "band", "renewal_within_days", "name")
SPARK_DAYS = 30
HISTORY_DAYS = 365


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _form_values(names: tuple[str, ...]) -> dict[str, str]:
    """The form's fields among ``names``; an empty field is a field not given (blanks are the schema's to refuse)."""
    return {name: value for name in names if (value := request.form.get(name, ""))}


@bp.get("/")
def home() -> Response:
    return redirect(url_for("web.watchlist"))


@bp.get("/watchlist")
@page(*ALL)
def watchlist() -> Any:
    """The at-risk list: filters, sorts, name search, totals, and each row's 30-day sparkline.

    The whole page is rendered inside the API's read path and kept in its page cache under the
    same stamp (PostgreSQL; app/services/watchlist/cache.py): the totals and the sparklines are
    read in the page's snapshot, and a repeat of the same page by the same user, with nothing it
    read changed since, is one indexed query. The session's CSRF token is not kept: the kept body
    holds a marker in its place, swapped for this request's token."""
    args = {key: value for key, value in request.args.items() if value.strip()}
    args.pop("page", None)
    try:
        query = _WATCHLIST_QUERY.load(args)
    except ValidationError as exc:
        return render_template("web/watchlist.html", items=[], totals=None, errors=exc.messages, args=args,
                               series={}, next_cursor=None), 422  # fmt: skip
    now = _now()
    filters = {key: query[key] for key in _FILTER_FIELDS if key in query}
    token = generate_csrf()

    def render(session: Any, items: list[dict[str, Any]], next_cursor: str | None, owners: Any) -> bytes:
        totals = watchlist_totals(
            session, filters=WatchlistFilters(**filters, owners=owners), now=now, falling_7d_points=_falling()
        )
        series = score_series(
            session, [item["account_id"] for item in items], since=now.date() - dt.timedelta(days=SPARK_DAYS)
        )
        html = render_template("web/watchlist.html", items=items, totals=totals, errors={}, args=args,
                               series=series, next_cursor=next_cursor)  # fmt: skip
        return html.replace(token, _CSRF_MARK).encode()

    # What else the page shows: who is signed in (name, role: the header and the forms) and its own path.
    variant = ("page", current_user.get_id(), current_user.role.value, request.full_path)
    body = page_body(get_session(), now, sort=query["sort"], limit=query["limit"], scope=query["scope"],
                     cursor=query.get("cursor"), team=query.get("team"), filters=filters, render=render,
                     variant=variant)  # fmt: skip
    return Response(body.replace(_CSRF_MARK_BYTES, token.encode()), mimetype="text/html")


#: Stands for the CSRF token in a kept watchlist page (never a token: tokens are base64 and dots).
_CSRF_MARK = "@@csrf@@"
_CSRF_MARK_BYTES = _CSRF_MARK.encode()


@bp.get("/accounts/<int:account_id>")
@page(*ALL)
def account(account_id: int) -> Any:
    """One account: health, a year of history, drivers, why it changed, measures, events, plays, alerts.

    Kept per worker like the watchlist page (PostgreSQL; app/services/watchlist/cache.py): the page
    is read and rendered in one REPEATABLE READ snapshot and kept under its stamp, keyed by the
    account, the user (their name, role and book show in it) and the day; a repeat is served while
    neither change log (migrations 0012 and 0018: every table the page reads) has a write the
    snapshot did not see, which is one indexed query. A pin, a task, an alert acknowledged shows at
    once. "Why did it change" between two days asked is computed each time (not kept)."""
    if request.args.get("from") or request.args.get("to"):
        return _account_page(account_id)
    session = get_session()
    now = _now()
    token = generate_csrf()
    key = (account_id, current_user.get_id(), current_user.role.value, request.full_path, now.date())
    with session.begin():
        connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        cache = _account_cache(connection)
        body = None if cache is None else cache.get(connection, key, now)
    if body is None:
        with session.begin():
            # One snapshot for the page and its stamp: the stamp says what the page has seen.
            stamp = None
            if cache is not None:
                stamp = cache.stamp(session.connection(execution_options={"isolation_level": "REPEATABLE READ"}), now)
            context = _account_context(session, account_id, now)
        body = render_template("web/account.html", **context).replace(token, _CSRF_MARK).encode()
        if cache is not None and stamp is not None:
            cache.put(key, stamp, body)
            if cache.prune_due():
                with session.begin():
                    prune_changes(session.connection(), now, ACCOUNT_PAGE_LOGS)
    return Response(body.replace(_CSRF_MARK_BYTES, token.encode()), mimetype="text/html")


def _account_cache(connection: Any) -> PageCache | None:
    """This app's kept account pages; None when off (``ACCOUNT_PAGE_CACHE_ENTRIES`` 0, SQLite, no change logs)."""
    extensions = current_app.extensions
    if "account_page_cache" not in extensions:
        size = current_app.config["ACCOUNT_PAGE_CACHE_ENTRIES"]
        keep = size > 0 and change_log_exists(connection, ACCOUNT_PAGE_LOGS)
        extensions["account_page_cache"] = PageCache(size, ACCOUNT_PAGE_LOGS) if keep else None
    cache: PageCache | None = extensions["account_page_cache"]
    return cache


def _account_page(account_id: int, *, errors: dict[str, Any] | None = None, form: str | None = None,
                  status: int = 200) -> Any:  # fmt: skip
    """The account page read and rendered afresh (a form refused, or a change between two days asked)."""
    session = get_session()
    with session.begin():
        context = _account_context(session, account_id, _now(), errors=errors, form=form)
    return render_template("web/account.html", **context), status


def _account_context(session: Any, account_id: int, now: dt.datetime, *, errors: dict[str, Any] | None = None,
                     form: str | None = None) -> dict[str, Any]:  # fmt: skip
    """What the account page shows, read inside the caller's transaction (the same services as the API)."""
    # A page is read in the book: a CSM opens their accounts, a manager the team's (admins and viewers all).
    require_in_book(session, account_id=account_id)
    detail = get_account(session, account_id, history_days=HISTORY_DAYS)
    freshness = measure_freshness(session, account_id)
    # The newest of each (no totals: the page does not show them, and counting is a query each).
    events, _ = list_events(session, filters=EventFilters(), page=1, per_page=25, account_id=account_id,
                            count=False)  # fmt: skip
    runs, _ = list_play_runs(session, account_id, status=None, page=1, per_page=20, count=False)
    alerts, _ = list_alerts(session, filters=AlertFilters(account=account_id), page=1, per_page=20, count=False)
    detail["pin"] = live_pin(session, account_id, now)
    health = detail.get("health") or {}
    bands = _bands(session, health.get("config_version"))
    drivers = [dataclasses.asdict(d) for d in health.get("drivers", [])]
    history = list(reversed(detail["history"]))
    change = _score_change(session, account_id, history)
    return {
        "chart": _chart(history, events, runs, bands),
        "account": detail, "health": health, "drivers": drivers, "freshness": freshness, "events": events,
        "runs": runs, "alerts": alerts, "change": change, "history": history, "errors": errors or {},
        "form": form, "values": request.form if errors else {}, "today": now.date(),
        "can_change": current_principal().role.value in {r.value for r in WORK},
    }  # fmt: skip


def _bands(session: Any, version: int | None) -> Any:
    """The band cut-offs of a config version (its model is kept by load_models)."""
    if version is None:
        return None
    return load_models(session, {version})[version].bands


def _chart(history: list[dict[str, Any]], events: list[dict[str, Any]], runs: list[dict[str, Any]],
           bands: Any) -> dict[str, Any]:  # fmt: skip
    """The history chart's data: days (epoch seconds), scores, band cut-offs and markers
    (a new config version, an event, a play started), drawn by static/web/charts.js with uPlot."""
    days = [int(dt.datetime.combine(row["day"], dt.time(), dt.UTC).timestamp()) for row in history]
    markers = []
    previous = None
    for row, at in zip(history, days, strict=True):
        if previous is not None and row["config_version"] != previous:
            markers.append({"at": at, "kind": "c", "text": f"config v{row['config_version']}"})
        previous = row["config_version"]
    first = history[0]["day"] if history else None
    for event in events:
        if first is not None and event["day"] >= first:
            markers.append(
                {"at": _epoch(event["day"]), "kind": "e", "text": str(event["rule_name"] or event["rule_id"])}
            )
    for run in runs:
        if first is not None and run["started_on"] >= first:
            markers.append(
                {"at": _epoch(run["started_on"]), "kind": "p", "text": str(run.get("play_name") or run["play_id"])}
            )
    return {
        "days": days,
        "scores": [row["score"] for row in history],
        "good": bands.good if bands else 70,
        "poor": bands.poor if bands else 40,
        "markers": markers,
    }


def _epoch(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


def _score_change(session: Any, account_id: int, history: list[dict[str, Any]]) -> dict[str, Any]:
    """'Why did it change' between the days asked (``from``, ``to``; the form starts at 30 days ago and
    the last scored day). Computed only when asked: the attribution rescores both days."""
    days = [row["day"] for row in history if row["score"] is not None]
    asked = {key: request.args[key] for key in ("from", "to") if request.args.get(key)}
    if not days:
        return {"result": None, "errors": {}, "asked": asked}
    defaults = {"from": days[max(0, len(days) - 31)].isoformat(), "to": days[-1].isoformat()}
    if not asked:
        return {"result": None, "errors": {}, "asked": defaults}
    asked = {**defaults, **asked}
    try:
        query = ScoreChangeQuerySchema().load(asked)
        result = score_change(session, account_id, query["start"], query["end"])
    except ValidationError as exc:
        return {"result": None, "errors": exc.messages, "asked": asked}
    except (NotFound, DomainValidationError) as exc:
        return {"result": None, "errors": exc.errors or {"to": [exc.message]}, "asked": asked}
    return {"result": result, "errors": {}, "asked": asked}


def _messages(exc: ValidationError) -> dict[str, Any]:
    """A schema's messages by field (marshmallow types them loosely)."""
    messages = exc.messages
    return messages if isinstance(messages, dict) else {"_schema": messages}


def _back(account_id: int) -> Response:
    return redirect(url_for("web.account", account_id=account_id))


@bp.post("/accounts/<int:account_id>/pin")
@page(*WORK)
def pin(account_id: int) -> Any:
    try:
        body = PinInSchema().load(_form_values(("reason", "expires_at")))
    except ValidationError as exc:
        return _account_page(account_id, errors=_messages(exc), form="pin", status=422)
    session = get_session()
    with session.begin():
        require_in_book(session, account_id=account_id)
        pin_account(session, account_id, reason=body["reason"].strip(), expires_at=body.get("expires_at"),
                    actor=actor_name(), now=_now())  # fmt: skip
    return redirect(_return_to(url_for("web.account", account_id=account_id)))


@bp.post("/accounts/<int:account_id>/unpin")
@page(*WORK)
def unpin(account_id: int) -> Response:
    session = get_session()
    with session.begin():
        require_in_book(session, account_id=account_id)
        unpin_account(session, account_id, actor=actor_name(), now=_now())
    return redirect(_return_to(url_for("web.account", account_id=account_id)))


@bp.post("/accounts/<int:account_id>/override")
@page(*WORK)
def override(account_id: int) -> Any:
    try:
        body = OverrideInSchema().load(_form_values(("band", "reason", "expires_at")))
    except ValidationError as exc:
        return _account_page(account_id, errors=_messages(exc), form="override", status=422)
    session = get_session()
    with session.begin():
        require_in_book(session, account_id=account_id)
        create_override(session, account_id, band=body["band"], reason=body["reason"].strip(),
                        expires_at=body["expires_at"], actor=actor_name(), now=_now())  # fmt: skip
    return _back(account_id)


@bp.post("/accounts/<int:account_id>/override/revoke")
@page(*WORK)
def revoke(account_id: int) -> Response:
    session = get_session()
    with session.begin():
        require_in_book(session, account_id=account_id)
        revoke_override(session, account_id, actor=actor_name(), now=_now())
    return _back(account_id)


@bp.post("/tasks/<int:task_id>")
@page(*WORK)
def task(task_id: int) -> Response:
    """Complete, skip or reopen a task (and its run with it), then back to where the form was."""
    try:
        body = TaskUpdateSchema().load(_form_values(("status",)))
    except ValidationError as exc:
        raise DomainValidationError("The task's status is not valid.", errors=_messages(exc)) from None
    session = get_session()
    with session.begin():
        require_in_book(session, task_id=task_id)
        status: TaskStatus = body["status"]
        item = update_task(session, task_id, status=status, by=actor_name(), now=_now())
    return redirect(_return_to(url_for("web.account", account_id=item["account_id"])))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@page(*WORK)
def acknowledge(alert_id: int) -> Response:
    session = get_session()
    with session.begin():
        account_id = alert_account(session, alert_id)
        if account_id is not None:
            require_in_book(session, account_id=account_id)
        acknowledge_alert(session, alert_id, actor=actor_name(), now=_now())
    fallback = url_for("web.account", account_id=account_id) if account_id else url_for("web.my_work")
    return redirect(_return_to(fallback))


def _return_to(fallback: str) -> str:
    target = request.form.get("return_to", "")
    return target if target.startswith("/") and not target.startswith("//") else fallback


@bp.get("/my-work")
@page(*WORK)
def my_work() -> Any:
    """My open tasks by due day (overdue first) and the alerts about my book waiting for an acknowledgement."""
    session = get_session()
    principal = current_principal()
    today = _now().date()
    with session.begin():
        owners = default_owners(session)
        tasks, task_total = list_tasks(session, filters=TaskFilters(status="open", owners=owners), page=1, per_page=100)
        alerts, _ = list_alerts(
            session, filters=AlertFilters(owners=owners, identities=principal.identities), page=1, per_page=100
        )
    waiting = [a for a in alerts if a["requires_ack"] and a["acknowledged_at"] is None]
    by_account: dict[str, list[dict[str, Any]]] = {}
    for item in tasks:
        by_account.setdefault(item["account_name"], []).append(item)
    overdue = sum(1 for item in tasks if item["due_on"] and item["due_on"] < today)
    return render_template("web/my_work.html", by_account=by_account, task_total=task_total, overdue=overdue,
                           alerts=waiting, today=today)  # fmt: skip


@bp.get("/team")
@page(*TEAM)
def team() -> Any:
    """The team's book: its watchlist totals, and each CSM's open and overdue tasks and unacknowledged alerts."""
    session = get_session()
    principal = current_principal()
    now = _now()
    today = now.date()
    with session.begin():
        owners = default_owners(session)
        totals = watchlist_totals(
            session, filters=WatchlistFilters(owners=owners), now=now, falling_7d_points=_falling()
        )
        poor = watchlist_totals(
            session, filters=WatchlistFilters(owners=owners, band="poor"), now=now, falling_7d_points=_falling()
        )
        tasks, _ = list_tasks(session, filters=TaskFilters(status="open", owners=owners), page=1, per_page=100)
        alerts, _ = list_alerts(
            session, filters=AlertFilters(owners=owners, identities=principal.identities), page=1, per_page=100
        )
        items, _ = list_watchlist(session, filters=WatchlistFilters(owners=owners), sort="arr_at_risk", limit=20,
                                  now=now, falling_7d_points=_falling())  # fmt: skip
        day = latest_scored_day(session)
        bands = {}
        moved: list[dict[str, Any]] = []
        if day is not None:
            bands = {"now": arr_by_band(session, owners=owners, day=day),
                     "before": arr_by_band(session, owners=owners, day=day - dt.timedelta(days=90))}  # fmt: skip
            moved = moved_into_poor(session, owners=owners, since=day - dt.timedelta(days=7), day=day)
    people: dict[str, dict[str, int]] = {}
    for item in tasks:
        row = people.setdefault(item["assignee"] or "(unassigned)", {"open": 0, "overdue": 0, "alerts": 0})
        row["open"] += 1
        row["overdue"] += int(bool(item["due_on"] and item["due_on"] < today))
    for alert in alerts:
        if alert["requires_ack"] and alert["acknowledged_at"] is None:
            row = people.setdefault(
                alert["recipient_user"] or alert["recipient"] or "?", {"open": 0, "overdue": 0, "alerts": 0}
            )
            row["alerts"] += 1
    return render_template("web/team.html", totals=totals, poor=poor, people=sorted(people.items()), items=items,
                           everyone=owners is None, bands=bands, moved=moved, day=day)  # fmt: skip


@bp.get("/team/digest")
@page(*TEAM)
def digest() -> Any:
    """Today's digest as a page: the book's at-risk accounts, what changed in the last day, held alerts."""
    session = get_session()
    principal = current_principal()
    now = _now()
    with session.begin():
        owners = default_owners(session) or all_owners(session)
        message, _ = build_digest(
            session, name=principal.name, email=principal.email or "", book=owners,
            since=now - dt.timedelta(days=1), now=now, settings=AlertSettings.from_config(current_app.config),
            max_accounts=50,
        )  # fmt: skip
    return render_template("web/digest.html", digest=message)
