"""The alerts API: listing the outbox in the caller's book, acknowledging (API and signed link),
retrying, and editing the routing document (validation, SSRF checks, optimistic versions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from alerts.base import AccountAlert, AlertKind, ChannelType
from alerts.routing import default_routing_data
from alerts.signing import sign_ack
from app.models import Alert, AlertStatus, AuditEntry
from tests import factories as f
from tests.support.auth import bearer

pytestmark = [pytest.mark.api, pytest.mark.db]

IssueToken = Callable[..., str]


def add_alert(session: Session, account_id: int | None, recipient: str, *, key: str, **values: Any) -> Alert:
    payload = AccountAlert(
        kind=AlertKind.IMMEDIATE, account_id=account_id or 0, account_name="Acme", stage="established",
        band="poor", score=30.0, change_7d=-20.0, arr=1000.0, owner="ana", segment=None, renewal_date=None,
        account_url="https://x/api/v1/accounts/1",
    ).to_dict()  # fmt: skip
    alert = Alert(
        dedupe_key=key, kind=AlertKind.IMMEDIATE, channel=ChannelType.EMAIL, recipient=recipient,
        account_id=account_id, day=dt.date(2026, 6, 1), payload=payload, route_ids=[], event_ids=[],
        play_run_ids=[], **values,
    )  # fmt: skip
    session.add(alert)
    session.commit()
    return alert


@pytest.fixture
def books(db_session: Session) -> dict[str, Any]:
    mine = f.make_account(db_session, name="Mine", owner="ana")
    other = f.make_account(db_session, name="Other", owner="bob")
    db_session.commit()
    a = add_alert(db_session, mine.id, "ana@example.com", key="acct:1:e1|csm", requires_ack=True)
    b = add_alert(db_session, mine.id, "channel:team", key="acct:1:e1|channel:team", requires_ack=True)
    c = add_alert(db_session, other.id, "bob@example.com", key="acct:2:e2|csm", status=AlertStatus.DEAD)
    return {"mine": mine, "other": other, "a": a, "b": b, "c": c}


def test_a_csm_lists_the_alerts_of_their_book(
    anonymous_client: FlaskClient, issue_token: IssueToken, books: dict[str, Any]
) -> None:
    token = issue_token("csm", "ana", email="ana@example.com")
    listed = anonymous_client.get("/api/v1/alerts", headers=bearer(token)).get_json()
    assert sorted(a["id"] for a in listed["items"]) == sorted([books["a"].id, books["b"].id])
    assert listed["items"][0]["message"]["account_name"] == "Acme"
    # Someone else's alert is not found rather than forbidden.
    assert anonymous_client.get(f"/api/v1/alerts/{books['c'].id}", headers=bearer(token)).status_code == 404
    # An admin sees everything, and filters.
    admin = issue_token("admin")
    dead = anonymous_client.get("/api/v1/alerts?status=dead", headers=bearer(admin)).get_json()
    assert [a["id"] for a in dead["items"]] == [books["c"].id]


def test_filters_are_validated(client: FlaskClient) -> None:
    response = client.get("/api/v1/alerts?status=lost&per_page=0")
    assert response.status_code == 422
    assert set(response.get_json()["errors"]["query"]) == {"status", "per_page"}


def test_acknowledging_covers_the_copies_and_is_audited(
    anonymous_client: FlaskClient, issue_token: IssueToken, books: dict[str, Any], db_session: Session
) -> None:
    token = issue_token("csm", "ana", email="ana@example.com")
    response = anonymous_client.post(f"/api/v1/alerts/{books['a'].id}/ack", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["acknowledged_by"] == "ana"
    db_session.expire_all()
    assert db_session.get(Alert, books["b"].id).acknowledged_by == "ana"  # the channel's copy too
    assert db_session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 1
    # Again: no change, no second audit entry.
    assert anonymous_client.post(f"/api/v1/alerts/{books['a'].id}/ack", headers=bearer(token)).status_code == 200
    assert db_session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 1
    # Not in the book: 403. Not asking for an acknowledgement: 409. Unknown: 404.
    assert anonymous_client.post(f"/api/v1/alerts/{books['c'].id}/ack", headers=bearer(token)).status_code == 403
    admin = issue_token("admin")
    assert anonymous_client.post(f"/api/v1/alerts/{books['c'].id}/ack", headers=bearer(admin)).status_code == 409
    assert anonymous_client.post("/api/v1/alerts/999999/ack", headers=bearer(admin)).status_code == 404


def test_the_signed_link_acknowledges_without_a_token(
    app: Flask, anonymous_client: FlaskClient, books: dict[str, Any], db_session: Session
) -> None:
    secret = app.config["SECRET_KEY"]
    future = int(dt.datetime.now(dt.UTC).timestamp()) + 3600
    token = sign_ack(secret, books["a"].id, future)
    # Opening the link (what a mail scanner or a link preview does too) only shows a button.
    page = anonymous_client.get(f"/alerts/ack?token={token}")
    assert page.status_code == 200 and 'method="post"' in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    db_session.expire_all()
    assert db_session.get(Alert, books["a"].id).acknowledged_at is None
    response = anonymous_client.post("/alerts/ack", data={"token": token})
    assert response.status_code == 200
    assert "acknowledged" in response.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(Alert, books["a"].id).acknowledged_by == "ack-link"
    again = anonymous_client.get(f"/alerts/ack?token={token}")
    assert again.status_code == 200 and "method=" not in again.get_data(as_text=True)  # already done

    tampered = sign_ack(secret, books["b"].id, future)[:-2] + "xx"
    assert anonymous_client.post("/alerts/ack", data={"token": tampered}).status_code == 400
    expired = sign_ack(secret, books["b"].id, future - 7200)
    assert anonymous_client.get(f"/alerts/ack?token={expired}").status_code == 400
    forged = sign_ack("another-secret", books["b"].id, future)
    assert anonymous_client.post("/alerts/ack", data={"token": forged}).status_code == 400
    assert anonymous_client.get("/alerts/ack").status_code == 400
    not_ackable = sign_ack(secret, books["c"].id, future)
    assert anonymous_client.get(f"/alerts/ack?token={not_ackable}").status_code == 409
    assert anonymous_client.post("/alerts/ack", data={"token": not_ackable}).status_code == 409
    missing = sign_ack(secret, 999999, future)
    assert anonymous_client.post("/alerts/ack", data={"token": missing}).status_code == 404


def test_routing_defaults_then_a_validated_new_version(client: FlaskClient, db_session: Session) -> None:
    current = client.get("/api/v1/alerts/routing").get_json()
    assert current["version"] == 0 and current["document"] == default_routing_data()

    document = default_routing_data()
    document["budget_per_day"] = 5
    document["channels"]["ops"] = {"type": "slack", "url": "https://hooks.slack.com/services/T1/B1/x"}
    document["routes"][0]["notify"].append("channel:ops")
    saved = client.put("/api/v1/alerts/routing", json={"version": 0, "document": document, "comment": "ops too"})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["version"] == 1 and saved.get_json()["document"]["budget_per_day"] == 5
    assert client.get("/api/v1/alerts/routing").get_json()["version"] == 1
    # Based on a stale version: 409, nothing changed.
    stale = client.put("/api/v1/alerts/routing", json={"version": 0, "document": document})
    assert stale.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"budget_per_day": 0}, "document.budget_per_day"),
        ({"surprise": 1}, "document.surprise"),
        ({"digest": {"at": "25:00", "timezone": "UTC", "managers": True, "csms": False, "max_accounts": 25}},
         "document.digest.at"),
    ],
)  # fmt: skip
def test_an_invalid_routing_document_names_the_field(client: FlaskClient, change: dict[str, Any], field: str) -> None:
    document = {**default_routing_data(), **change}
    response = client.put("/api/v1/alerts/routing", json={"version": 0, "document": document})
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]["json"]
    assert client.get("/api/v1/alerts/routing").get_json()["version"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/x",  # not https
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://10.0.0.5/hook",  # private
        "https://127.0.0.1/hook",  # loopback
        "https://evil.example.com/hook",  # not on the allowlist
    ],
)
def test_webhook_urls_that_could_forge_requests_are_refused(client: FlaskClient, url: str) -> None:
    document = default_routing_data()
    document["channels"]["ops"] = {"type": "slack", "url": url}
    response = client.put("/api/v1/alerts/routing", json={"version": 0, "document": document})
    assert response.status_code == 422, response.get_json()
    assert "document.channels.ops.url" in response.get_json()["errors"]["json"]


def test_routing_is_for_admins_and_bodies_must_be_json(anonymous_client: FlaskClient, issue_token: IssueToken) -> None:
    manager = issue_token("manager")
    assert anonymous_client.get("/api/v1/alerts/routing", headers=bearer(manager)).status_code == 403
    admin = bearer(issue_token("admin"))
    assert anonymous_client.put("/api/v1/alerts/routing", headers=admin, data="x").status_code == 415
    broken = anonymous_client.put("/api/v1/alerts/routing", headers=admin, data="{", content_type="application/json")
    assert broken.status_code == 400
    missing = anonymous_client.put("/api/v1/alerts/routing", headers=admin, json={"document": {}})
    assert missing.status_code == 422 and "version" in missing.get_json()["errors"]["json"]
