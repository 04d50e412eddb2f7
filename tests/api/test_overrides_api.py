"""Band overrides on SQLite and PostgreSQL: create, conflict, revoke, expiry that reverts by
itself, the trail newest first, the account detail beside the computed band, audit and roles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import AuditEntry, BandOverride, LatestScore, Role
from app.services.scoring_config.active import ensure_default_config
from scoring.bands import Band
from scoring.model import default_config_dict
from scoring.stage import LifecycleStage
from tests import factories as f
from tests.support.auth import bearer

pytestmark = [pytest.mark.api, pytest.mark.db]

IssueToken = Callable[..., str]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def later(days: float = 7) -> str:
    return (now() + dt.timedelta(days=days)).isoformat()


@pytest.fixture
def account(db_session: Session) -> int:
    with db_session.begin():
        ensure_default_config(db_session)
        row = f.make_account(db_session, name="Acme")
        db_session.add(
            LatestScore(
                account_id=row.id,
                day=dt.date.today(),
                config_version=1,
                stage=LifecycleStage.ESTABLISHED,
                score=30.0,
                band=Band.POOR,
                completeness=1.0,
                measure_values=[None] * len(default_config_dict()["measures"]),
                score_change_7d=-2.0,
            )
        )
    return row.id


def test_override_beside_the_computed_band(client: FlaskClient, account: int, db_session: Session) -> None:
    response = client.post(
        f"/api/v1/accounts/{account}/override",
        json={"band": "good", "reason": "  renewal signed verbally ", "expires_at": later(30)},
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["band"] == "good" and created["reason"] == "renewal signed verbally"
    assert created["author"] == "test-admin" and created["state"] == "live" and created["revoked_at"] is None
    detail = client.get(f"/api/v1/accounts/{account}").get_json()
    assert detail["health"]["band"] == "poor" and detail["health"]["score"] == 30.0  # computed, untouched
    assert detail["override"]["band"] == "good" and detail["override"]["reason"] == "renewal signed verbally"
    assert detail["effective_band"] == "good"
    score = db_session.scalar(sa.select(LatestScore.band).where(LatestScore.account_id == account))
    assert score == Band.POOR
    conflict = client.post(
        f"/api/v1/accounts/{account}/override", json={"band": "average", "reason": "again", "expires_at": later()}
    )
    assert conflict.status_code == 409 and "revoke" in conflict.get_json()["message"]
    revoked = client.delete(f"/api/v1/accounts/{account}/override")
    assert revoked.status_code == 200
    assert revoked.get_json()["state"] == "revoked" and revoked.get_json()["revoked_by"] == "test-admin"
    assert client.delete(f"/api/v1/accounts/{account}/override").status_code == 404
    detail = client.get(f"/api/v1/accounts/{account}").get_json()
    assert detail["override"] is None and detail["effective_band"] == "poor"
    assert (
        client.post(
            f"/api/v1/accounts/{account}/override", json={"band": "average", "reason": "new", "expires_at": later()}
        ).status_code
        == 201
    )
    trail = client.get(f"/api/v1/accounts/{account}/overrides").get_json()["items"]
    assert [(o["band"], o["state"]) for o in trail] == [("average", "live"), ("good", "revoked")]
    actions = db_session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["override.create", "override.revoke", "override.create"]
    details = db_session.scalars(sa.select(AuditEntry.details).order_by(AuditEntry.id)).first()
    assert details is not None and details["band"] == "good" and details["reason"] == "renewal signed verbally"


def test_an_expired_override_reverts_by_itself(client: FlaskClient, account: int, db_session: Session) -> None:
    with db_session.begin():
        db_session.add(
            BandOverride(
                account_id=account,
                band=Band.GOOD,
                reason="was fine",
                author="ana",
                created_at=now() - dt.timedelta(days=10),
                expires_at=now() - dt.timedelta(seconds=1),
            )
        )
    detail = client.get(f"/api/v1/accounts/{account}").get_json()
    assert detail["override"] is None and detail["effective_band"] == "poor"
    assert client.delete(f"/api/v1/accounts/{account}/override").status_code == 404
    assert [o["state"] for o in client.get(f"/api/v1/accounts/{account}/overrides").get_json()["items"]] == ["expired"]
    # A new one after the expiry: the expired row is closed first (the live index allows one open row).
    response = client.post(
        f"/api/v1/accounts/{account}/override", json={"band": "average", "reason": "again", "expires_at": later()}
    )
    assert response.status_code == 201, response.get_json()
    trail = client.get(f"/api/v1/accounts/{account}/overrides").get_json()["items"]
    assert [(o["band"], o["state"]) for o in trail] == [("average", "live"), ("good", "expired")]
    assert trail[1]["revoked_by"] is None  # nobody revoked it: it expired
    closed = db_session.scalar(sa.select(BandOverride).where(BandOverride.band == Band.GOOD))
    assert closed is not None and closed.revoked_by == "(expired)" and closed.revoked_at is not None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"band": "good", "expires_at": later()},
        {"band": "good", "reason": "", "expires_at": later()},
        {"band": "good", "reason": "  ", "expires_at": later()},
        {"band": "great", "reason": "x", "expires_at": later()},
        {"band": "good", "reason": "x"},
        {"band": "good", "reason": "x", "expires_at": None},
        {"band": "good", "reason": "x", "expires_at": "next week"},
        {"band": "good", "reason": "x", "expires_at": (now() - dt.timedelta(minutes=1)).isoformat()},
        {"band": "good", "reason": "x", "expires_at": later(181)},
        {"band": "good", "reason": "x", "expires_at": later(), "score": 99},
        ["good"],
    ],
)
def test_bad_overrides_get_422(client: FlaskClient, account: int, body: Any) -> None:
    response = client.post(f"/api/v1/accounts/{account}/override", json=body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]


def test_expiry_bounds_and_offsets(client: FlaskClient, account: int) -> None:
    # 179 days with an offset, and a naive datetime read as UTC, are both accepted.
    moment = (now() + dt.timedelta(days=179)).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    response = client.post(
        f"/api/v1/accounts/{account}/override", json={"band": "good", "reason": "x", "expires_at": moment.isoformat()}
    )
    assert response.status_code == 201
    assert dt.datetime.fromisoformat(response.get_json()["expires_at"]) == moment
    assert client.delete(f"/api/v1/accounts/{account}/override").status_code == 200
    naive = (now() + dt.timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    response = client.post(
        f"/api/v1/accounts/{account}/override", json={"band": "good", "reason": "x", "expires_at": naive.isoformat()}
    )
    assert response.status_code == 201
    assert dt.datetime.fromisoformat(response.get_json()["expires_at"]) == naive.replace(tzinfo=dt.UTC)


def test_unknown_accounts_and_roles(
    client: FlaskClient, anonymous_client: FlaskClient, issue_token: IssueToken, account: int
) -> None:
    body = {"band": "good", "reason": "x", "expires_at": later()}
    assert client.post("/api/v1/accounts/999999/override", json=body).status_code == 404
    assert client.delete("/api/v1/accounts/999999/override").status_code == 404
    assert client.get("/api/v1/accounts/999999/overrides").status_code == 404
    viewer = bearer(issue_token(Role.VIEWER, "vic"))
    assert anonymous_client.post(f"/api/v1/accounts/{account}/override", json=body, headers=viewer).status_code == 403
    assert anonymous_client.delete(f"/api/v1/accounts/{account}/override", headers=viewer).status_code == 403
    assert anonymous_client.get(f"/api/v1/accounts/{account}/overrides", headers=viewer).status_code == 200
    other = bearer(issue_token(Role.CSM, "ana"))  # not the account's CSM
    assert anonymous_client.post(f"/api/v1/accounts/{account}/override", json=body, headers=other).status_code == 403
    csm = bearer(issue_token(Role.CSM, "csm@example.com"))
    response = anonymous_client.post(f"/api/v1/accounts/{account}/override", json=body, headers=csm)
    assert response.status_code == 201 and response.get_json()["author"] == "csm@example.com"
