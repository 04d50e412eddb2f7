"""The accounts API and the uniform JSON error body, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.pipeline.run import run_scoring
from tests import factories as f

pytestmark = [pytest.mark.api, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def scored(db_session: Session) -> dict[str, int]:
    """Three accounts: busy, idle and one without any data; scored on two days."""
    with db_session.begin():
        busy = f.make_account(db_session, name="Busy Corp", owner="ana@example.com", segment="enterprise", arr=90_000)
        f.add_usage(
            db_session, busy, AS_OF - dt.timedelta(days=89), AS_OF, active_users=8, logins=12, key_feature_uses=6
        )
        f.add_license(db_session, busy, AS_OF, purchased=10, assigned=10, active=9)
        idle = f.make_account(db_session, name="Idle Ltd", owner="bo@example.com", arr=20_000)
        f.add_usage(
            db_session,
            idle,
            AS_OF - dt.timedelta(days=89),
            AS_OF - dt.timedelta(days=40),
            active_users=1,
            logins=1,
            key_feature_uses=0,
        )
        f.add_license(db_session, idle, AS_OF, purchased=10, assigned=4, active=1)
        empty = f.make_account(db_session, name="Empty Inc", owner="bo@example.com", arr=5_000)
    for day in (AS_OF - dt.timedelta(days=7), AS_OF):
        with db_session.begin():
            run_scoring(db_session, as_of=day)
    return {"busy": busy.id, "idle": idle.id, "empty": empty.id}


def test_list_accounts_with_latest_health(client: FlaskClient, scored: dict[str, int]) -> None:
    response = client.get("/api/v1/accounts?sort=-score")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 3 and body["page"] == 1 and body["per_page"] == 50
    names = [item["name"] for item in body["items"]]
    assert names == ["Busy Corp", "Idle Ltd", "Empty Inc"]  # no score sorts last
    busy = body["items"][0]
    assert busy["health"]["band"] == "good" and busy["health"]["stage"] == "established"
    assert 0 < busy["health"]["completeness"] <= 1
    # The license snapshot arrived on AS_OF, so the score 7 days earlier lacked it.
    history = client.get(f"/api/v1/accounts/{scored['busy']}").get_json()["history"]
    assert busy["health"]["score_change_7d"] == pytest.approx(history[0]["score"] - history[1]["score"], abs=1e-3)
    assert busy["health"]["score_change_30d"] is None
    assert body["items"][2]["health"]["score"] is None


def test_list_accounts_filters_and_pages(client: FlaskClient, scored: dict[str, int]) -> None:
    body = client.get("/api/v1/accounts?owner=bo@example.com&per_page=1&page=2&sort=name").get_json()
    assert body["total"] == 2
    assert [item["name"] for item in body["items"]] == ["Idle Ltd"]
    poor = client.get("/api/v1/accounts?band=poor").get_json()
    assert [item["name"] for item in poor["items"]] == ["Idle Ltd"]


def test_account_detail_has_drivers_and_history(client: FlaskClient, scored: dict[str, int]) -> None:
    response = client.get(f"/api/v1/accounts/{scored['idle']}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "Idle Ltd"
    health = body["health"]
    drivers = health["drivers"]
    assert len(drivers) == 11
    contributions = [d["contribution"] for d in drivers if d["contribution"] is not None]
    assert contributions == sorted(contributions)  # most negative first
    assert health["score"] == pytest.approx(50 + sum(contributions), abs=0.05)
    assert drivers[0]["contribution"] < 0
    assert {d["measure"] for d in drivers if d["score"] is None} >= {"nps", "csat_avg"}
    assert [point["day"] for point in body["history"]] == [
        AS_OF.isoformat(),
        (AS_OF - dt.timedelta(days=7)).isoformat(),
    ]


def test_account_without_data_shows_null_score(client: FlaskClient, scored: dict[str, int]) -> None:
    body = client.get(f"/api/v1/accounts/{scored['empty']}").get_json()
    assert body["health"]["score"] is None and body["health"]["band"] is None
    assert body["health"]["completeness"] == 0
    assert all(d["contribution"] is None for d in body["health"]["drivers"])


def test_unknown_account_is_a_json_404(client: FlaskClient, scored: dict[str, int]) -> None:
    response = client.get("/api/v1/accounts/999999")
    assert response.status_code == 404
    assert response.get_json() == {"code": 404, "status": "Not Found", "message": "Account 999999 does not exist."}


def test_unknown_route_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    body = response.get_json()
    assert body["code"] == 404 and body["status"] == "Not Found" and body["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_page=500", "per_page"),
        ("page=0", "page"),
        ("band=purple", "band"),
        ("sort=size", "sort"),
        ("colour=red", "colour"),
    ],
)
def test_bad_query_is_a_422_with_field_messages(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/v1/accounts?{query}")
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert list(body["errors"]["query"]) == [field]


def test_unexpected_error_is_a_json_500_without_internals(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret connection string postgres://user:pw@db")

    monkeypatch.setattr("app.api.accounts.list_accounts", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/api/v1/accounts")
    assert response.status_code == 500
    body = response.get_json()
    assert body == {
        "code": 500,
        "status": "Internal Server Error",
        "message": "The server met an unexpected error; it has been logged.",
    }


def test_openapi_document_lists_the_endpoints(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/accounts", "/api/v1/accounts/{account_id}"} <= set(spec["paths"])
