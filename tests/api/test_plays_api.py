"""The plays API: the library (defaults seeded), create, replace with validation, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import PlayDefinition
from playbooks.plays import default_plays_list

pytestmark = [pytest.mark.api, pytest.mark.db]

DEFAULT_IDS = sorted(p["id"] for p in default_plays_list())


def a_play(**overrides: Any) -> dict[str, Any]:
    play: dict[str, Any] = {
        "id": "exec-sponsor-left",
        "name": "Executive sponsor left: find a new sponsor",
        "trigger": {"rules": ["pre_champion_left"], "stages": ["pre_renewal"]},
        "tasks": [
            {"type": "call", "title": "Call the remaining champion", "due_days": 2},
            {"type": "meeting", "title": "Meet the new sponsor", "due_days": 14, "owner_role": "manager"},
        ],
        "watchlist": True,
        "cooldown_days": 45,
    }
    play.update(overrides)
    return play


def test_list_plays_seeds_and_lists_the_default_library(client: FlaskClient, db_session: Session) -> None:
    response = client.get("/api/v1/plays")
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [p["id"] for p in items] == DEFAULT_IDS
    poor = next(p for p in items if p["id"] == "poor-health-escalation")
    assert poor["trigger"] == {"rules": ["any_into_poor"], "stages": []}
    assert [t["owner_role"] for t in poor["tasks"]] == ["manager", "csm"]
    assert poor["version"] == 1 and poor["updated_by"] == "system" and poor["enabled"] is True
    assert poor["watchlist"] is True and poor["alert"] == "immediate" and poor["cooldown_days"] == 30
    assert {"created_at", "updated_at"} <= set(poor)


def test_get_one_play_and_unknown_play(client: FlaskClient, db_session: Session) -> None:
    body = client.get("/api/v1/plays/renewal-average-health").get_json()
    assert body["trigger"] == {"band": "average", "stages": ["pre_renewal"]}
    missing = client.get("/api/v1/plays/no-such-play")
    assert missing.status_code == 404
    assert missing.get_json() == {"code": 404, "status": "Not Found", "message": "Play 'no-such-play' does not exist."}
    assert client.get("/api/v1/plays?enabled=true").get_json()["errors"]["query"] == {"enabled": ["Unknown field."]}


def test_create_play(client: FlaskClient, db_session: Session) -> None:
    response = client.post("/api/v1/plays", json=a_play())
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"] == "exec-sponsor-left" and body["version"] == 1 and body["updated_by"] == "test-admin"
    # Defaults are filled in: task owner role, descriptions, alert, enabled.
    assert body["tasks"][0] == {
        "type": "call", "title": "Call the remaining champion", "due_days": 2, "owner_role": "csm", "description": "",
    }  # fmt: skip
    assert body["alert"] == "immediate" and body["enabled"] is True and body["description"] == ""
    assert client.get("/api/v1/plays/exec-sponsor-left").get_json() == body
    # Creating a play on a fresh database still seeds the default library beside it.
    ids = [p["id"] for p in client.get("/api/v1/plays").get_json()["items"]]
    assert ids == sorted([*DEFAULT_IDS, "exec-sponsor-left"])


def test_create_is_by_the_caller_and_duplicate_is_409(client: FlaskClient, db_session: Session) -> None:
    assert client.post("/api/v1/plays", json=a_play()).get_json()["updated_by"] == "test-admin"
    again = client.post("/api/v1/plays", json=a_play(name="Another"))
    assert again.status_code == 409
    assert "already exists" in again.get_json()["message"]
    default = client.post("/api/v1/plays", json=a_play(id="poor-health-escalation"))
    assert default.status_code == 409
    assert client.get("/api/v1/plays/exec-sponsor-left").get_json()["name"] == a_play()["name"]


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        (
            {"trigger": {"rules": ["no_such_rule"]}},
            {"trigger": {"rules": {0: ["No rule 'no_such_rule' in the active scoring config."]}}},
        ),
        (
            {"trigger": {"rules": ["any_into_poor"], "band": "poor"}},
            {"trigger": ["Give exactly one of 'rules' (event rule ids) or 'band'."]},
        ),
        ({"trigger": {"band": "awful"}}, {"trigger": {"band": ["Must be one of: good, average, poor."]}}),
        ({"tasks": []}, {"tasks": ["Between 1 and 20 tasks."]}),
        (
            {"tasks": [{"type": "fax", "title": "x", "due_days": 1}]},
            {"tasks": {0: {"type": ["Must be one of: call, email, meeting, training, escalation."]}}},
        ),
        (
            {"tasks": [{"type": "call", "title": "x", "due_days": "3"}]},
            {"tasks": {0: {"due_days": ["Not a valid integer."]}}},
        ),
        (
            {"cooldown_days": -1},
            {"cooldown_days": ["Must be greater than or equal to 0 and less than or equal to 3650."]},
        ),
        ({"id": "Bad Id"}, {"id": ["String does not match expected pattern."]}),
        ({"owner": "ana"}, {"owner": ["Unknown field."]}),
        ({"name": None}, {"name": ["Field may not be null."]}),
    ],
)
def test_invalid_play_is_refused_with_field_messages(
    client: FlaskClient, db_session: Session, change: dict[str, Any], errors: dict[str, Any]
) -> None:
    response = client.post("/api/v1/plays", json=a_play(**change))
    assert response.status_code == 422
    body = response.get_json()
    assert body["message"] == "The play is invalid."
    assert body["errors"]["json"] == _stringify(errors)
    assert client.get("/api/v1/plays/exec-sponsor-left").status_code == 404


def _stringify(errors: Any) -> Any:
    """JSON object keys are strings: the int task and rule indexes arrive as "0"."""
    if isinstance(errors, dict):
        return {str(k): _stringify(v) for k, v in errors.items()}
    return errors


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "The body is not valid JSON"),
        ({"data": "id=x", "content_type": "application/x-www-form-urlencoded"}, 415, "Send JSON"),
        ({"json": [a_play()]}, 422, "Send the play as a JSON object."),
    ],
)
def test_unreadable_bodies(
    client: FlaskClient, db_session: Session, kwargs: dict[str, Any], status: int, message: str
) -> None:
    response = client.post("/api/v1/plays", **kwargs)
    assert response.status_code == status
    assert response.get_json()["message"].startswith(message)


def test_replace_play_bumps_version_and_records_author(client: FlaskClient, db_session: Session) -> None:
    before = client.get("/api/v1/plays/poor-health-escalation").get_json()
    new = copy.deepcopy({k: before[k] for k in ("name", "description", "trigger", "tasks", "watchlist", "alert")})
    new["tasks"].append({"type": "email", "title": "Send the recovery plan", "due_days": 10})
    new["cooldown_days"] = 60
    response = client.put("/api/v1/plays/poor-health-escalation", json=new)
    assert response.status_code == 200
    body = response.get_json()
    assert body["version"] == 2 and body["updated_by"] == "test-admin"
    assert body["updated_at"] > before["updated_at"] and body["created_at"] == before["created_at"]
    assert body["cooldown_days"] == 60 and len(body["tasks"]) == 3
    assert client.get("/api/v1/plays/poor-health-escalation").get_json() == body
    # The body may carry the id of the path and the version it was read at.
    again = client.put(
        "/api/v1/plays/poor-health-escalation", json={**new, "id": "poor-health-escalation", "version": 2}
    )
    assert (
        again.status_code == 200 and again.get_json()["version"] == 3 and again.get_json()["updated_by"] == "test-admin"
    )


def test_disable_a_play(client: FlaskClient, db_session: Session) -> None:
    play = client.get("/api/v1/plays/new-users-training").get_json()
    body = {k: v for k, v in play.items() if k not in ("version", "created_at", "updated_at", "updated_by")}
    response = client.put("/api/v1/plays/new-users-training", json={**body, "enabled": False})
    assert response.status_code == 200 and response.get_json()["enabled"] is False
    row = db_session.get(PlayDefinition, "new-users-training")
    assert row is not None and row.enabled is False and row.definition["enabled"] is False
    listed = {p["id"]: p for p in client.get("/api/v1/plays").get_json()["items"]}
    assert listed["new-users-training"]["enabled"] is False  # disabled plays are still listed
    assert client.delete("/api/v1/plays/new-users-training").status_code == 405


def _stored(session: Session, play_id: str) -> tuple[Any, ...]:
    row = session.execute(
        sa.select(PlayDefinition.definition, PlayDefinition.version, PlayDefinition.updated_by).where(
            PlayDefinition.id == play_id
        )
    ).one()
    return tuple(row)


@pytest.mark.parametrize(
    ("body", "status", "errors"),
    [
        (
            a_play(id="poor-health-escalation", trigger={"rules": ["any_into_poor", "nope"]}),
            422,
            {"trigger": {"rules": {"1": ["No rule 'nope' in the active scoring config."]}}},
        ),
        (
            a_play(id="another-play"),
            422,
            {"id": ["Must be 'poor-health-escalation' (the play in the path) or left out."]},
        ),
        ({**a_play(), "id": "poor-health-escalation", "version": "two"}, 422, {"version": ["Not a valid integer."]}),
        ({**a_play(), "version": 7}, 409, None),
        ({**a_play(), "updated_by": "me"}, 422, {"updated_by": ["Unknown field."]}),
        (
            a_play(tasks=[{"type": "call", "title": "  ", "due_days": 1}]),
            422,
            {"tasks": {"0": {"title": ["A title is needed."]}}},
        ),
    ],
)
def test_invalid_replacement_leaves_the_old_play(
    client: FlaskClient, db_session: Session, body: dict[str, Any], status: int, errors: dict[str, Any] | None
) -> None:
    client.get("/api/v1/plays")  # seed the defaults
    body = {
        k: v for k, v in body.items() if not (k == "id" and v == "exec-sponsor-left")
    }  # a_play()'s id: leave it out
    before = _stored(db_session, "poor-health-escalation")
    db_session.rollback()
    response = client.put("/api/v1/plays/poor-health-escalation", json=body)
    assert response.status_code == status
    if errors is not None:
        assert response.get_json()["errors"]["json"] == errors
    else:
        assert "at version 1, not 7" in response.get_json()["message"]
    assert _stored(db_session, "poor-health-escalation") == before


def test_replace_unknown_play_is_404(client: FlaskClient, db_session: Session) -> None:
    response = client.put("/api/v1/plays/no-such-play", json=a_play(id="no-such-play"))
    assert response.status_code == 404
    assert client.get("/api/v1/plays/no-such-play").status_code == 404


def test_openapi_documents_the_play_bodies(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    post = spec["paths"]["/api/v1/plays"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Play"}
    assert {"201", "400", "409", "415", "422"} <= set(post["responses"])
    put = spec["paths"]["/api/v1/plays/{play_id}"]["put"]
    assert "version" in spec["components"]["schemas"]["PlayReplace"]["properties"]
    assert {"200", "404", "409", "422"} <= set(put["responses"])


def test_openapi_documents_the_task_update(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    patch = spec["paths"]["/api/v1/tasks/{task_id}"]["patch"]
    assert {"200", "404", "409", "422"} <= set(patch["responses"])
    assert set(spec["components"]["schemas"]["TaskUpdate"]["properties"]) == {"status", "by"}


def test_play_changes_are_audited(client: FlaskClient, db_session: Session) -> None:
    from app.models import AuditEntry

    assert client.post("/api/v1/plays", json=a_play()).status_code == 201
    entries = db_session.scalars(sa.select(AuditEntry).where(AuditEntry.target == "play:exec-sponsor-left")).all()
    assert [(e.action, e.actor) for e in entries] == [("play.create", "test-admin")]
    assert entries[0].details["version"] == 1


def test_replacement_refusals_come_in_order_unknown_play_then_stale_version_then_the_body(
    client: FlaskClient, db_session: Session
) -> None:
    """An unknown play is a 404 and a stale version a 409 whatever the body holds; only then is
    the body checked, the play's own errors and unknown trigger rules together in one 422."""
    invalid = a_play(trigger={"rules": ["no_such_rule"], "stages": ["pre_renewal", "pre_renewal"]})
    unknown = client.put("/api/v1/plays/no-such-play", json={**invalid, "id": "no-such-play"})
    assert unknown.status_code == 404
    client.get("/api/v1/plays")  # seed the defaults
    stale_body = {k: v for k, v in invalid.items() if k != "id"} | {"version": 7}
    stale = client.put("/api/v1/plays/poor-health-escalation", json=stale_body)
    assert stale.status_code == 409
    both = client.put("/api/v1/plays/poor-health-escalation", json={k: v for k, v in invalid.items() if k != "id"})
    assert both.status_code == 422
    assert both.get_json()["errors"]["json"] == {
        "trigger": {
            "rules": {"0": ["No rule 'no_such_rule' in the active scoring config."]},
            "stages": ["A stage is listed twice."],
        }
    }
