"""The events and rules API: filters, pagination, item shape and refusals, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Account, Event
from app.pipeline.run import run_scoring
from scoring.model import default_config_dict
from scoring.rules import describe, rule_from_dict
from tests import factories as f

pytestmark = [pytest.mark.api, pytest.mark.db]

D = dt.date(2026, 6, 1)


def add_event(session: Session, account: Account, rule_id: str, day: dt.date, **overrides: Any) -> Event:
    values: dict[str, Any] = {
        "account_id": account.id,
        "rule_id": rule_id,
        "rule_name": rule_id.replace("_", " "),
        "kind": "risk",
        "severity": "high",
        "stage": "established",
        "day": day,
        "config_version": 1,
        "score": 40.0,
        "trigger_values": {"value": 1.5, "threshold": 1.0},
    }
    values.update(overrides)
    event = Event(**values)
    session.add(event)
    session.flush()
    return event


@pytest.fixture
def events(db_session: Session) -> dict[str, int]:
    """Two accounts, five events over three days."""
    with db_session.begin():
        ana = f.make_account(db_session, name="Ana Co", owner="ana@example.com")
        bo = f.make_account(db_session, name="Bo Inc", owner="bo@example.com")
        add_event(db_session, ana, "any_into_poor", D)
        add_event(db_session, ana, "est_frequent_logins", D + dt.timedelta(days=1), kind="milestone", severity="low")
        add_event(db_session, bo, "pre_open_tickets", D + dt.timedelta(days=1), stage="pre_renewal", severity="medium")
        add_event(db_session, bo, "any_into_poor", D + dt.timedelta(days=2), stage="pre_renewal")
        add_event(
            db_session, bo, "onb_setup_completed", D + dt.timedelta(days=2), kind="milestone", stage="onboarding",
            severity="low", score=None,
        )  # fmt: skip
    return {"ana": ana.id, "bo": bo.id}


def rules_of(body: dict[str, Any]) -> list[str]:
    return [item["rule_id"] for item in body["items"]]


def test_events_newest_first_with_account_name_and_owner(client: FlaskClient, events: dict[str, int]) -> None:
    response = client.get("/api/v1/events")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 5 and body["page"] == 1 and body["per_page"] == 50
    # Newest day first; within a day, the later event first.
    assert rules_of(body) == [
        "onb_setup_completed", "any_into_poor", "pre_open_tickets", "est_frequent_logins", "any_into_poor",
    ]  # fmt: skip
    first = body["items"][0]
    assert first["account_id"] == events["bo"]
    assert first["account_name"] == "Bo Inc" and first["owner"] == "bo@example.com"
    assert first["kind"] == "milestone" and first["severity"] == "low" and first["stage"] == "onboarding"
    assert first["day"] == "2026-06-03" and first["score"] is None and first["config_version"] == 1
    assert body["items"][1]["trigger_values"] == {"value": 1.5, "threshold": 1.0}
    assert set(first) >= {"id", "rule_name", "created_at"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("since=2026-06-02", ["onb_setup_completed", "any_into_poor", "pre_open_tickets", "est_frequent_logins"]),
        ("kind=milestone", ["onb_setup_completed", "est_frequent_logins"]),
        ("rule=any_into_poor", ["any_into_poor", "any_into_poor"]),
        ("stage=pre_renewal", ["any_into_poor", "pre_open_tickets"]),
        ("owner=ana@example.com", ["est_frequent_logins", "any_into_poor"]),
        ("severity=medium", ["pre_open_tickets"]),
        ("kind=risk&owner=bo@example.com&since=2026-06-03", ["any_into_poor"]),
        ("owner=nobody@example.com", []),
    ],
)
def test_event_filters(client: FlaskClient, events: dict[str, int], query: str, expected: list[str]) -> None:
    body = client.get(f"/api/v1/events?{query}").get_json()
    assert rules_of(body) == expected
    assert body["total"] == len(expected)


def test_events_paginate(client: FlaskClient, events: dict[str, int]) -> None:
    body = client.get("/api/v1/events?per_page=2&page=2").get_json()
    assert body["total"] == 5 and body["page"] == 2 and body["per_page"] == 2
    assert rules_of(body) == ["pre_open_tickets", "est_frequent_logins"]
    assert client.get("/api/v1/events?per_page=2&page=9").get_json()["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("colour=red", "colour"),
        ("since=2026-13-01", "since"),
        ("since=yesterday", "since"),
        ("kind=warning", "kind"),
        ("stage=dormant", "stage"),
        ("severity=critical", "severity"),
        ("rule=", "rule"),
        ("per_page=101", "per_page"),
        ("page=0", "page"),
    ],
)
def test_event_query_refused_with_field_message(
    client: FlaskClient, events: dict[str, int], query: str, field: str
) -> None:
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert list(body["errors"]["query"]) == [field]
    assert body["errors"]["query"][field]


def test_account_events(client: FlaskClient, events: dict[str, int]) -> None:
    body = client.get(f"/api/v1/accounts/{events['bo']}/events").get_json()
    assert body["total"] == 3
    assert rules_of(body) == ["onb_setup_completed", "any_into_poor", "pre_open_tickets"]
    assert {item["account_name"] for item in body["items"]} == {"Bo Inc"}
    assert {item["owner"] for item in body["items"]} == {"bo@example.com"}
    risks = client.get(f"/api/v1/accounts/{events['bo']}/events?kind=risk&since=2026-06-03").get_json()
    assert rules_of(risks) == ["any_into_poor"]
    page = client.get(f"/api/v1/accounts/{events['bo']}/events?per_page=1&page=3").get_json()
    assert rules_of(page) == ["pre_open_tickets"] and page["total"] == 3


def test_account_events_refusals(client: FlaskClient, events: dict[str, int]) -> None:
    missing = client.get("/api/v1/accounts/999999/events")
    assert missing.status_code == 404
    assert missing.get_json() == {"code": 404, "status": "Not Found", "message": "Account 999999 does not exist."}
    # The account endpoint filters by since and kind only.
    other = client.get(f"/api/v1/accounts/{events['bo']}/events?rule=any_into_poor")
    assert other.status_code == 422
    assert other.get_json()["errors"]["query"] == {"rule": ["Unknown field."]}
    bad = client.get(f"/api/v1/accounts/{events['bo']}/events?since=2026-02-30&kind=nope")
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]["query"]) == {"since", "kind"}


def test_events_from_a_real_scoring_run(client: FlaskClient, db_session: Session) -> None:
    """An account that stopped using the product goes poor: the run's events show up in the API."""
    as_of = dt.date(2026, 6, 30)
    with db_session.begin():
        f.activate_config(db_session, f.firing_on_first_day())  # its first scored day: let it fire
        idle = f.make_account(db_session, name="Idle Ltd", owner="bo@example.com")
        f.add_usage(
            db_session, idle, as_of - dt.timedelta(days=89), as_of - dt.timedelta(days=40),
            active_users=1, logins=1, key_feature_uses=0,
        )  # fmt: skip
        f.add_license(db_session, idle, as_of, purchased=10, assigned=4, active=1)
    with db_session.begin():
        run_scoring(db_session, as_of=as_of)
    body = client.get("/api/v1/events?rule=any_into_poor").get_json()
    assert body["total"] == 1
    event = body["items"][0]
    assert event["account_name"] == "Idle Ltd" and event["owner"] == "bo@example.com"
    assert event["day"] == "2026-06-30" and event["kind"] == "risk"
    assert event["trigger_values"]["band"] == "poor"
    mine = client.get(f"/api/v1/accounts/{idle.id}/events?kind=risk").get_json()
    assert "any_into_poor" in rules_of(mine)


