"""The watchlist and pins, on SQLite and PostgreSQL: who is listed and why, the row, filters,
the caller's book, sorts, keyset cursors, the query budget, and pins with their unhappy paths."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from app import create_app
from app.auth import create_token
from app.models import (
    AccountStatus,
    AuditEntry,
    BandOverride,
    LatestScore,
    PlayDefinition,
    PlayRun,
    PlayRunStatus,
    Role,
    Task,
    TaskStatus,
    WatchlistPin,
)
from app.schemas.watchlist import WatchlistPageSchema, WatchlistQuerySchema
from app.services.scoring_config.active import ensure_default_config
from config import TestConfig
from playbooks.plays import AlertMode, OwnerRole, TaskType
from scoring.bands import Band
from scoring.model import default_config_dict
from scoring.stage import LifecycleStage
from tests import factories as f
from tests.support.auth import bearer

pytestmark = [pytest.mark.api, pytest.mark.db]

IssueToken = Callable[..., str]
NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()
MEASURES = [m["name"] for m in default_config_dict()["measures"]]


def values(**raw: float) -> list[float | None]:
    return [raw.get(name) for name in MEASURES]


def scored(
    session: Session,
    name: str,
    *,
    score: float | None,
    band: Band | None,
    change_7d: float | None = 0.0,
    change_30d: float | None = 0.0,
    stage: LifecycleStage = LifecycleStage.ESTABLISHED,
    raw: list[float | None] | None = None,
    **account: Any,
) -> int:
    account.setdefault("renewal_date", TODAY + dt.timedelta(days=400))
    row = f.make_account(session, name=name, **account)
    session.add(
        LatestScore(
            account_id=row.id,
            day=TODAY,
            config_version=1,
            stage=stage,
            score=score,
            band=band,
            completeness=0.8,
            measure_values=raw if raw is not None else values(),
            score_change_7d=change_7d,
            score_change_30d=change_30d,
        )
    )
    session.flush()
    return row.id


def add_run(session: Session, account_id: int, play_id: str, *, watchlist: bool, status=PlayRunStatus.OPEN) -> int:  # type: ignore[no-untyped-def]
    if session.get(PlayDefinition, play_id) is None:
        session.add(PlayDefinition(id=play_id, definition={"id": play_id, "name": f"Play {play_id}"}))
        session.flush()
    run = PlayRun(
        play_id=play_id,
        play_version=1,
        account_id=account_id,
        status=status,
        started_on=TODAY,
        stage=LifecycleStage.ESTABLISHED,
        watchlist=watchlist,
        alert=AlertMode.NONE,
    )
    session.add(run)
    session.flush()
    for position, task_status in enumerate((TaskStatus.OPEN, TaskStatus.OPEN, TaskStatus.DONE)):
        session.add(
            Task(
                play_run_id=run.id,
                account_id=account_id,
                position=position,
                type=TaskType.CALL,
                title="Call",
                owner_role=OwnerRole.CSM,
                due_on=TODAY,
                status=task_status,
            )
        )
    session.flush()
    return run.id


@pytest.fixture
def book(db_session: Session) -> dict[str, int]:
    """Accounts covering every reason to be listed, and every near miss."""
    with db_session.begin():
        ensure_default_config(db_session)
        ids = {
            "poor": scored(
                db_session, "Poor", score=25, band=Band.POOR, arr=50_000, owner="ana", segment="smb",
                raw=values(active_user_ratio=0.05, days_since_last_login=40, nps=-80.0, csat_avg=4.8),
                renewal_date=TODAY + dt.timedelta(days=30),
            ),
            "falling7": scored(db_session, "Falling 7", score=55, band=Band.AVERAGE, change_7d=-2.5, arr=40_000,
                               owner="ana", stage=LifecycleStage.PRE_RENEWAL, renewal_date=TODAY + dt.timedelta(days=60)),
            "falling30": scored(db_session, "Falling 30", score=50, band=Band.AVERAGE, change_7d=1.0, change_30d=-5.0,
                                arr=40_000, owner="bo", segment="enterprise"),
            "stable": scored(db_session, "Stable", score=60, band=Band.AVERAGE, change_7d=0.0, change_30d=-4.9,
                             owner="ana"),
            "good": scored(db_session, "Good", score=90, band=Band.GOOD, change_7d=-9.0, owner="ana"),
            "flagged": scored(db_session, "Flagged", score=80, band=Band.GOOD, arr=30_000, owner="bo"),
            "unflagged": scored(db_session, "Unflagged", score=80, band=Band.GOOD, owner="bo"),
            "done": scored(db_session, "Done play", score=80, band=Band.GOOD, owner="bo"),
            "pinned": scored(db_session, "Pinned", score=85, band=Band.GOOD, arr=10_000, owner="cy"),
            "expired_pin": scored(db_session, "Expired pin", score=85, band=Band.GOOD, owner="cy"),
            "churned": scored(db_session, "Churned", score=10, band=Band.POOR, owner="ana",
                              status=AccountStatus.CHURNED),
            "unscored": f.make_account(
                db_session, name="Unscored pinned", owner="cy", arr=5_000, renewal_date=TODAY + dt.timedelta(days=99)
            ).id,
        }  # fmt: skip
        add_run(db_session, ids["flagged"], "win-back", watchlist=True)
        add_run(db_session, ids["flagged"], "training", watchlist=False)
        add_run(db_session, ids["unflagged"], "training", watchlist=False)
        add_run(db_session, ids["done"], "win-back", watchlist=True, status=PlayRunStatus.COMPLETED)
        add_run(db_session, ids["poor"], "escalate", watchlist=False)
        db_session.add_all(
            [
                WatchlistPin(account_id=ids["pinned"], reason="exec escalation", author="cy", created_at=NOW),
                WatchlistPin(account_id=ids["unscored"], reason="new logo", author="cy", created_at=NOW),
                WatchlistPin(
                    account_id=ids["expired_pin"],
                    reason="old",
                    author="cy",
                    created_at=NOW - dt.timedelta(days=9),
                    expires_at=NOW - dt.timedelta(minutes=1),
                ),
            ]
        )
    return ids


def watchlist(client: FlaskClient, query: str = "", **kwargs: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/watchlist{query}", **kwargs)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    WatchlistPageSchema().load(body)  # the body is exactly what the schema documents
    return body


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in body["items"]}


def test_who_is_listed_and_why(client: FlaskClient, book: dict[str, int]) -> None:
    rows = by_name(watchlist(client))
    assert {name: row["reasons"] for name, row in rows.items()} == {
        "Poor": ["poor_band"],
        "Falling 7": ["falling_trend"],
        "Falling 30": ["falling_trend"],
        "Flagged": ["play:win-back"],
        "Pinned": ["pinned"],
        "Unscored pinned": ["pinned"],
    }


def test_a_dip_of_a_fraction_of_a_point_is_not_a_falling_trend(
    app: Any, client: FlaskClient, db_session: Session
) -> None:
    """Issue 17 (day one): ``falling_trend`` listed an average account whose score dipped 0.16
    points in 7 days. The least fall is HS_WATCHLIST_FALLING_7D_POINTS (default 2)."""
    with db_session.begin():
        ensure_default_config(db_session)
        scored(db_session, "Dip", score=55, band=Band.AVERAGE, change_7d=-0.16)
        scored(db_session, "Fall", score=55, band=Band.AVERAGE, change_7d=-2.0)
    assert set(by_name(watchlist(client))) == {"Fall"}
    app.config["WATCHLIST_FALLING_7D_POINTS"] = 5
    assert set(by_name(watchlist(client))) == set()


def test_the_row(client: FlaskClient, book: dict[str, int]) -> None:
    body = watchlist(client)
    assert body["next_cursor"] is None and body["sort"] == "arr_at_risk" and body["limit"] == 50
    poor = by_name(body)["Poor"]
    assert poor["account_id"] == book["poor"] and poor["owner"] == "ana" and poor["segment"] == "smb"
    assert poor["score"] == 25 and poor["band"] == "poor" and poor["effective_band"] == "poor"
    assert poor["override"] is None and poor["pin"] is None
    assert poor["stage"] == "established" and poor["completeness"] == 0.8 and poor["arr"] == 50_000
    assert poor["renewal_date"] == (TODAY + dt.timedelta(days=30)).isoformat() and poor["days_to_renewal"] == 30
    drivers = poor["drivers"]
    assert [d["measure"] for d in drivers][:1] == ["active_user_ratio"] or len(drivers) == 3
    assert len(drivers) == 3 and all(d["contribution"] < 0 for d in drivers)
    assert [d["contribution"] for d in drivers] == sorted(d["contribution"] for d in drivers)
    assert "csat_avg" not in {d["measure"] for d in drivers}  # a positive driver is never listed
    assert all(d["label"] for d in drivers)
    assert [(r["play_id"], r["play_name"], r["open_tasks"]) for r in poor["play_runs"]] == [
        ("escalate", "Play escalate", 2)
    ]
    flagged = by_name(body)["Flagged"]
    assert sorted(r["play_id"] for r in flagged["play_runs"]) == ["training", "win-back"]
    assert flagged["drivers"] == []  # no measure has data
    pinned = by_name(body)["Unscored pinned"]
    assert pinned["score"] is None and pinned["band"] is None and pinned["stage"] is None
    assert pinned["pin"]["reason"] == "new logo" and pinned["pin"]["author"] == "cy"
    assert pinned["pin"]["expires_at"] is None and pinned["days_to_renewal"] is not None


def test_overrides_move_accounts_on_and_off(client: FlaskClient, book: dict[str, int], db_session: Session) -> None:
    with db_session.begin():
        for key, band, expires in (
            ("poor", Band.GOOD, NOW + dt.timedelta(days=3)),
            ("good", Band.POOR, NOW + dt.timedelta(days=3)),
            ("stable", Band.POOR, NOW - dt.timedelta(minutes=1)),  # expired: reverts by itself
        ):
            db_session.add(
                BandOverride(account_id=book[key], band=band, reason="csm knows", author="ana", expires_at=expires)
            )
    rows = by_name(watchlist(client))
    assert "Poor" not in rows and "Stable" not in rows
    good = rows["Good"]
    assert good["band"] == "good" and good["effective_band"] == "poor" and good["reasons"] == ["poor_band"]
    assert good["override"]["band"] == "poor" and good["override"]["reason"] == "csm knows"
    assert good["override"]["author"] == "ana" and good["override"]["expires_at"]
    assert [r["name"] for r in watchlist(client, "?band=poor")["items"]] == ["Good"]


def test_filters(client: FlaskClient, book: dict[str, int]) -> None:
    def names(query: str) -> set[str]:
        return {item["name"] for item in watchlist(client, query)["items"]}

    assert names("?owner=bo") == {"Falling 30", "Flagged"}
    assert names("?segment=enterprise") == {"Falling 30"}
    assert names("?stage=pre_renewal") == {"Falling 7"}
    assert names("?band=average") == {"Falling 7", "Falling 30"}
    assert names("?renewal_within_days=45") == {"Poor"}
    assert names("?renewal_within_days=60&owner=ana") == {"Poor", "Falling 7"}


def test_default_book_and_team(
    app: Flask, anonymous_client: FlaskClient, issue_token: IssueToken, book: dict[str, int]
) -> None:
    issue_token(Role.MANAGER, "mia")
    ana = issue_token(Role.CSM, "ana", manager="mia")
    issue_token(Role.CSM, "bo", manager="mia")
    mia = issue_token(Role.MANAGER, "mia")
    viewer = issue_token(Role.VIEWER, "vic")

    def names(token: str, query: str = "") -> set[str]:
        return {item["name"] for item in watchlist(anonymous_client, query, headers=bearer(token))["items"]}

    assert names(ana) == {"Poor", "Falling 7"}
    assert names(ana, "?scope=all") == names(viewer) == names(viewer, "?scope=all")
    assert len(names(viewer)) == 6
    assert names(ana, "?owner=bo") == {"Falling 30", "Flagged"}  # an owner filter lifts the book
    assert names(mia) == {"Poor", "Falling 7", "Falling 30", "Flagged"}  # the manager's team
    assert names(viewer, "?team=mia") == names(mia)
    assert names(ana, "?team=mia") == names(mia)
    unknown = anonymous_client.get("/api/v1/watchlist?team=nobody", headers=bearer(viewer))
    assert unknown.status_code == 422 and "team" in unknown.get_json()["errors"]


def _all_pages(client: FlaskClient, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        suffix = query + (f"&cursor={cursor}" if cursor else "")
        body = watchlist(client, suffix)
        assert len(body["items"]) <= body["limit"]
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert body["items"], "a page with a next cursor is never empty"
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("arr_at_risk", lambda r: -r["arr"]),
        ("score", lambda r: 1000 if r["score"] is None else r["score"]),
        ("change", lambda r: 1e9 if r["change_7d"] is None else r["change_7d"]),
        ("days_to_renewal", lambda r: r["days_to_renewal"]),
    ],
)
def test_cursor_pages_cover_every_row_once(
    client: FlaskClient, db_session: Session, book: dict[str, int], sort: str, key: Any
) -> None:
    with db_session.begin():  # many ties, so the id tie-break matters
        for i in range(17):
            scored(
                db_session, f"Tie {i}", score=[20.0, 30.0][i % 2], band=Band.POOR, change_7d=[None, -1.0][i % 2],
                arr=[7_000.0, 9_000.0, 11_000.0][i % 3], renewal_date=TODAY + dt.timedelta(days=i % 4),
            )  # fmt: skip
    everything = watchlist(client, f"?sort={sort}&limit=200")["items"]
    assert len(everything) == 23
    # Ties break by account id in the sort's direction (ARR at risk is the one descending sort).
    direction = -1 if sort == "arr_at_risk" else 1
    expected = sorted(everything, key=lambda r: (key(r), direction * r["account_id"]))
    assert [r["account_id"] for r in everything] == [r["account_id"] for r in expected]
    for limit in (1, 2, 5, 23):
        paged = _all_pages(client, f"?sort={sort}&limit={limit}")
        assert [r["account_id"] for r in paged] == [r["account_id"] for r in everything], limit


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        "?cursor=not-base64!!",
        "?cursor=" + base64.urlsafe_b64encode(b"not json").decode(),
        "?cursor=" + _cursor("score", 10.0, 1),  # made for another sort
        "?cursor=" + _cursor("arr_at_risk", "lots", 1),
        "?cursor=" + _cursor("arr_at_risk", 10.0, "one"),
        "?cursor=" + _cursor("arr_at_risk", 10.0),
        "?cursor=" + _cursor("days_to_renewal", "tomorrow", 1) + "&sort=days_to_renewal",
        "?cursor=" + _cursor({"a": 1}),
        "?cursor=",
        "?limit=0",
        "?limit=201",
        "?sort=name",
        "?band=awful",
        "?renewal_within_days=-1",
        "?scope=mine",
        "?colour=red",
    ],
)
def test_bad_queries_get_422(client: FlaskClient, book: dict[str, int], query: str) -> None:
    response = client.get(f"/api/v1/watchlist{query}")
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["code"] == 422 and body["errors"]


def test_one_query_for_the_rows_and_never_the_history(
    app: Flask, client: FlaskClient, book: dict[str, int], backend: str
) -> None:
    statements: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = app.extensions["engine"]
    sa.event.listen(engine, "before_cursor_execute", log)
    try:
        first = watchlist(client)
        cold = list(statements)
        statements.clear()
        assert watchlist(client) == first
    finally:
        sa.event.remove(engine, "before_cursor_execute", log)
    assert any(row["play_runs"] for row in first["items"])
    selects = [s for s in cold if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert not any("health_scores" in s for s in cold)
    # the rows with their open play runs in one statement
    assert sum("latest_scores" in s for s in selects) == 1
    assert sum("play_runs" in s and "latest_scores" not in s for s in selects) == 0
    # the token, the rows, the config versions of its drivers; on PostgreSQL also whether the change
    # log exists (once per app) and the snapshot the page is read in (the page cache)
    cached = backend == "postgresql"
    assert len(selects) <= (5 if cached else 3), selects
    # Read again: the token lookup and the config models are cached, and the request runs without
    # BEGIN/COMMIT (autocommit). On SQLite it is the page statement alone; on PostgreSQL the one
    # check that nothing the cached page was read from has changed since, which runs on the driver's
    # connection (app/services/watchlist/cache.py), so SQLAlchemy sees no statement at all.
    if cached:
        assert statements == [] and client.application.extensions["watchlist_cache"].hits == 1
    else:
        assert len(statements) == 1 and "latest_scores" in statements[0], statements


# --- pins ---------------------------------------------------------------------------------------------


@pytest.fixture
def account(db_session: Session) -> Iterator[int]:
    with db_session.begin():
        ensure_default_config(db_session)
        account_id = scored(db_session, "Calm", score=90, band=Band.GOOD)
    yield account_id


def test_pin_and_unpin(client: FlaskClient, account: int, db_session: Session) -> None:
    expires = (NOW + dt.timedelta(days=2)).isoformat()
    response = client.post(f"/api/v1/watchlist/{account}", json={"reason": "  exec call  ", "expires_at": expires})
    assert response.status_code == 201, response.get_json()
    pin = response.get_json()
    assert pin["reason"] == "exec call" and pin["author"] == "test-admin" and pin["removed_at"] is None
    assert dt.datetime.fromisoformat(pin["expires_at"]) == dt.datetime.fromisoformat(expires)
    assert by_name(watchlist(client))["Calm"]["reasons"] == ["pinned"]
    again = client.post(f"/api/v1/watchlist/{account}", json={"reason": "twice"})
    assert again.status_code == 409 and again.get_json()["message"]
    removed = client.delete(f"/api/v1/watchlist/{account}")
    assert removed.status_code == 200
    assert removed.get_json()["removed_by"] == "test-admin" and removed.get_json()["removed_at"]
    assert watchlist(client)["items"] == []
    assert client.delete(f"/api/v1/watchlist/{account}").status_code == 404
    assert client.post(f"/api/v1/watchlist/{account}", json={"reason": "back"}).status_code == 201
    audit = db_session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert audit == ["watchlist.pin", "watchlist.unpin", "watchlist.pin"]
    target = db_session.scalars(sa.select(AuditEntry.target)).all()
    assert set(target) == {f"account:{account}"}


def test_an_expired_pin_is_not_live(client: FlaskClient, account: int, db_session: Session) -> None:
    with db_session.begin():
        db_session.add(
            WatchlistPin(
                account_id=account, reason="old", author="x", created_at=NOW - dt.timedelta(days=3),
                expires_at=NOW - dt.timedelta(seconds=1),
            )
        )  # fmt: skip
    assert watchlist(client)["items"] == []
    assert client.delete(f"/api/v1/watchlist/{account}").status_code == 404
    response = client.post(f"/api/v1/watchlist/{account}", json={"reason": "again"})
    assert response.status_code == 201
    pins = db_session.scalars(sa.select(WatchlistPin).order_by(WatchlistPin.id)).all()
    assert [p.removed_by for p in pins] == ["(expired)", None]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": 5},
        {"reason": "x" * 2001},
        {"reason": "ok", "expires_at": "yesterday"},
        {"reason": "ok", "expires_at": "2020-01-01T00:00:00Z"},
        {"reason": "ok", "colour": "red"},
        [],
    ],
)
def test_bad_pins_get_422(client: FlaskClient, account: int, body: Any) -> None:
    response = client.post(f"/api/v1/watchlist/{account}", json=body)
    assert response.status_code == 422, response.get_json()


def test_pins_of_unknown_accounts_and_roles(
    client: FlaskClient, anonymous_client: FlaskClient, issue_token: IssueToken, account: int
) -> None:
    assert client.post("/api/v1/watchlist/999999", json={"reason": "x"}).status_code == 404
    assert client.delete("/api/v1/watchlist/999999").status_code == 404
    viewer = bearer(issue_token(Role.VIEWER, "vic"))
    assert (
        anonymous_client.post(f"/api/v1/watchlist/{account}", json={"reason": "x"}, headers=viewer).status_code == 403
    )
    assert anonymous_client.get("/api/v1/watchlist", headers=viewer).status_code == 200
    ingest = bearer(issue_token(Role.INGEST, "bot"))
    assert anonymous_client.get("/api/v1/watchlist", headers=ingest).status_code == 403
    assert anonymous_client.get("/api/v1/watchlist").status_code == 401
    other = bearer(issue_token(Role.CSM, "ana"))  # a CSM changes only accounts they own
    assert anonymous_client.post(f"/api/v1/watchlist/{account}", json={"reason": "x"}, headers=other).status_code == 403
    csm = bearer(issue_token(Role.CSM, "csm@example.com"))
    response = anonymous_client.post(f"/api/v1/watchlist/{account}", json={"reason": "mine"}, headers=csm)
    assert response.status_code == 201 and response.get_json()["author"] == "csm@example.com"


# --- the page cache (PostgreSQL; app/services/watchlist/cache.py) -------------------------------------


def page_cache(app: Flask) -> Any:
    return app.extensions.get("watchlist_cache")


def test_pages_are_cached_on_postgresql_only(
    app: Flask, client: FlaskClient, book: dict[str, int], backend: str
) -> None:
    first = watchlist(client)
    assert watchlist(client) == first
    cache = page_cache(app)
    if backend == "sqlite":  # no snapshots to compare: never cached
        assert cache is None
        return
    assert len(cache) == 1 and (cache.hits, cache.misses) == (1, 1)
    watchlist(client, "?sort=score")
    assert len(cache) == 2


def test_a_cache_of_zero_entries_is_off(engine: sa.Engine, database_url: str, book: dict[str, int]) -> None:
    app = create_app(TestConfig(DATABASE_URL=database_url, WATCHLIST_CACHE_ENTRIES=0))
    try:
        client = app.test_client()
        token = admin_token(engine, "zero-admin")
        assert watchlist(client, headers=bearer(token))["items"]
        assert page_cache(app) is None
    finally:
        app.extensions["engine"].dispose()


def admin_token(engine: sa.Engine, name: str) -> str:
    with sessionmaker(bind=engine).begin() as session:
        return create_token(session, name, Role.ADMIN)[1]


def migration_0012() -> Any:
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0012_watchlist_changes.py"
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: One statement per table a page reads that changes nothing: a statement-level trigger still records it.
NO_OP_WRITES = {
    "accounts": "UPDATE accounts SET name = name WHERE false",
    "latest_scores": "UPDATE latest_scores SET score = score WHERE false",
    "watchlist_pins": "DELETE FROM watchlist_pins WHERE false",
    "band_overrides": "UPDATE band_overrides SET reason = reason WHERE false",
    "play_runs": "UPDATE play_runs SET status = status WHERE false",
    "tasks": "UPDATE tasks SET status = status WHERE false",
    "plays": "UPDATE plays SET definition = definition WHERE false",
    "scoring_config_versions": "UPDATE scoring_config_versions SET comment = comment WHERE false",
    "churn_models": "DELETE FROM churn_models WHERE false",
    "users": "UPDATE users SET name = name WHERE false",
}


def test_a_write_to_any_table_a_page_reads_drops_the_cached_page(
    client: FlaskClient, book: dict[str, int], engine: sa.Engine, backend: str
) -> None:
    assert set(NO_OP_WRITES) == set(migration_0012().TABLES)  # a table given a trigger later must be added here
    first = watchlist(client)
    cache = page_cache(client.application)
    if backend == "sqlite":
        assert cache is None  # no snapshots to compare: never cached
        return
    for number, (table, statement) in enumerate(sorted(NO_OP_WRITES.items()), start=1):
        assert watchlist(client) == first
        assert (cache.hits, cache.misses) == (number, number), table
        with engine.begin() as conn:  # another connection, as another worker or the scheduler would write
            conn.execute(sa.text(statement))
        assert watchlist(client) == first
        assert (cache.hits, cache.misses) == (number, number + 1), table


def test_cached_pages_follow_every_change(
    client: FlaskClient, book: dict[str, int], db_session: Session, engine: sa.Engine
) -> None:
    """Real changes through the API and behind its back (another connection) show at once."""
    assert "Good" not in by_name(watchlist(client))
    assert client.post(f"/api/v1/watchlist/{book['good']}", json={"reason": "exec"}).status_code == 201
    assert by_name(watchlist(client))["Good"]["reasons"] == ["pinned"]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET name = 'Poor Inc' WHERE id = :id"), {"id": book["poor"]})
    rows = by_name(watchlist(client))
    assert "Poor Inc" in rows and "Poor" not in rows
    run = rows["Flagged"]["play_runs"][0]
    assert run["open_tasks"] == 2
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE tasks SET status = 'done' WHERE play_run_id = :run AND position = 0"), {"run": run["id"]}
        )
    assert by_name(watchlist(client))["Flagged"]["play_runs"][0]["open_tasks"] == 1
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE play_runs SET status = 'completed' WHERE id = :run"), {"run": run["id"]})
    assert "Flagged" not in by_name(watchlist(client))


def test_a_transaction_open_while_the_page_was_read_shows_once_it_commits(
    app: Flask, client: FlaskClient, book: dict[str, int], engine: sa.Engine, backend: str
) -> None:
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(
            sa.text(
                "INSERT INTO watchlist_pins (account_id, reason, author, created_at) VALUES (:id, 'late', 'x', :now)"
            ),
            {"id": book["good"], "now": NOW},
        )
        assert "Good" not in by_name(watchlist(client))  # read (and cached) while the pin is uncommitted
        assert "Good" not in by_name(watchlist(client))
        transaction.commit()
    assert by_name(watchlist(client))["Good"]["reasons"] == ["pinned"]
    if backend == "postgresql":
        assert page_cache(app).hits == 1


def test_a_cached_page_ends_when_a_pin_or_override_expires(
    client: FlaskClient, book: dict[str, int], db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db_session.begin():
        db_session.add(
            WatchlistPin(
                account_id=book["good"], reason="soon over", author="x", created_at=NOW,
                expires_at=NOW + dt.timedelta(minutes=5),
            )
        )  # fmt: skip
        db_session.add(
            BandOverride(
                account_id=book["stable"], band=Band.POOR, reason="we know better", author="x", created_at=NOW,
                expires_at=NOW + dt.timedelta(minutes=10),
            )
        )  # fmt: skip
    monkeypatch.setattr("app.api.watchlist._now", lambda: NOW)
    rows = by_name(watchlist(client))
    assert rows["Good"]["reasons"] == ["pinned"] and rows["Stable"]["reasons"] == ["poor_band"]
    monkeypatch.setattr("app.api.watchlist._now", lambda: NOW + dt.timedelta(minutes=6))
    rows = by_name(watchlist(client))
    assert "Good" not in rows and rows["Stable"]["reasons"] == ["poor_band"]
    monkeypatch.setattr("app.api.watchlist._now", lambda: NOW + dt.timedelta(minutes=11))
    assert "Stable" not in by_name(watchlist(client))


def test_each_book_has_its_own_pages(
    anonymous_client: FlaskClient, issue_token: IssueToken, book: dict[str, int]
) -> None:
    admin = issue_token(Role.ADMIN, "root")
    ana = issue_token(Role.CSM, "ana")
    assert len(watchlist(anonymous_client, headers=bearer(admin))["items"]) == 6
    assert {i["name"] for i in watchlist(anonymous_client, headers=bearer(ana))["items"]} == {"Poor", "Falling 7"}
    assert len(watchlist(anonymous_client, headers=bearer(admin))["items"]) == 6


def test_the_cache_keeps_at_most_its_size_and_prunes_old_changes(
    engine: sa.Engine, database_url: str, book: dict[str, int], backend: str
) -> None:
    app = create_app(TestConfig(DATABASE_URL=database_url, WATCHLIST_CACHE_ENTRIES=2))
    try:
        token = admin_token(engine, "small-admin")
        if backend == "sqlite":  # SQLite gets no change log, and so no cache
            assert not sa.inspect(engine).has_table("watchlist_changes")
            assert watchlist(app.test_client(), headers=bearer(token))["items"]
            assert page_cache(app) is None
            return
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO watchlist_changes (xid, changed_at) VALUES ('1', now() - interval '2 days')")
            )
        client = app.test_client()
        for sort in ("score", "change", "arr_at_risk"):
            watchlist(client, f"?sort={sort}", headers=bearer(token))
        cache = page_cache(app)
        assert len(cache) == 2
        with engine.connect() as conn:
            old = conn.execute(sa.text("SELECT count(*) FROM watchlist_changes WHERE xid = '1'")).scalar_one()
            recent = conn.execute(sa.text("SELECT count(*) FROM watchlist_changes")).scalar_one()
        assert old == 0 and recent > 0  # the first fill pruned the old row and kept the rest
    finally:
        app.extensions["engine"].dispose()


def test_query_loads_are_remembered_never_shared_and_never_for_bad_queries(
    client: FlaskClient, book: dict[str, int]
) -> None:
    schema = WatchlistQuerySchema()
    with client.application.test_request_context("/api/v1/watchlist?sort=score&limit=5"):
        from flask import request
        from webargs.multidictproxy import MultiDictProxy

        first = schema.load(MultiDictProxy(request.args, schema), unknown="raise")
        first["limit"] = 999  # a caller changing its copy changes nothing remembered
        again = schema.load(MultiDictProxy(request.args, schema), unknown="raise")
    assert again == {"sort": "score", "limit": 5, "scope": "book"} and len(schema._memo) == 1
    for _ in range(2):  # a refused query is refused every time
        assert client.get("/api/v1/watchlist?limit=0").status_code == 422
    assert watchlist(client, "?sort=score&limit=5")["limit"] == 5
