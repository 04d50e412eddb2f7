# ruff: noqa: F811 - the fixtures of the alerts and tasks tests, imported, are parameters here
"""Authorization edges (issue 17): the alert list shows a CSM only what they may open by id, a
CSM closes tasks as themself only, and every change of state is audited with the caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import AuditEntry, Task
from tests.api.test_alerts_api import books  # noqa: F401 - the fixture
from tests.api.test_tasks_api import scored, task_id  # noqa: F401 - the fixture
from tests.support.auth import bearer

pytestmark = [pytest.mark.api, pytest.mark.db]

IssueToken = Callable[..., str]


def audit(session: Session, action: str) -> list[AuditEntry]:
    session.expire_all()
    return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


@pytest.mark.parametrize(
    "query", ["scope=all", "scope=all&account={other}", "account={other}", "scope=all&status=dead"]
)
def test_a_csm_cannot_list_alerts_they_cannot_open(
    anonymous_client: FlaskClient,
    issue_token: IssueToken,
    books: dict[str, Any],
    query: str,
) -> None:
    token = issue_token("csm", "ana", email="ana@example.com")
    assert anonymous_client.get(f"/api/v1/alerts/{books['c'].id}", headers=bearer(token)).status_code == 404
    listed = anonymous_client.get(
        "/api/v1/alerts?" + query.format(other=books["other"].id), headers=bearer(token)
    ).get_json()
    assert books["c"].id not in [a["id"] for a in listed["items"]], listed
    # Every alert listed can be opened by id.
    for item in listed["items"]:
        assert anonymous_client.get(f"/api/v1/alerts/{item['id']}", headers=bearer(token)).status_code == 200


def test_admins_and_viewers_still_list_every_alert(
    anonymous_client: FlaskClient,
    issue_token: IssueToken,
    books: dict[str, Any],
) -> None:
    for role in ("admin", "viewer"):
        listed = anonymous_client.get("/api/v1/alerts?scope=all", headers=bearer(issue_token(role))).get_json()
        assert listed["total"] == 3


def test_a_csm_cannot_record_another_person_as_the_closer(
    anonymous_client: FlaskClient,
    client: FlaskClient,
    issue_token: IssueToken,
    scored: dict[str, int],
    db_session: Session,
) -> None:
    task = task_id(client, "reporting-engagement-review", 0, scored["busy"])
    ana = bearer(issue_token("csm", "ana", email="ana@example.com"))
    response = anonymous_client.patch(f"/api/v1/tasks/{task}", json={"status": "done", "by": "bo"}, headers=ana)
    assert response.status_code == 403
    assert "themself" in response.get_json()["message"]
    db_session.expire_all()
    assert db_session.get(Task, task).completed_by is None
    # Naming themself (by name or email) is fine.
    response = anonymous_client.patch(
        f"/api/v1/tasks/{task}", json={"status": "done", "by": "ana@example.com"}, headers=ana
    )
    assert response.status_code == 200 and response.get_json()["completed_by"] == "ana@example.com"
    # A manager (or an admin) may record the CSM who did the work.
    other = task_id(client, "reporting-engagement-review", 0, scored["idle"])
    response = client.patch(f"/api/v1/tasks/{other}", json={"status": "done", "by": "bo@example.com"})
    assert response.status_code == 200 and response.get_json()["completed_by"] == "bo@example.com"


def test_task_changes_are_audited_with_the_caller(
    client: FlaskClient,
    scored: dict[str, int],
    db_session: Session,
) -> None:
    task = task_id(client, "reporting-engagement-review", 0, scored["busy"])
    assert client.patch(f"/api/v1/tasks/{task}", json={"status": "done", "by": "ana"}).status_code == 200
    assert client.patch(f"/api/v1/tasks/{task}", json={"status": "done"}).status_code == 200  # no change
    assert client.patch(f"/api/v1/tasks/{task}", json={"status": "open"}).status_code == 200
    entries = audit(db_session, "task.update")
    assert [(e.actor, e.target, e.details["status"], e.details["by"]) for e in entries] == [
        ("test-admin", f"task:{task}", "done", "ana"),
        ("test-admin", f"task:{task}", "open", None),
    ]


def test_pushes_and_quarantine_retries_are_audited(client: FlaskClient, db_session: Session) -> None:
    record = {"external_id": "a1", "name": "One", "contract_start": "2025-01-01"}
    assert client.post("/api/v1/ingest/accounts?source=crm", json=[record]).status_code == 200
    assert client.post("/api/v1/ingest/segment", json={"type": "page", "messageId": "m1"}).status_code == 200
    assert client.post("/api/v1/ingest/quarantine/retry").status_code == 200
    assert [(e.actor, e.target) for e in audit(db_session, "ingest.push")] == [("test-admin", "ingest:accounts")]
    assert [e.actor for e in audit(db_session, "ingest.segment")] == ["test-admin"]
    assert [e.actor for e in audit(db_session, "ingest.quarantine_retry")] == ["test-admin"]