def test_rules_of_the_active_config(client: FlaskClient, db_session: Session) -> None:
    response = client.get("/api/v1/rules")
    assert response.status_code == 200
    body = response.get_json()
    assert body["config_version"] == 1
    shipped = default_config_dict()["rules"]
    assert [item["id"] for item in body["items"]] == [r["id"] for r in shipped]
    by_id = {item["id"]: item for item in body["items"]}
    licenses = by_id["onb_licenses_20pct"]
    assert licenses["kind"] == "milestone" and licenses["type"] == "threshold"
    assert licenses["stages"] == ["onboarding"]
    assert {"value", "op", "at"} <= set(licenses["parameters"])
    assert not {"id", "name", "kind", "type", "stages"} & set(licenses["parameters"])
    for data in shipped:
        assert by_id[data["id"]]["description"] == describe(rule_from_dict(data))
    poor = by_id["any_into_poor"]
    assert poor["parameters"] == {"band": "poor"} and poor["stages"] == []
    assert poor["description"] == "moved into the poor band"


def test_rules_are_read_only_and_take_no_query(client: FlaskClient, db_session: Session) -> None:
    refused = client.get("/api/v1/rules?kind=risk")
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["query"] == {"kind": ["Unknown field."]}
    assert client.post("/api/v1/rules", json=[]).status_code == 405
