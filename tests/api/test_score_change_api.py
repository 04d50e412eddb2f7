"""Score-change attribution over the real scoring run, on SQLite and PostgreSQL: the data and
config effects per measure add up to the change of the stored scores; unhappy paths."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import FeedbackKind, HealthScore, ScoringConfigVersion
from app.pipeline.run import run_scoring
from app.services.scoring_config.active import ensure_default_config
from scoring.model import default_config_dict
from tests import factories as f

pytestmark = [pytest.mark.api, pytest.mark.db]

DAY1 = dt.date(2026, 6, 1)
DAY2 = dt.date(2026, 6, 15)
DAY3 = dt.date(2026, 6, 29)


@pytest.fixture
def history(db_session: Session) -> int:
    """One account scored on three days: usage falls between day 1 and 2; between day 2 and 3
    usage recovers and a new config version (NPS weighs 10x more) becomes active."""
    with db_session.begin():
        account = f.make_account(db_session, name="Acme", contract_start=dt.date(2025, 1, 1))
        f.add_usage(db_session, account, DAY1 - dt.timedelta(days=60), DAY1, active_users=8, logins=12)
        f.add_usage(db_session, account, DAY2 - dt.timedelta(days=6), DAY2, active_users=1, logins=1)
        f.add_usage(db_session, account, DAY3 - dt.timedelta(days=6), DAY3, active_users=6, logins=9)
        f.add_license(db_session, account, DAY1, purchased=10, assigned=10, active=8)
        f.add_feedback(db_session, account, DAY1, FeedbackKind.NPS, 2)
    with db_session.begin():
        run_scoring(db_session, as_of=DAY1)
    with db_session.begin():
        run_scoring(db_session, as_of=DAY2)
    with db_session.begin():
        ensure_default_config(db_session)
        config = default_config_dict()
        for stage_weights in config["weights"].values():
            stage_weights["nps"] = stage_weights.get("nps", 0) * 10 + 1
        config["neutral_score"] = 45
        db_session.execute(sa.update(ScoringConfigVersion).values(active=False))
        db_session.add(ScoringConfigVersion(version=2, config=config, author="t", comment="nps", active=True))
    with db_session.begin():
        run_scoring(db_session, as_of=DAY3)
    return account.id


def change(client: FlaskClient, account: int, start: dt.date, end: dt.date) -> dict[str, Any]:
    response = client.get(f"/api/v1/accounts/{account}/score-change?from={start}&to={end}")
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def stored(db_session: Session, account: int, day: dt.date) -> HealthScore:
    row = db_session.get(HealthScore, (account, day))
    assert row is not None
    return row


def test_a_data_change_is_all_data_effect(client: FlaskClient, history: int, db_session: Session) -> None:
    body = change(client, history, DAY1, DAY2)
    first, second = stored(db_session, history, DAY1), stored(db_session, history, DAY2)
    assert body["from"]["day"] == DAY1.isoformat() and body["to"]["day"] == DAY2.isoformat()
    assert body["from"]["score"] == pytest.approx(first.score) and body["to"]["score"] == pytest.approx(second.score)
    assert body["change"] == pytest.approx(second.score - first.score, abs=2e-4)  # type: ignore[operator]
    assert body["from_score"] == pytest.approx(first.score, abs=1e-4)
    assert body["change"] < 0
    assert body["config_effect"] == pytest.approx(0.0, abs=1e-9) and body["neutral_effect"] == 0
    assert body["data_effect"] == pytest.approx(body["change"], abs=1e-6)
    measures = {m["measure"]: m for m in body["measures"]}
    assert measures["active_user_ratio"]["data_effect"] < 0
    assert sum(m["total"] for m in body["measures"]) == pytest.approx(body["change"], abs=1e-6)


def test_a_config_change_is_split_from_the_data_change(client: FlaskClient, history: int) -> None:
    body = change(client, history, DAY2, DAY3)
    assert body["from"]["config_version"] == 1 and body["to"]["config_version"] == 2
    assert body["data_effect"] + body["config_effect"] == pytest.approx(body["change"], abs=1e-6)
    assert body["neutral_effect"] == -5
    measures = {m["measure"]: m for m in body["measures"]}
    assert measures["active_user_ratio"]["data_effect"] != 0  # the usage windows moved
    assert measures["nps"]["data_effect"] == pytest.approx(0.0, abs=1e-9)  # same NPS data
    assert measures["nps"]["config_effect"] != 0  # its weight changed
    total = sum(m["data_effect"] + m["config_effect"] for m in body["measures"]) + body["neutral_effect"]
    assert total == pytest.approx(body["change"], abs=1e-6)
    assert measures["nps"]["label"] and measures["nps"]["from_value"] == measures["nps"]["to_value"]


def test_the_same_day_changes_nothing(client: FlaskClient, history: int) -> None:
    body = change(client, history, DAY2, DAY2)
    assert body["change"] == 0 and body["data_effect"] == 0 and body["config_effect"] == 0


@pytest.mark.parametrize(
    ("query", "status"),
    [
        (f"from={DAY1}&to={DAY1 + dt.timedelta(days=1)}", 404),  # no score row that day
        (f"from={DAY1 - dt.timedelta(days=1)}&to={DAY2}", 404),
        (f"from={DAY2}&to={DAY1}", 422),  # reversed
        (f"from={DAY1}", 422),
        (f"to={DAY1}", 422),
        ("from=yesterday&to=today", 422),
        (f"from={DAY1}&to={DAY2}&by=measure", 422),
    ],
)
def test_unhappy_paths(client: FlaskClient, history: int, query: str, status: int) -> None:
    response = client.get(f"/api/v1/accounts/{history}/score-change?{query}")
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["code"] == status and body["message"]
    if status == 404:
        assert "no score on" in body["message"]


def test_unknown_account_and_a_day_without_a_score(client: FlaskClient, history: int, db_session: Session) -> None:
    assert client.get(f"/api/v1/accounts/999999/score-change?from={DAY1}&to={DAY2}").status_code == 404
    with db_session.begin():
        db_session.execute(
            sa.update(HealthScore).where(HealthScore.day == DAY1).values(score=None, band=None, completeness=0)
        )
    response = client.get(f"/api/v1/accounts/{history}/score-change?from={DAY1}&to={DAY2}")
    assert response.status_code == 422 and "no measure had data" in response.get_json()["message"]
