"""Bad bytes and numbers from outside (issue 17, "Inputs"): NUL characters, unpaired surrogates,
numbers nothing can store and deep JSON get a field-level 4xx, never a 500, and the good records
of a batch beside a bad one land. Every body here is sent as raw text, as an attacker would."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Account, DailyUsage, Feedback, SupportTicket
from tests import factories as f

pytestmark = [pytest.mark.api, pytest.mark.db]

NUL = "\x00"
SURROGATE = "\ud800"
HUGE_INT = "9" * 4300  # Python's own limit for reading an integer
HUGER_INT = "9" * 5000
DEEP = "[" * 1000 + "]" * 1000

#: (name, a JSON literal to put where a value goes)
BAD_VALUES = [
    ("nul", json.dumps("ac" + NUL + "me")),
    ("surrogate", json.dumps("ac" + SURROGATE + "me")),  # json.dumps writes it as \ud800
    ("4300 digits", HUGE_INT),
    ("5000 digits", HUGER_INT),
    ("1e400", "1e400"),
    ("NaN", "NaN"),
    ("-Infinity", "-Infinity"),
    ("1e300", "1e300"),
    ("deep", "[" * 30 + "]" * 30),
]


def raw(client: FlaskClient, method: str, path: str, body: str, **kwargs: Any) -> Any:
    return client.open(path, method=method, data=body.encode("utf-8", "surrogatepass"),
                       content_type="application/json", **kwargs)  # fmt: skip


def count(session: Session, model: type) -> int:
    with session.begin():
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


@pytest.fixture
def acme(db_session: Session) -> Account:
    with db_session.begin():
        return f.make_account(db_session, external_id="acme", owner="csm-user")


def _usage(n: int, **override: str) -> str:
    fields = {"account": '"acme"', "day": f'"2026-06-{n:02d}"', "active_users": "7", "logins": "3"}
    fields.update(override)
    return "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"


@pytest.mark.parametrize(("name", "literal"), BAD_VALUES, ids=[n for n, _ in BAD_VALUES])
@pytest.mark.parametrize("field", ["account", "active_users", "day"])
def test_one_bad_usage_record_is_refused_alone_and_the_good_ones_land(  # noqa: PLR0917 - fixtures
    client: FlaskClient, db_session: Session, acme: Account, name: str, literal: str, field: str
) -> None:
    body = "[" + ",".join([_usage(1), _usage(2, **{field: literal}), _usage(3)]) + "]"
    response = raw(client, "POST", "/api/v1/ingest/usage", body)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    answer = response.get_json()
    assert answer["landed"] == 2
    assert [r["index"] for r in answer["rejected"]] == [1]
    assert field in answer["rejected"][0]["errors"] or "_schema" in answer["rejected"][0]["errors"]
    assert count(db_session, DailyUsage) == 2


@pytest.mark.parametrize(("name", "literal"), BAD_VALUES, ids=[n for n, _ in BAD_VALUES])
def test_bad_values_in_text_and_decimal_fields_of_other_kinds(
    client: FlaskClient, db_session: Session, acme: Account, name: str, literal: str
) -> None:
    good = '{"account":"acme","external_id":"r1","kind":"csat","day":"2026-06-01","score":4}'
    bad_comment = (
        f'{{"account":"acme","external_id":"r2","kind":"csat","day":"2026-06-01","score":4,"comment":{literal}}}'
    )
    bad_score = f'{{"account":"acme","external_id":"r3","kind":"csat","day":"2026-06-01","score":{literal}}}'
    response = raw(client, "POST", "/api/v1/ingest/feedback", f"[{good},{bad_comment},{bad_score}]")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert [r["index"] for r in response.get_json()["rejected"]] == [1, 2]
    assert count(db_session, Feedback) == 1

    ticket = '{{"account":"acme","external_id":"{x}","priority":"high","status":"open","opened_at":"2026-06-01T09:00:00Z","subject":{s}}}'
    body = "[" + ticket.format(x="t1", s='"ok"') + "," + ticket.format(x="t2", s=literal) + "]"
    response = raw(client, "POST", "/api/v1/ingest/tickets", body)
    assert response.status_code == 200 and response.get_json()["landed"] == 1
    assert count(db_session, SupportTicket) == 1


def test_a_bad_account_record_and_a_huge_arr(client: FlaskClient, db_session: Session) -> None:
    good = '{"external_id":"a1","name":"One","contract_start":"2025-01-01"}'
    bad = [
        '{"external_id":"a2","name":"T\\u0000wo","contract_start":"2025-01-01"}',
        '{"external_id":"a3","name":"Three","contract_start":"2025-01-01","arr":1e20}',
        '{"external_id":"a\\udfff4","name":"Four","contract_start":"2025-01-01"}',
        '{"external_id":"a5","name":"Five","contract_start":"2025-01-01","segment":{"x\\u0000":1}}',
    ]
    response = raw(client, "POST", "/api/v1/ingest/accounts", "[" + ",".join([good, *bad]) + "]")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    answer = response.get_json()
    assert answer["landed"] == 1 and [r["index"] for r in answer["rejected"]] == [1, 2, 3, 4]
    assert answer["rejected"][0]["errors"] == {
        "name": ["Must not contain NUL characters or unpaired UTF-16 surrogates."]
    }
    assert "arr" in answer["rejected"][1]["errors"]
    assert count(db_session, Account) == 1


def test_segment_batches_with_bad_calls_land_the_good_ones_and_never_ask_for_a_retry(
    client: FlaskClient, db_session: Session, acme: Account
) -> None:
    calls = [
        '{"type":"track","messageId":"m1","userId":"u1","event":"Report Exported","context":{"groupId":"acme"},"timestamp":"2026-06-01T10:00:00Z"}',
        '{"type":"track","messageId":"m2","userId":"u\\u0000","event":"x","context":{"groupId":"acme"}}',
        '{"type":"track","messageId":"m3","userId":"u3","event":"x","properties":{"n":'
        + HUGER_INT
        + '},"context":{"groupId":"acme"}}',
        '{"type":"group","messageId":"m4","groupId":"acme","traits":{"name":"A\\ud800","seats":' + HUGE_INT + "}}",
        '{"type":"identify","messageId":"m5","userId":"u5","traits":{"email":"x@y.z"},"context":{"groupId":"acme","ip":"\\u0000"}}',
        '{"type":"group","messageId":"m6","groupId":"acme","traits":{"arr":1e400}}',
    ]
    response = raw(client, "POST", "/api/v1/ingest/segment", '{"batch":[' + ",".join(calls) + "]}")
    # Segment retries a 5xx (and 429) forever; a 200 with the rejected calls listed ends it.
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    rejected = [r["index"] for r in response.get_json()["rejected"]]
    assert 0 not in rejected and {1, 3, 4, 5} <= set(rejected)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/accounts?owner=a%00b",
        "/api/v1/watchlist?owner=%00",
        "/api/v1/tasks?owner=x%00",
        "/api/v1/alerts?recipient=%00",
        "/api/v1/events?rule=%00",
        "/api/v1/accounts?owner%00=x",
    ],
)
def test_query_filters_with_nul_get_422(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 422), (path, response.status_code, response.get_data(as_text=True)[:300])
    assert response.status_code != 500


def test_query_filter_nul_is_a_field_error(client: FlaskClient) -> None:
    response = client.get("/api/v1/accounts?owner=a%00b")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "query": {"owner": ["Must not contain NUL characters or unpaired UTF-16 surrogates."]}
    }


@pytest.mark.parametrize("text", ['"why\\u0000"', '"why\\ud800"'])
def test_a_pin_reason_with_bad_text_is_a_field_error(client: FlaskClient, acme: Account, text: str) -> None:
    response = raw(client, "POST", f"/api/v1/watchlist/{acme.id}", f'{{"reason":{text}}}')
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert response.get_json()["errors"] == {
        "json": {"reason": ["Must not contain NUL characters or unpaired UTF-16 surrogates."]}
    }


@pytest.mark.parametrize("body", ['{"status":"done","by":"a\\u0000"}', '{"status":"done\\u0000"}',
                                  '{"status":"done","by":"\\udc00"}'])  # fmt: skip
def test_a_task_field_with_bad_text_is_a_field_error(client: FlaskClient, body: str) -> None:
    response = raw(client, "PATCH", "/api/v1/tasks/1", body)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/ingest/usage"),
        ("POST", "/api/v1/ingest/segment"),
        ("POST", "/api/v1/watchlist/1"),
        ("PATCH", "/api/v1/tasks/1"),
        ("POST", "/api/v1/plays"),
        ("POST", "/api/v1/scoring/config/versions"),
    ],
)
@pytest.mark.parametrize("depth", [40, 1000, 100_000])
def test_deep_json_is_refused_with_a_4xx(client: FlaskClient, method: str, path: str, depth: int) -> None:
    body = "[" * depth + "]" * depth
    response = raw(client, method, path, body)
    assert response.status_code in (400, 422), (path, depth, response.status_code)
    if response.status_code == 422 and depth > 32:
        assert "nested deeper" in response.get_json()["message"]


@pytest.mark.parametrize("literal", [HUGE_INT, HUGER_INT, "1e400", "NaN"])
def test_unstorable_numbers_in_bodies_read_by_webargs_are_field_errors(
    client: FlaskClient, acme: Account, literal: str
) -> None:
    response = raw(client, "POST", f"/api/v1/watchlist/{acme.id}", f'{{"reason":"x","expires_at":{literal}}}')
    assert response.status_code == 422
    response = raw(client, "PATCH", "/api/v1/tasks/1", f'{{"status":{literal}}}')
    assert response.status_code == 422


def test_surrogates_sent_as_raw_bytes_are_malformed_json(client: FlaskClient) -> None:
    response = raw(client, "PATCH", "/api/v1/tasks/1", '{"status":"done","by":"' + SURROGATE + '"}')
    assert response.status_code == 400
    assert response.get_json()["message"].startswith("The body is not valid JSON")
