"""The push API on both databases: every kind lands, re-posting is idempotent, bad input gets clear errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import (
    Account,
    Contact,
    DailyUsage,
    Feedback,
    Goal,
    LatestScore,
    LicenseSnapshot,
    Outcome,
    SupportTicket,
    UsageSignal,
)
from app.pipeline.run import run_scoring

pytestmark = [pytest.mark.api, pytest.mark.db]

ACCOUNT = {"external_id": "acme", "name": "Acme", "contract_start": "2025-01-01", "seats_purchased": 20, "arr": 24000}
VALID: dict[str, tuple[dict[str, Any], type]] = {
    "contacts": ({"account": "acme", "external_id": "c1", "role": "champion", "added_on": "2025-02-01",
                  "email": "kim@acme.test"}, Contact),
    "usage": ({"account": "acme", "day": "2026-06-01", "active_users": 7, "logins": 12, "key_feature_uses": 4,
               "signals": {"data_export": 2}}, DailyUsage),
    "licenses": ({"account": "acme", "day": "2026-06-01", "seats_purchased": 20, "seats_assigned": 18,
                  "seats_active": 12}, LicenseSnapshot),
    "tickets": ({"account": "acme", "external_id": "t1", "priority": "high", "status": "open",
                 "opened_at": "2026-06-01T09:30:00Z", "sla_breached": True}, SupportTicket),
    "feedback": ({"account": "acme", "external_id": "r1", "kind": "nps", "day": "2026-06-01", "score": 9}, Feedback),
    "goals": ({"account": "acme", "external_id": "g1", "title": "Roll out to sales", "status": "achieved",
               "created_on": "2026-01-01", "achieved_on": "2026-05-01"}, Goal),
    "outcomes": ({"account": "acme", "external_id": "o1", "kind": "expanded", "day": "2026-05-15",
                  "arr_change": 6000}, Outcome),
}  # fmt: skip


def post(client: FlaskClient, kind: str, records: Any, **query: str) -> Any:
    return client.post(f"/api/v1/ingest/{kind}", json=records, query_string=query)


def count(session: Session, model: type) -> int:
    with session.begin():
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


@pytest.fixture
def acme(client: FlaskClient) -> None:
    assert post(client, "accounts", [ACCOUNT]).status_code == 200


def test_accounts_land_and_update_by_external_id(client: FlaskClient, db_session: Session) -> None:
    response = post(client, "accounts", [ACCOUNT])
    assert response.status_code == 200
    assert response.get_json() == {"kind": "accounts", "received": 1, "landed": 1, "rejected": []}
    assert post(client, "accounts", [{**ACCOUNT, "seats_purchased": 25}]).status_code == 200
    with db_session.begin():
        account = db_session.scalars(sa.select(Account)).one()
        assert account.seats_purchased == 25 and account.name == "Acme"


@pytest.mark.parametrize("kind", sorted(VALID))
def test_each_kind_lands_and_reposting_changes_nothing(
    client: FlaskClient, db_session: Session, acme: None, kind: str
) -> None:
    record, model = VALID[kind]
    for _ in range(2):
        response = post(client, kind, [record])
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["landed"] == 1
    assert count(db_session, model) == 1


def test_a_later_version_updates_the_record(client: FlaskClient, db_session: Session, acme: None) -> None:
    record, _ = VALID["usage"]
    post(client, "usage", [record])
    post(client, "usage", [{**record, "active_users": 9, "signals": {"data_export": 3}}])
    with db_session.begin():
        usage = db_session.scalars(sa.select(DailyUsage)).one()
        signal = db_session.scalars(sa.select(UsageSignal)).one()
    assert usage.active_users == 9 and signal.count == 3


def test_source_is_part_of_the_natural_key(client: FlaskClient, db_session: Session, acme: None) -> None:
    record, _ = VALID["tickets"]
    post(client, "tickets", [record], source="zendesk")
    post(client, "tickets", [record], source="intercom")
    post(client, "tickets", [record], source="zendesk")
    with db_session.begin():
        sources = sorted(db_session.scalars(sa.select(SupportTicket.source)))
    assert sources == ["intercom", "zendesk"]


def test_good_records_land_beside_bad_ones(client: FlaskClient, db_session: Session, acme: None) -> None:
    usage, _ = VALID["usage"]
    batch = [
        usage,  # 0: good
        {**usage, "day": "2026-06-02", "active_users": "many"},  # 1: wrong type
        {**usage, "day": "2026-06-03", "colour": "red"},  # 2: unknown field
        {"account": "acme", "active_users": 3},  # 3: missing day
        {**usage, "account": "globex"},  # 4: unknown account
        {**usage, "day": "2099-01-01"},  # 5: in the future
        {**usage, "day": "June 4th"},  # 6: unparseable date
        {**usage, "active_users": 8},  # 7: same account + day as record 0
        {**usage, "day": "2026-06-05"},  # 8: good
        ["not", "an", "object"],  # 9
    ]
    body = post(client, "usage", batch).get_json()
    assert body["received"] == 10 and body["landed"] == 2
    assert {r["index"]: r["errors"] for r in body["rejected"]} == {
        1: {"active_users": ["Not a valid integer."]},
        2: {"colour": ["Unknown field."]},
        3: {"day": ["Missing data for required field."]},
        4: {"account": ["Unknown account 'globex'."]},
        5: {"day": ["Must not be in the future."]},
        6: {"day": ["Not a valid date."]},
        7: {"_schema": ["Same account + day as record 0 in this batch."]},
        9: {"_schema": ["Each record must be a JSON object."]},
    }
    assert count(db_session, DailyUsage) == 2


@pytest.mark.parametrize(
    ("kind", "record", "errors"),
    [
        ("accounts", {**ACCOUNT, "seats_purchased": -5}, {"seats_purchased": ["Must be greater than or equal to 0."]}),
        ("accounts", {**ACCOUNT, "renewal_date": "2024-01-01"}, {"renewal_date": ["Must not be before contract_start."]}),
        ("feedback", {**VALID["feedback"][0], "score": 11}, {"score": ["A nps score must be between 0 and 10."]}),
        ("feedback", {**VALID["feedback"][0], "score": 7.5}, {"score": ["An NPS score is a whole number from 0 to 10."]}),
        ("feedback", {**VALID["feedback"][0], "kind": "csat", "score": 0}, {"score": ["A csat score must be between 1 and 5."]}),
        ("licenses", {**VALID["licenses"][0], "seats_active": -1}, {"seats_active": ["Must be greater than or equal to 0."]}),
        ("tickets", {**VALID["tickets"][0], "closed_at": "2026-05-01T00:00:00Z"}, {"closed_at": ["Must not be before opened_at."]}),
        ("goals", {**VALID["goals"][0], "achieved_on": None}, {"achieved_on": ["An achieved goal needs achieved_on."]}),
        ("contacts", {**VALID["contacts"][0], "role": "boss"}, {"role": ["Must be one of: admin, champion, user."]}),
    ],
)  # fmt: skip
def test_invalid_records_get_field_messages(
    client: FlaskClient, acme: None, kind: str, record: dict[str, Any], errors: dict[str, Any]
) -> None:
    response = post(client, kind, [record])
    assert response.status_code == 422
    body = response.get_json()
    assert body["message"] == "No record in the batch was valid."
    assert body["errors"]["json"]["rejected"] == [{"index": 0, "errors": errors}]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "message"),
    [
        ("[{", "application/json", 400, "The body is not valid JSON"),
        ("[]", "text/plain", 415, "Send JSON, with Content-Type: application/json."),
        ("[]", "application/json", 422, "The batch is empty."),
        ('{"external_id": "x"}', "application/json", 422, "Send a JSON array of records."),
    ],
)
def test_unreadable_batches_are_refused(
    client: FlaskClient, data: str, content_type: str, status: int, message: str
) -> None:
    response = client.post("/api/v1/ingest/accounts", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["code"] == status and response.get_json()["message"].startswith(message)


def test_an_oversized_batch_is_413(app: Flask, client: FlaskClient, db_session: Session) -> None:
    app.config["INGEST_MAX_BATCH"] = 3
    response = post(client, "accounts", [{**ACCOUNT, "external_id": f"a{i}"} for i in range(4)])
    assert response.status_code == 413
    assert response.get_json()["message"] == "At most 3 records per batch; this one has 4."
    assert count(db_session, Account) == 0


def test_unknown_kind_and_bad_source(client: FlaskClient) -> None:
    assert post(client, "widgets", [ACCOUNT]).status_code == 404
    response = post(client, "accounts", [ACCOUNT], source="Bad Source!")
    assert response.status_code == 422 and list(response.get_json()["errors"]["query"]) == ["source"]


def test_pushed_data_is_scored(client: FlaskClient, db_session: Session, acme: None) -> None:
    days = [dt.date(2026, 6, 1) + dt.timedelta(days=i) for i in range(30)]
    usage = [{"account": "acme", "day": d.isoformat(), "active_users": 10, "logins": 15} for d in days]
    assert post(client, "usage", usage).get_json()["landed"] == 30
    with db_session.begin():
        run_scoring(db_session, as_of=days[-1])
    with db_session.begin():
        latest = db_session.scalars(sa.select(LatestScore)).one()
    assert latest.score is not None and latest.completeness > 0


def test_flat_account_events_count_as_product_signals(client: FlaskClient, db_session: Session, acme: None) -> None:
    events = [
        {"account": "acme", "event": "data_export", "day": "2026-06-01", "quantity": 3},
        {"account": "acme", "event": "report_viewed", "day": "2026-06-01"},
        {"account": "acme", "event": "Data Export!", "day": "2026-06-01"},
        {"account": "acme", "event": "data_export", "day": "2026-06-01", "quantity": 4},
    ]
    body = post(client, "events", events).get_json()
    assert body["landed"] == 2
    assert {r["index"]: r["errors"] for r in body["rejected"]} == {
        2: {"event": ["Use lowercase letters, digits and _ (a signal name)."]},
        3: {"_schema": ["Same account + day + signal as record 0 in this batch."]},
    }
    post(client, "events", [{**events[0], "quantity": 5}])  # a later count for the day replaces it
    with db_session.begin():
        signals = {s.signal: s.count for s in db_session.scalars(sa.select(UsageSignal))}
    assert signals == {"data_export": 5, "report_viewed": 1}


def test_integers_too_large_for_the_database_are_field_errors(
    client: FlaskClient, db_session: Session, acme: None
) -> None:
    usage, _ = VALID["usage"]
    batch = [
        usage,
        {**usage, "day": "2026-06-02", "logins": 2**40},
        {**usage, "day": "2026-06-03", "active_users": 2**31},
    ]
    body = post(client, "usage", batch).get_json()
    assert body["landed"] == 1
    assert {r["index"] for r in body["rejected"]} == {1, 2}
    assert "logins" in body["rejected"][0]["errors"]
    assert count(db_session, DailyUsage) == 1
    assert client.get("/api/v1/accounts/99999999999").status_code == 404
    assert client.get("/api/v1/accounts?page=99999999999").status_code == 422
