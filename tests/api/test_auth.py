"""Tokens and roles: every route against every role, 401 and 403 bodies, revoked and expired
tokens, a CSM's and a manager's default book, the users/tokens CLI, the OpenAPI security docs."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from app import auth
from app.auth import PUBLIC_ENDPOINTS, clear_token_cache, roles_of
from app.models import ApiToken, Role, User
from tests import factories as f
from tests.support.auth import bearer

pytestmark = [pytest.mark.api, pytest.mark.db]

IssueToken = Callable[..., str]


def api_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, a concrete path) for every /api/v1 route."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = rule.rule
        path = re.sub(r"<int:[^>]+>", "999999", path)
        path = re.sub(r"<any\(([^,)]+)[^>]*>", lambda m: m.group(1).strip(), path)
        path = re.sub(r"<(string:)?[^>]+>", "nope", path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, path))
    return routes


def test_every_api_route_declares_who_may_call_it(app: Flask) -> None:
    undeclared = [
        endpoint
        for endpoint, _, _ in api_routes(app)
        if endpoint not in PUBLIC_ENDPOINTS and not roles_of(app.view_functions[endpoint])
    ]
    assert undeclared == []


ROLE_TABLE = Path(__file__).resolve().parents[2] / "docs" / "api-roles.md"
ROLE_COLUMNS = ("admin", "manager", "csm", "viewer", "ingest")


def role_table() -> dict[tuple[str, str], frozenset[Role]]:
    """docs/api-roles.md: (method, path with {name} parameters) -> the roles it says may call."""
    table: dict[tuple[str, str], frozenset[Role]] = {}
    for line in ROLE_TABLE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 + len(ROLE_COLUMNS) or cells[0] in {"method", "---"} or not cells[0].isupper():
            continue
        method, path = cells[0], cells[1].strip("`")
        assert (method, path) not in table, f"{method} {path} is in the role table twice"
        assert set(cells[2:]) <= {"yes", "no"}, line
        table[method, path] = frozenset(
            Role(name) for name, cell in zip(ROLE_COLUMNS, cells[2:], strict=True) if cell == "yes"
        )
    return table


def documented_path(rule: str) -> str:
    """``/accounts/<int:account_id>`` -> ``/accounts/{account_id}``, as the role table writes it."""
    return re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule)


def test_the_role_table_lists_exactly_the_api_operations(app: Flask) -> None:
    table = role_table()
    operations = {
        (method, documented_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1") and rule.endpoint not in PUBLIC_ENDPOINTS
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert sorted(operations - table.keys()) == [], "operations nobody decided the roles of (docs/api-roles.md)"
    assert sorted(table.keys() - operations) == [], "rows of docs/api-roles.md with no operation"


def test_every_operation_against_the_role_table(
    app: Flask, anonymous_client: FlaskClient, issue_token: IssueToken
) -> None:
    table = role_table()
    tokens = {role: issue_token(role) for role in Role}
    checked = 0
    for endpoint, method, path in api_routes(app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        rule = next(r for r in app.url_map.iter_rules(endpoint) if r.rule.startswith("/api/v1"))
        allowed = table[method, documented_path(rule.rule)]
        anonymous = anonymous_client.open(path, method=method)
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        for role, token in tokens.items():
            response = anonymous_client.open(path, method=method, headers=bearer(token), json=[])
            if role in allowed:
                assert response.status_code not in (401, 403), (role, method, path, response.get_json())
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)
                assert response.get_json()["code"] == 403
            checked += 1
    assert checked == len(table) * len(Role)


def test_the_role_table_test_notices_a_route_given_the_wrong_roles(
    app: Flask, anonymous_client: FlaskClient, issue_token: IssueToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the old matrix test could not see: letting CSMs create plays. Re-declare the view's
    # roles as a careless edit would, and the table's verdict differs from the answer.
    view = app.view_functions["plays.create"]
    monkeypatch.setattr(view, "_access_roles", frozenset({Role.ADMIN, Role.CSM}))
    response = anonymous_client.post("/api/v1/plays", headers=bearer(issue_token(Role.CSM)), json=[])
    assert response.status_code != 403  # the app now lets a CSM in...
    assert Role.CSM not in role_table()["POST", "/api/v1/plays"]  # ...and the table says it must not


def test_missing_unknown_and_malformed_tokens_get_401(anonymous_client: FlaskClient) -> None:
    for headers in ({}, bearer("hs_not-a-real-token"), {"Authorization": "Token abc"}, {"Authorization": "Bearer "}):
        response = anonymous_client.get("/api/v1/accounts", headers=headers)
        assert response.status_code == 401
        body = response.get_json()
        assert body["code"] == 401 and body["status"] == "Unauthorized" and body["message"]


def test_revoked_expired_and_disabled_tokens_get_401(
    anonymous_client: FlaskClient, issue_token: IssueToken, db_session: Session
) -> None:
    revoked, expired, disabled, good = (issue_token(Role.VIEWER, name) for name in ("r", "e", "d", "g"))
    db_session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == sa.select(User.id).where(User.name == "r").scalar_subquery())
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )
    db_session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == sa.select(User.id).where(User.name == "e").scalar_subquery())
        .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    )
    db_session.execute(sa.update(User).where(User.name == "d").values(disabled=True))
    db_session.commit()
    for token in (revoked, expired, disabled):
        assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 401
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(good)).status_code == 200


def _revoke(db_session: Session, user: str) -> None:
    db_session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == sa.select(User.id).where(User.name == user).scalar_subquery())
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )
    db_session.commit()


def test_token_lookups_are_cached_for_a_few_seconds_then_revocation_applies(
    app: Flask,
    anonymous_client: FlaskClient,
    issue_token: IssueToken,
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    ttl = app.config["TOKEN_CACHE_SECONDS"]
    assert 0 < ttl <= 10
    token = issue_token(Role.VIEWER, "cached")
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 200
    _revoke(db_session, "cached")  # by another process: this one's cache still holds the token
    clock[0] += ttl - 0.5
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 200
    clock[0] += 1.0  # past the TTL: looked up again, and refused
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 401
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 401


def test_the_token_cache_can_be_cleared_or_turned_off(
    app: Flask, anonymous_client: FlaskClient, issue_token: IssueToken, db_session: Session
) -> None:
    first, second = issue_token(Role.VIEWER, "one"), issue_token(Role.VIEWER, "two")
    for token in (first, second):
        assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 200
    _revoke(db_session, "one")
    clear_token_cache(app)
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(first)).status_code == 401
    app.config["TOKEN_CACHE_SECONDS"] = 0
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(second)).status_code == 200
    _revoke(db_session, "two")
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(second)).status_code == 401


def test_a_cached_token_still_expires_on_time(
    app: Flask, anonymous_client: FlaskClient, issue_token: IssueToken, db_session: Session
) -> None:
    token = issue_token(Role.VIEWER, "soon")
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 200
    # The cached entry holds the expiry it read: move it into the past, as time passing would.
    for digest, (deadline, principal, _) in list(app.extensions["token_cache"].items()):
        app.extensions["token_cache"][digest] = (deadline, principal, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 401


def test_tokens_are_stored_hashed(issue_token: IssueToken, db_session: Session) -> None:
    token = issue_token(Role.ADMIN, "hashed")
    stored = db_session.scalars(sa.select(ApiToken.token_hash)).all()
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_the_openapi_document_and_docs_page_are_public(anonymous_client: FlaskClient) -> None:
    spec = anonymous_client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    doc = spec.get_json()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearerAuth": []}]
    accounts = doc["paths"]["/api/v1/accounts"]["get"]
    assert {"401", "403"} <= set(accounts["responses"])
    assert "Roles: admin, csm, manager, viewer." in accounts["description"]
    assert anonymous_client.get("/api/v1/docs").status_code == 200


def test_a_csm_sees_their_book_by_default_and_a_manager_their_team(
    anonymous_client: FlaskClient, issue_token: IssueToken, db_session: Session
) -> None:
    for owner in ("ana@example.com", "ben", "cy", "dee"):
        f.make_account(db_session, owner=owner, name=f"Account of {owner}")
    db_session.commit()
    manager = issue_token(Role.MANAGER, "meg")
    ana = issue_token(Role.CSM, "ana", email="ana@example.com", manager="meg")
    issue_token(Role.CSM, "ben", manager="meg")
    issue_token(Role.CSM, "cy")

    def owners(token: str, query: str = "") -> list[str]:
        response = anonymous_client.get(f"/api/v1/accounts?sort=name{query}", headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        return sorted(item["owner"] for item in response.get_json()["items"])

    assert owners(ana) == ["ana@example.com"]
    assert owners(ana, "&scope=all") == ["ana@example.com", "ben", "cy", "dee"]
    assert owners(ana, "&owner=cy") == ["cy"]
    assert owners(manager) == ["ana@example.com", "ben"]
    assert owners(issue_token(Role.VIEWER)) == ["ana@example.com", "ben", "cy", "dee"]
    bad = anonymous_client.get("/api/v1/accounts?scope=mine", headers=bearer(ana))
    assert bad.status_code == 422 and "scope" in bad.get_json()["errors"]["query"]


def test_segment_accepts_the_token_as_the_basic_auth_user(
    anonymous_client: FlaskClient, issue_token: IssueToken
) -> None:
    token = issue_token(Role.INGEST, "segment")
    basic = base64.b64encode(f"{token}:".encode()).decode()
    response = anonymous_client.post(
        "/api/v1/ingest/segment",
        json={"type": "identify", "userId": "u1", "messageId": "m1", "traits": {}},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code not in (401, 403), response.get_json()


def test_cli_creates_a_token_shown_once_on_the_last_line(runner: FlaskCliRunner, anonymous_client: FlaskClient) -> None:
    created = runner.invoke(args=["tokens", "create", "--user", "ops-bot", "--role", "ingest"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("hs_") and len(token) > 40
    assert anonymous_client.get("/api/v1/ingest/quarantine", headers=bearer(token)).status_code == 200
    assert anonymous_client.get("/api/v1/accounts", headers=bearer(token)).status_code == 403

    listed = runner.invoke(args=["tokens", "list"])
    assert token[:9] in listed.output and token not in listed.output
    revoked = runner.invoke(args=["tokens", "revoke", token[:9]])
    assert revoked.exit_code == 0, revoked.output
    assert anonymous_client.get("/api/v1/ingest/quarantine", headers=bearer(token)).status_code == 401


def test_cli_refuses_bad_users_and_roles_with_a_message(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["users", "create", "zed", "--manager", "nobody"]).exit_code == 1
    assert runner.invoke(args=["users", "create", "zed"]).exit_code == 0
    duplicate = runner.invoke(args=["users", "create", "zed"])
    assert duplicate.exit_code == 1 and "exists" in duplicate.output
    bad_role = runner.invoke(args=["tokens", "create", "--user", "zed", "--role", "god"])
    assert bad_role.exit_code == 2 and "god" in bad_role.output
    assert runner.invoke(args=["tokens", "revoke", "hs_zzzzzz"]).exit_code == 1


def test_demo_users_make_one_team_of_the_account_owners(
    runner: FlaskCliRunner, db_session: Session, anonymous_client: FlaskClient
) -> None:
    for owner in ("ana@example.com", "ben@example.com", None):
        f.make_account(db_session, owner=owner)
    db_session.commit()
    first = runner.invoke(args=["demo", "users"])
    assert first.exit_code == 0 and "2 CSM user(s)" in first.output
    assert "0 CSM user(s)" in runner.invoke(args=["demo", "users"]).output
    token = runner.invoke(args=["tokens", "create", "--user", "cs-manager", "--role", "manager"]).stdout.splitlines()[
        -1
    ]
    items = anonymous_client.get("/api/v1/accounts", headers=bearer(token)).get_json()["items"]
    assert sorted(i["owner"] for i in items) == ["ana@example.com", "ben@example.com"]


def test_csms_and_managers_change_only_accounts_in_their_book(
    anonymous_client: FlaskClient, issue_token: IssueToken, db_session: Session
) -> None:
    from app.models import PlayRun, Task
    from app.pipeline.plays import ensure_default_plays

    accounts = {owner: f.make_account(db_session, owner=owner).id for owner in ("ana", "ben", "cy")}
    ensure_default_plays(db_session)
    run = PlayRun(play_id="poor-health-escalation", play_version=1, account_id=accounts["cy"],
                  started_on=dt.date(2026, 6, 1), stage="established", alert="immediate")  # fmt: skip
    db_session.add(run)
    db_session.flush()
    task = Task(play_run_id=run.id, account_id=accounts["cy"], position=0, type="call", title="Call",
                owner_role="csm", assignee="cy", due_on=dt.date(2026, 6, 3))  # fmt: skip
    db_session.add(task)
    db_session.commit()
    meg = issue_token(Role.MANAGER, "meg")
    ana = issue_token(Role.CSM, "ana", manager="meg")
    issue_token(Role.CSM, "ben", manager="meg")

    def pin(token: str, owner: str) -> int:
        response = anonymous_client.post(
            f"/api/v1/watchlist/{accounts[owner]}", json={"reason": "checking"}, headers=bearer(token)
        )
        return response.status_code

    assert pin(ana, "ana") == 201
    assert pin(ana, "ben") == 403
    assert pin(meg, "ben") == 201
    assert pin(meg, "cy") == 403
    assert pin(issue_token(Role.ADMIN), "cy") == 201
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).isoformat()
    override = anonymous_client.post(
        f"/api/v1/accounts/{accounts['cy']}/override",
        json={"band": "good", "reason": "renewal signed", "expires_at": expires},
        headers=bearer(ana),
    )
    assert override.status_code == 403 and "not in your book" in override.get_json()["message"]
    patched = anonymous_client.patch(f"/api/v1/tasks/{task.id}", json={"status": "done"}, headers=bearer(ana))
    assert patched.status_code == 403
    mine = anonymous_client.patch(
        f"/api/v1/tasks/{task.id}", json={"status": "done"}, headers=bearer(issue_token(Role.CSM, "cy"))
    )
    assert mine.status_code == 200 and mine.get_json()["completed_by"] == "cy"
