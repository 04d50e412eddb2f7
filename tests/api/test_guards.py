"""Guards (issue 17): security headers, rate limits on failed authentication and on expensive
POSTs (memory storage, and Redis shared between processes), and the operational endpoints."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from alerts.base import AlertKind, ChannelType
from app import create_app
from app.models import Alert, AlertStatus
from app.services.jobs.leases import acquire_lease
from app.services.jobs.scheduler import LEASE_NAME
from config import TestConfig
from tests.support.auth import bearer

pytestmark = [pytest.mark.api, pytest.mark.db]

IssueToken = Callable[..., str]
REDIS_URL = "redis://127.0.0.1:6379"


def make_app(database_url: str, **config: object) -> Iterator[Flask]:
    app = create_app(TestConfig(DATABASE_URL=database_url, **config))  # type: ignore[arg-type]
    yield app
    app.extensions["engine"].dispose()


@pytest.fixture
def limited_app(engine: sa.Engine, database_url: str) -> Iterator[Flask]:
    yield from make_app(database_url, RATE_LIMIT_AUTH_FAILURES="5 per minute", RATE_LIMIT_EXPENSIVE="2 per minute")


# --- headers -----------------------------------------------------------------------------------------


def test_api_answers_carry_nosniff_no_store_and_a_csp_forbidding_frames(client: FlaskClient) -> None:
    for path in ("/api/v1/accounts", "/api/v1/nope", "/healthz"):
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Cache-Control"] == "no-store", path
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_docs_page_works_under_the_plain_policy(anonymous_client: FlaskClient) -> None:
    response = anonymous_client.get("/api/v1/docs")
    assert response.status_code == 200 and b"swagger-ui" in response.data
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    # Swagger UI is vendored (app/static/vendor): nothing from another origin, no inline script.
    assert "script-src 'self';" in csp + ";" and "unsafe-inline" not in csp and "http" not in csp
    assert b"<script>" not in response.data


def test_the_acknowledge_page_has_no_inline_style_the_policy_would_block(anonymous_client: FlaskClient) -> None:
    response = anonymous_client.get("/alerts/ack?token=nope")
    assert response.status_code == 400
    assert "style=" not in response.get_data(as_text=True)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# --- rate limits ----------------------------------------------------------------------------------------


def test_token_guessing_is_cut_off_after_a_few_failures(limited_app: Flask, issue_token: IssueToken) -> None:
    # 300 token guesses took 3.6 s and were all answered: now the sixth in a minute gets 429.
    client = limited_app.test_client()
    started = time.monotonic()
    codes = [client.get("/api/v1/accounts", headers=bearer(f"hs_guess{i}")).status_code for i in range(300)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert time.monotonic() - started < 30
    answer = client.get("/api/v1/accounts", headers=bearer("hs_again"))
    assert answer.status_code == 429 and answer.get_json()["code"] == 429
    # Another address is not affected; nor are calls without a token counted as guesses.
    other = limited_app.test_client()
    other.environ_base["REMOTE_ADDR"] = "127.0.0.2"
    assert other.get("/api/v1/accounts", headers=bearer(issue_token("admin"))).status_code == 200
    for _ in range(10):
        assert other.get("/api/v1/accounts").status_code == 401
    assert other.get("/api/v1/accounts", headers=bearer(issue_token("admin"))).status_code == 200


def test_expensive_posts_are_limited_per_caller(limited_app: Flask, issue_token: IssueToken) -> None:
    client = limited_app.test_client()
    ann, bob = bearer(issue_token("admin", "ann")), bearer(issue_token("admin", "bob"))
    codes = [client.post("/api/v1/scoring/config/preview", json={}, headers=ann).status_code for _ in range(3)]
    assert codes[:2] == [422, 422] and codes[2] == 429
    assert client.post("/api/v1/scoring/config/preview", json={}, headers=bob).status_code == 422
    limited = client.post("/api/v1/scoring/suggestions", json={}, headers=ann)
    assert limited.status_code != 429  # each operation has its own allowance
    assert client.post("/api/v1/ingest/quarantine/retry", headers=ann).status_code == 200


def test_redis_storage_shares_the_counts_between_processes(engine: sa.Engine, database_url: str) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"  # a fresh key in Redis
    for _ in make_app(database_url, RATE_LIMIT_STORAGE_URI=REDIS_URL, RATE_LIMIT_AUTH_FAILURES="3 per minute"):
        first = _.test_client()
        first.environ_base["REMOTE_ADDR"] = address
        assert [first.get("/api/v1/accounts", headers=bearer("hs_x")).status_code for _i in range(3)] == [401] * 3
    # A second process (a new app and limiter storage) on the same Redis sees the same count.
    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    shared = FixedWindowRateLimiter(storage_from_string(REDIS_URL))
    assert not shared.test(parse("3 per minute"), "auth-failures", address)


# --- operations -----------------------------------------------------------------------------------------


def test_healthz_answers_without_the_database(anonymous_client: FlaskClient) -> None:
    response = anonymous_client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_checks_the_scheduler_lease_and_the_outbox(anonymous_client: FlaskClient, db_session: Session) -> None:
    response = anonymous_client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["migrations"]["ok"]
    assert not body["checks"]["scheduler"]["ok"] and body["checks"]["outbox"]["ok"]
    now = dt.datetime.now(dt.UTC)
    with db_session.begin():
        acquire_lease(db_session, name=LEASE_NAME, holder="host:1:x", ttl=dt.timedelta(seconds=30), now=now)
    response = anonymous_client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    with db_session.begin():
        db_session.add(
            Alert(dedupe_key="k", kind=AlertKind.IMMEDIATE, channel=ChannelType.EMAIL, recipient="a@b.c",
                  account_id=None, day=now.date(), payload={}, route_ids=[], event_ids=[], play_run_ids=[],
                  status=AlertStatus.PENDING, next_attempt_at=now - dt.timedelta(hours=1))
        )  # fmt: skip
    response = anonymous_client.get("/readyz")
    assert response.status_code == 503
    assert not response.get_json()["checks"]["outbox"]["ok"]
    assert "3600" in response.get_json()["checks"]["outbox"]["detail"]


def test_metrics_for_admins_or_the_metrics_token(
    engine: sa.Engine, database_url: str, issue_token: IssueToken, client: FlaskClient
) -> None:
    token = "m" * 24
    for app in make_app(database_url, METRICS_TOKEN=token):
        anonymous = app.test_client()
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/metrics", headers=bearer("wrong")).status_code == 401
        assert anonymous.get("/metrics", headers=bearer(issue_token("manager"))).status_code == 403
        pushed = anonymous.post(
            "/api/v1/ingest/accounts",
            json=[{"external_id": "a", "name": "A", "contract_start": "2025-01-01"}, {"external_id": ""}],
            headers=bearer(issue_token("ingest")),
        )
        assert pushed.status_code == 200
        assert app.test_cli_runner().invoke(args=["jobs", "run", "score-daily"]).exit_code == 0
        for headers in (bearer(token), bearer(issue_token("admin"))):
            response = anonymous.get("/metrics", headers=headers)
            assert response.status_code == 200 and response.mimetype == "text/plain"
            text = response.get_data(as_text=True)
            assert 'healthscore_job_runs_total{job="score-daily",status="succeeded"} 1.0' in text
            assert 'healthscore_job_run_seconds_total{job="score-daily"}' in text
            assert "healthscore_alert_oldest_due_seconds 0.0" in text
            assert 'healthscore_ingest_records_total{kind="accounts",outcome="accepted"}' in text
            assert 'healthscore_ingest_records_total{kind="accounts",outcome="rejected"}' in text
            assert "healthscore_job_request_failures" in text and "healthscore_alerts" in text
