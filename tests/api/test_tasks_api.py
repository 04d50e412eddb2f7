"""The tasks and play-runs API over a real scoring run's play runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import PlayRun, PlayRunStatus, Task
from app.pipeline.run import run_scoring
from tests import factories as f

pytestmark = [pytest.mark.api, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def scored(db_session: Session) -> dict[str, int]:
    """Idle Ltd (bo) stopped using the product and goes poor; Busy Corp (ana) is healthy. One scoring run
    starts four play runs: three for Idle Ltd (win-back, poor-health escalation, reporting review), one for
    Busy Corp (reporting review), with six tasks."""
    with db_session.begin():
        f.activate_config(db_session, f.firing_on_first_day())  # one run, the accounts' first: let it fire
        idle = f.make_account(db_session, name="Idle Ltd", owner="bo@example.com")
        # 2 a day: a fall of 40 active-user days, past the default change rules' min_change of 30.
        f.add_usage(
            db_session, idle, AS_OF - dt.timedelta(days=89), AS_OF - dt.timedelta(days=40),
            active_users=2, logins=1, key_feature_uses=0,
        )  # fmt: skip
        f.add_license(db_session, idle, AS_OF, purchased=10, assigned=4, active=1)
        busy = f.make_account(db_session, name="Busy Corp", owner="ana@example.com")
        f.add_usage(
            db_session, busy, AS_OF - dt.timedelta(days=89), AS_OF, active_users=8, logins=12, key_feature_uses=6
        )
        f.add_license(db_session, busy, AS_OF, purchased=10, assigned=10, active=9)
    with db_session.begin():
        summary = run_scoring(db_session, as_of=AS_OF)
    assert summary.play_runs_by_play == {
        "active-users-decline": 1, "poor-health-escalation": 1, "reporting-engagement-review": 2,
    }  # fmt: skip
    return {"idle": idle.id, "busy": busy.id}


def get_tasks(client: FlaskClient, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/v1/tasks?{query}")
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def titles(body: dict[str, Any]) -> list[str]:
    return [item["title"] for item in body["items"]]


def task_id(client: FlaskClient, play: str, position: int, account: int) -> int:
    items = get_tasks(client, f"play={play}&account={account}")["items"]
    return int(next(t["id"] for t in items if t["position"] == position))


def runs_of(client: FlaskClient, account: int, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/accounts/{account}/play-runs?{query}")
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def run_of(client: FlaskClient, account: int, play: str) -> dict[str, Any]:
    return next(r for r in runs_of(client, account) if r["play_id"] == play)


ALL_BY_DUE = [
    "Escalate the account internally",  # due 07-01
    "Draft an internal win-back plan",  # 07-05
    "Meet the key stakeholders",  # 07-07
    "Invite all users to a training webinar",  # 07-10
    "Review session on reporting with the executive sponsors",  # 07-14 (Idle Ltd, lower id)
    "Review session on reporting with the executive sponsors",  # 07-14 (Busy Corp)
]


def test_tasks_by_due_day_with_account_play_and_run(client: FlaskClient, scored: dict[str, int]) -> None:
    body = get_tasks(client)
    assert body["total"] == 6 and titles(body) == ALL_BY_DUE
    due = [item["due_on"] for item in body["items"]]
    assert due == sorted(due)
    assert [item["account_name"] for item in body["items"][-2:]] == ["Idle Ltd", "Busy Corp"]
    escalate = body["items"][0]
    assert escalate["account_id"] == scored["idle"] and escalate["account_name"] == "Idle Ltd"
    assert escalate["play_id"] == "poor-health-escalation"
    assert escalate["play_name"] == "Poor health: escalate and meet key stakeholders"
    assert escalate["play_run_status"] == "open" and isinstance(escalate["play_run_id"], int)
    assert escalate["type"] == "escalation" and escalate["owner_role"] == "manager"
    assert escalate["assignee"] == "bo@example.com"  # no manager, no default assignee: the CSM
    assert escalate["due_on"] == "2026-07-01" and escalate["status"] == "open" and escalate["position"] == 0
    assert escalate["completed_by"] is None and escalate["completed_at"] is None
    assert body["items"][2]["play_run_id"] == escalate["play_run_id"]  # the play's second task, same run


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("owner=ana@example.com", ALL_BY_DUE[5:]),
        ("owner=bo@example.com", ALL_BY_DUE[:5]),  # the escalation too: bo has no manager
        ("status=open", ALL_BY_DUE),
        ("status=done", []),
        ("due_before=2026-07-05", ALL_BY_DUE[:2]),  # inclusive
        ("play=poor-health-escalation", [ALL_BY_DUE[0], ALL_BY_DUE[2]]),
        ("play=reporting-engagement-review&owner=bo@example.com&due_before=2026-07-14", ALL_BY_DUE[4:5]),
        ("per_page=2&page=2", ALL_BY_DUE[2:4]),
    ],
)
def test_task_filters(client: FlaskClient, scored: dict[str, int], query: str, expected: list[str]) -> None:
    assert titles(get_tasks(client, query)) == expected


def test_task_filter_by_account(client: FlaskClient, scored: dict[str, int]) -> None:
    assert get_tasks(client, f"account={scored['idle']}")["total"] == 5
    assert titles(get_tasks(client, f"account={scored['busy']}")) == ALL_BY_DUE[5:]
    assert get_tasks(client, "account=999999")["total"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("assignee=bo", "assignee"),
        ("due_before=2026-07-32", "due_before"),
        ("due_before=soon", "due_before"),
        ("status=closed", "status"),
        ("account=abc", "account"),
        ("account=0", "account"),
        ("owner=", "owner"),
        ("per_page=0", "per_page"),
    ],
)
def test_task_query_refused_with_field_message(
    client: FlaskClient, scored: dict[str, int], query: str, field: str
) -> None:
    response = client.get(f"/api/v1/tasks?{query}")
    assert response.status_code == 422
    errors = response.get_json()["errors"]["query"]
    assert list(errors) == [field] and errors[field]


def test_closing_every_task_completes_the_run(client: FlaskClient, scored: dict[str, int]) -> None:
    idle = scored["idle"]
    first = task_id(client, "poor-health-escalation", 0, idle)
    second = task_id(client, "poor-health-escalation", 1, idle)
    response = client.patch(f"/api/v1/tasks/{first}", json={"status": "done", "by": "lee@example.com"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "done" and body["completed_by"] == "lee@example.com"
    assert body["completed_at"].endswith("+00:00") and body["play_run_status"] == "open"
    assert run_of(client, idle, "poor-health-escalation")["status"] == "open"

    skipped = client.patch(f"/api/v1/tasks/{second}", json={"status": "skipped", "by": "bo@example.com"}).get_json()
    assert skipped["status"] == "skipped" and skipped["play_run_status"] == "completed"
    run = run_of(client, idle, "poor-health-escalation")
    assert run["status"] == "completed" and run["closed_at"] is not None
    assert [t["status"] for t in run["tasks"]] == ["done", "skipped"]
    # The account's other runs are untouched.
    assert {r["play_id"]: r["status"] for r in runs_of(client, idle) if r["play_id"] != "poor-health-escalation"} == {
        "active-users-decline": "open", "reporting-engagement-review": "open",
    }  # fmt: skip
    assert titles(get_tasks(client, "status=done")) == ["Escalate the account internally"]


def test_setting_the_same_status_changes_nothing(client: FlaskClient, scored: dict[str, int]) -> None:
    task = task_id(client, "reporting-engagement-review", 0, scored["busy"])
    done = client.patch(f"/api/v1/tasks/{task}", json={"status": "done", "by": "ana@example.com"}).get_json()
    again = client.patch(f"/api/v1/tasks/{task}", json={"status": "done", "by": "someone@example.com"}).get_json()
    assert again == done
    reopened = client.patch(f"/api/v1/tasks/{task}", json={"status": "open"}).get_json()
    assert client.patch(f"/api/v1/tasks/{task}", json={"status": "open"}).get_json() == reopened


def test_reopening_a_task_reopens_its_completed_run(client: FlaskClient, scored: dict[str, int]) -> None:
    busy = scored["busy"]
    task = task_id(client, "reporting-engagement-review", 0, busy)
    closed = client.patch(f"/api/v1/tasks/{task}", json={"status": "done", "by": "ana@example.com"}).get_json()
    assert closed["play_run_status"] == "completed"
    response = client.patch(f"/api/v1/tasks/{task}", json={"status": "open", "by": "ana@example.com"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "open" and body["completed_by"] is None and body["completed_at"] is None
    assert body["play_run_status"] == "open"
    run = run_of(client, busy, "reporting-engagement-review")
    assert run["status"] == "open" and run["closed_at"] is None


def test_reopening_refused_while_another_run_of_the_play_is_open(
    client: FlaskClient, scored: dict[str, int], db_session: Session
) -> None:
    busy = scored["busy"]
    task = task_id(client, "reporting-engagement-review", 0, busy)
    client.patch(f"/api/v1/tasks/{task}", json={"status": "done", "by": "ana@example.com"})
    old = run_of(client, busy, "reporting-engagement-review")
    assert old["status"] == "completed"
    # A later scoring run starts the play again for the account.
    with db_session.begin():
        newer = PlayRun(
            play_id="reporting-engagement-review", play_version=1, account_id=busy, started_on=AS_OF + dt.timedelta(days=90),
            stage="established", band="good", score=90.0, alert="digest",
        )  # fmt: skip
        db_session.add(newer)
    response = client.patch(f"/api/v1/tasks/{task}", json={"status": "open"})
    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == 409 and body["status"] == "Conflict"
    assert f"already has an open run ({newer.id})" in body["message"]
    assert "only one run of a play can be open per account" in body["message"]
    # Nothing changed: the task is still done and its run still completed.
    runs = {r["id"]: r for r in runs_of(client, busy)}
    assert runs[old["id"]]["status"] == "completed" and runs[old["id"]]["closed_at"] == old["closed_at"]
    assert runs[old["id"]]["tasks"][0]["status"] == "done"
    assert runs[old["id"]]["tasks"][0]["completed_by"] == "ana@example.com"
    # Newest run first.
    assert [r["id"] for r in runs_of(client, busy)] == [newer.id, old["id"]]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"status": "finished", "by": "x"}, {"status": ["Must be one of: open, done, skipped."]}),
        ({"by": "x"}, {"status": ["Missing data for required field."]}),
        ({"status": "done", "by": "x", "note": "y"}, {"note": ["Unknown field."]}),
        ({"status": "done", "by": "x" * 256}, {"by": ["Length must be between 1 and 255."]}),
    ],
)
def test_task_update_refused_with_field_message(
    client: FlaskClient, scored: dict[str, int], body: dict[str, Any], errors: dict[str, Any]
) -> None:
    task = task_id(client, "reporting-engagement-review", 0, scored["busy"])
    response = client.patch(f"/api/v1/tasks/{task}", json=body)
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"] == errors
    assert get_tasks(client, "status=open")["total"] == 6


def test_unknown_task_is_404(client: FlaskClient, scored: dict[str, int]) -> None:
    response = client.patch("/api/v1/tasks/999999", json={"status": "done", "by": "x"})
    assert response.status_code == 404
    assert response.get_json() == {"code": 404, "status": "Not Found", "message": "Task 999999 does not exist."}


def test_tasks_of_a_cancelled_run_cannot_change(
    client: FlaskClient, scored: dict[str, int], db_session: Session
) -> None:
    task = task_id(client, "reporting-engagement-review", 0, scored["busy"])
    with db_session.begin():
        run = db_session.scalar(sa.select(Task.play_run_id).where(Task.id == task))
        db_session.execute(sa.update(PlayRun).where(PlayRun.id == run).values(status=PlayRunStatus.CANCELLED))
    response = client.patch(f"/api/v1/tasks/{task}", json={"status": "done", "by": "ana@example.com"})
    assert response.status_code == 409 and "cancelled" in response.get_json()["message"]
    assert get_tasks(client, f"account={scored['busy']}")["items"][0]["status"] == "open"


def test_play_runs_of_an_account(client: FlaskClient, scored: dict[str, int]) -> None:
    response = client.get(f"/api/v1/accounts/{scored['idle']}/play-runs")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 3 and body["page"] == 1
    runs = {r["play_id"]: r for r in body["items"]}
    ids = [r["id"] for r in body["items"]]
    assert ids == sorted(ids, reverse=True)  # same day: the newer run first
    poor = runs["poor-health-escalation"]
    assert poor["play_name"] == "Poor health: escalate and meet key stakeholders" and poor["play_version"] == 1
    assert poor["status"] == "open" and poor["started_on"] == "2026-06-30" and poor["closed_at"] is None
    assert poor["trigger_rule_id"] == "any_into_poor" and poor["band"] == "poor" and poor["stage"] == "established"
    assert poor["watchlist"] is True and poor["alert"] == "immediate"
    assert [(t["position"], t["title"]) for t in poor["tasks"]] == [
        (0, "Escalate the account internally"), (1, "Meet the key stakeholders"),
    ]  # fmt: skip
    assert poor["tasks"][1]["assignee"] == "bo@example.com"
    page = client.get(f"/api/v1/accounts/{scored['idle']}/play-runs?per_page=2&page=2").get_json()
    assert page["total"] == 3 and [r["id"] for r in page["items"]] == ids[2:]
    assert len(page["items"][0]["tasks"]) >= 1


def test_play_runs_status_filter_and_refusals(client: FlaskClient, scored: dict[str, int]) -> None:
    busy = scored["busy"]
    task = task_id(client, "reporting-engagement-review", 0, busy)
    client.patch(f"/api/v1/tasks/{task}", json={"status": "skipped", "by": "ana@example.com"})
    assert [r["status"] for r in runs_of(client, busy, "status=completed")] == ["completed"]
    assert runs_of(client, busy, "status=open") == []
    assert client.get("/api/v1/accounts/999999/play-runs").status_code == 404
    bad = client.get(f"/api/v1/accounts/{busy}/play-runs?status=done&sort=x")
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]["query"]) == {"status", "sort"}


def test_no_account_runs_is_an_empty_page(client: FlaskClient, db_session: Session) -> None:
    with db_session.begin():
        quiet = f.make_account(db_session, name="Quiet")
    body = client.get(f"/api/v1/accounts/{quiet.id}/play-runs").get_json()
    assert body == {"items": [], "page": 1, "per_page": 50, "total": 0}


def test_task_update_needs_a_json_body(client: FlaskClient, scored: dict[str, int]) -> None:
    task = task_id(client, "reporting-engagement-review", 0, scored["busy"])
    broken = client.patch(f"/api/v1/tasks/{task}", data="{status", content_type="application/json")
    assert broken.status_code == 400 and broken.get_json()["code"] == 400
    form = client.patch(f"/api/v1/tasks/{task}", data="status=done", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 422
    assert form.get_json()["errors"]["json"] == {"status": ["Missing data for required field."]}


def test_a_task_closed_without_by_is_recorded_as_closed_by_the_caller(
    client: FlaskClient, scored: dict[str, int]
) -> None:
    task = task_id(client, "reporting-engagement-review", 0, scored["busy"])
    done = client.patch(f"/api/v1/tasks/{task}", json={"status": "done"}).get_json()
    assert done["completed_by"] == "test-admin"
