"""Job requests through the API, on SQLite and PostgreSQL: the 202 answers with their Location,
following a request to its result or its error, the list with its filters, 404, and roles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.api import analysis, jobs, scoring_config
from app.auth import ADMIN, roles_of
from app.models import AuditEntry, Outcome, Role
from app.models.enums import OutcomeKind
from tests import factories as f
from tests.support.auth import bearer
from tests.support.job_requests import work_requests

pytestmark = [pytest.mark.api, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)
IssueToken = Callable[..., str]
#: Outcomes only (no periodic dates; dated early enough for a 90-day horizon before AS_OF), 3 of each
#: class needed: the counts let it through, the data
#: (accounts without any usage) then has no observation to learn from.
OPTIONS = {"as_of": AS_OF.isoformat(), "periodic": False, "min_per_class": 3}


@pytest.fixture
def outcomes(db_session: Session) -> None:
    with db_session.begin():
        for i in range(6):
            account = f.make_account(db_session)
            kind = OutcomeKind.CHURNED if i % 2 else OutcomeKind.RENEWED
            db_session.add(Outcome(account_id=account.id, source="t", external_id=f"o{i}", kind=kind,
                                   day=dt.date(2026, 3, 1)))  # fmt: skip


def test_queueing_answers_202_with_the_request_and_its_location(client: FlaskClient, outcomes: None) -> None:
    response = client.post("/api/v1/scoring/suggestions", json=OPTIONS)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/jobs/requests/{body['id']}" == body["url"]
    assert {k: body[k] for k in ("kind", "status", "attempts", "requested_by", "result", "error")} == {
        "kind": "suggestions",
        "status": "queued",
        "attempts": 0,
        "requested_by": "test-admin",
        "result": None,
        "error": None,
    }
    assert body["params"] == {"as_of": "2026-06-30", "horizon_days": 90, "periodic_months": 0, "min_per_class": 3}
    assert body["requested_at"].endswith("+00:00") and body["started_at"] is None and body["job_run_id"] is None
    assert client.get(body["url"]).get_json() == body


def test_a_request_that_fails_says_why(client: FlaskClient, app: Flask, db_session: Session) -> None:
    # Enough outcomes on record to queue, but every account's contract started after the day each
    # is observed (90 days before its outcome): no observation, and the job fails with the counts.
    with db_session.begin():
        for i in range(6):
            account = f.make_account(db_session, contract_start=dt.date(2026, 1, 15))
            kind = OutcomeKind.CHURNED if i % 2 else OutcomeKind.RENEWED
            db_session.add(Outcome(account_id=account.id, source="t", external_id=f"o{i}", kind=kind,
                                   day=dt.date(2026, 3, 1)))  # fmt: skip
    queued = client.post("/api/v1/analysis/churn-model/train", json=OPTIONS).get_json()
    [outcome] = work_requests(app)
    assert outcome.status is not None and outcome.status.value == "failed"
    failed = client.get(queued["url"]).get_json()
    assert failed["status"] == "failed" and failed["attempts"] == 1 and failed["result"] is None
    assert failed["error"].startswith("Too few outcomes to train a churn model: ")
    assert (
        "0 churned and 0 not churned observations; at least 3 of each (churned and not churned) are needed."
        in (failed["error"])
    )
    assert failed["finished_at"] and failed["job_run_id"] is not None
    run = client.get("/api/v1/jobs/runs?job=train-churn-model").get_json()["items"][0]
    assert run["id"] == failed["job_run_id"] and run["status"] == "failed" and run["error"] == failed["error"]


def test_the_list_is_newest_first_filtered_and_paged_without_results(
    client: FlaskClient, app: Flask, outcomes: None
) -> None:
    client.get("/api/v1/scoring/config")  # version 1
    created = client.post("/api/v1/scoring/config/versions", json={"config": client.get(
        "/api/v1/scoring/config").get_json()["config"], "comment": "same"})  # fmt: skip
    assert created.status_code == 201
    rescore = client.post("/api/v1/scoring/config/versions/2/activate").get_json()["rescore"]
    # Three different questions (the same one again would join the pending request).
    ids = [
        client.post("/api/v1/scoring/suggestions", json={**OPTIONS, "horizon_days": 90 + i}).get_json()["id"]
        for i in range(3)
    ]
    work_requests(app)
    page = client.get("/api/v1/jobs/requests?per_page=2").get_json()
    assert page["total"] == 4 and page["page"] == 1 and page["per_page"] == 2
    assert [item["id"] for item in page["items"]] == [ids[2], ids[1]]
    assert all("result" not in item for item in page["items"])
    rescores = client.get("/api/v1/jobs/requests?kind=rescore").get_json()
    assert [(r["id"], r["status"]) for r in rescores["items"]] == [(rescore["id"], "succeeded")]
    failed = client.get("/api/v1/jobs/requests?status=failed&kind=suggestions").get_json()
    assert failed["total"] == 3
    assert client.get(rescore["url"]).get_json()["result"]["config_version"] == 2
    bad = client.get("/api/v1/jobs/requests?kind=bake&status=done")
    assert bad.status_code == 422 and set(bad.get_json()["errors"]["query"]) == {"kind", "status"}


def test_an_unknown_request_is_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/jobs/requests/999")
    assert response.status_code == 404
    assert response.get_json() == {"code": 404, "status": "Not Found", "message": "No job request 999."}
    assert client.get("/api/v1/jobs/requests/999?verbose=1").status_code == 422


def test_only_who_may_queue_a_job_may_read_it(
    client: FlaskClient, anonymous_client: FlaskClient, issue_token: IssueToken, outcomes: None
) -> None:
    # Reading a request's result needs the role of the endpoint that queued it (admin for all).
    creators = (scoring_config.activate, analysis.suggestions, analysis.train)
    assert {roles_of(view) for view in creators} == {frozenset(ADMIN)}
    assert roles_of(jobs.job_request) == roles_of(jobs.job_requests) == frozenset(ADMIN)
    url = client.post("/api/v1/scoring/suggestions", json=OPTIONS).get_json()["url"]
    for role in (Role.MANAGER, Role.CSM, Role.VIEWER, Role.INGEST):
        headers = bearer(issue_token(role))
        for path in (url, "/api/v1/jobs/requests"):
            denied = anonymous_client.get(path, headers=headers)
            assert denied.status_code == 403 and denied.get_json()["code"] == 403, (role, path)
    assert anonymous_client.get(url).status_code == 401
    # Everyone who reads may see that a rescore is pending.
    viewer = bearer(issue_token(Role.VIEWER))
    assert anonymous_client.get("/api/v1/scoring/config", headers=viewer).get_json()["rescore_pending"] is False


def test_a_duplicate_request_joins_the_pending_one_and_both_are_audited(
    client: FlaskClient, app: Flask, outcomes: None, db_session: Session
) -> None:
    # 207 suggestions were queued in 10 minutes: a repeated request now joins the one pending.
    first = client.post("/api/v1/scoring/suggestions", json=OPTIONS).get_json()
    again = client.post("/api/v1/scoring/suggestions", json=OPTIONS)
    assert again.status_code == 202 and again.get_json()["id"] == first["id"]
    assert again.headers["Location"] == first["url"]
    other = client.post("/api/v1/scoring/suggestions", json={**OPTIONS, "min_per_class": 2}).get_json()
    assert other["id"] != first["id"]  # another question: its own request
    train = client.post("/api/v1/analysis/churn-model/train", json=OPTIONS).get_json()
    assert train["id"] != first["id"]  # another kind
    listed = client.get("/api/v1/jobs/requests?kind=suggestions").get_json()
    assert listed["total"] == 2
    actions = db_session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["job_request.create", "job_request.join", "job_request.create", "job_request.create"]
    # Once it ran, the same request queues anew.
    work_requests(app)
    assert client.post("/api/v1/scoring/suggestions", json=OPTIONS).get_json()["id"] not in {first["id"], other["id"]}
