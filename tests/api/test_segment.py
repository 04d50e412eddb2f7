"""The Segment endpoint on both databases: group, identify and track calls, batches, idempotence."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Account, Contact, DailyUsage, UsageSignal

pytestmark = [pytest.mark.api, pytest.mark.db]

GROUP = {"type": "group", "messageId": "g-1", "userId": "u-1", "groupId": "acme", "timestamp": "2026-06-01T09:00:00Z",
         "traits": {"name": "Acme", "plan": "enterprise", "seats": 40, "arr": 48000, "renewal_date": "2027-01-31",
                    "industry": "Retail"},
         "context": {"library": {"name": "analytics.js"}}}  # fmt: skip


def track(n: int, user: str, event: str, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": f"t-{n}", "userId": user, "event": event,
            "timestamp": "2026-06-02T10:00:00Z", "context": {"groupId": "acme"}, **extra}  # fmt: skip


def post(client: FlaskClient, body: Any) -> Any:
    return client.post("/api/v1/ingest/segment", json=body)


def test_group_creates_then_updates_the_account_with_the_traits_given(client: FlaskClient, db_session: Session) -> None:
    assert post(client, GROUP).get_json() == {"received": 1, "landed": 1, "ignored": 0, "duplicates": 0, "rejected": []}
    post(client, {**GROUP, "messageId": "g-2", "traits": {"seats": 55}})
    with db_session.begin():
        account = db_session.scalars(sa.select(Account)).one()
        assert (account.external_id, account.name, account.segment, account.seats_purchased, account.arr) == (
            "acme", "Acme", "enterprise", 55, 48000.0,
        )  # fmt: skip
        assert str(account.renewal_date) == "2027-01-31" and str(account.contract_start) == "2026-06-01"


def test_a_batch_of_tracks_becomes_daily_usage_and_signals_once(client: FlaskClient, db_session: Session) -> None:
    post(client, GROUP)
    batch = {"batch": [
        track(1, "u-1", "Signed In"),
        track(2, "u-2", "Signed In"),
        track(3, "u-1", "Data Export"),
        track(4, "u-1", "Built Report", properties={"key_feature": True}),
        {"type": "page", "messageId": "p-1", "userId": "u-1", "name": "Home"},
        {**track(5, "u-3", "Signed In"), "context": {}},  # no groupId: not an account's usage
    ]}  # fmt: skip
    first = post(client, batch).get_json()
    assert first == {"received": 6, "landed": 4, "ignored": 2, "duplicates": 0, "rejected": []}
    again = post(client, batch).get_json()  # Segment retried: nothing changes
    assert again["landed"] == 0 and again["duplicates"] == 6
    with db_session.begin():
        usage = db_session.scalars(sa.select(DailyUsage)).one()
        signals = {s.signal: s.count for s in db_session.scalars(sa.select(UsageSignal))}
    assert (usage.active_users, usage.logins, usage.key_feature_uses) == (2, 2, 1)
    assert signals == {"signed_in": 2, "data_export": 1, "built_report": 1}
    post(client, {"batch": [track(6, "u-3", "Signed In")]})
    db_session.expire_all()  # the session above still holds the row as it was
    with db_session.begin():
        usage = db_session.scalars(sa.select(DailyUsage)).one()
    assert (usage.active_users, usage.logins) == (3, 3)


def test_identify_with_a_group_adds_a_contact(client: FlaskClient, db_session: Session) -> None:
    post(client, GROUP)
    call = {"type": "identify", "messageId": "i-1", "userId": "u-9", "context": {"groupId": "acme"},
            "traits": {"email": "kim@acme.test", "name": "Kim", "role": "champion"}}  # fmt: skip
    assert post(client, call).get_json()["landed"] == 1
    with db_session.begin():
        contact = db_session.scalars(sa.select(Contact)).one()
    assert (contact.external_id, contact.role, contact.email, contact.source) == (
        "u-9",
        "champion",
        "kim@acme.test",
        "segment",
    )


def test_bad_calls_are_rejected_and_unknown_accounts_land_on_a_later_retry(
    client: FlaskClient, db_session: Session
) -> None:
    batch = {"batch": [
        track(1, "u-1", "Signed In"),  # account not known yet
        {"type": "track", "messageId": "t-x", "context": {"groupId": "acme"}},  # no event, no user
        {"type": "group", "messageId": "g-x", "groupId": "acme", "traits": {"seats": -3}},
        {"type": "launch", "messageId": "l-1"},
        "not a call",
        {**track(2, "u-1", "Signed In"), "timestamp": "2099-01-01T00:00:00Z"},
    ]}  # fmt: skip
    body = post(client, batch).get_json()
    assert body["landed"] == 0
    assert {r["index"]: r["errors"] for r in body["rejected"]} == {
        0: {"context": {"groupId": ["Unknown account 'acme'."]}},
        1: {"event": ["A track call needs event."], "userId": ["Needs userId or anonymousId."]},
        2: {"traits": {"seats": ["Must be greater than or equal to 0."]}},
        3: {"type": ["Must be one of: identify, group, track, page, screen, alias."]},
        4: {"_schema": ["Each call must be a JSON object."]},
        5: {"timestamp": ["Must not be in the future."]},
    }
    post(client, GROUP)
    assert post(client, {"batch": [track(1, "u-1", "Signed In")]}).get_json()["landed"] == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [({"batch": []}, 422), ({"batch": "x"}, 422), ([GROUP], 422)],
)
def test_unreadable_bodies(client: FlaskClient, body: Any, status: int) -> None:
    assert post(client, body).status_code == status
