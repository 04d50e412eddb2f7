"""The churn model's bad input (a clear 422 at once, or a failed training with the reason; never a
500) and stored models of the older format (ignored with a note, never a crash)."""

from __future__ import annotations

import datetime as dt
import io

import joblib
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from app.models import ChurnModel, JobRequest, LatestScore, Outcome
from app.models.enums import OutcomeKind
from app.pipeline.run import run_scoring
from app.services.analysis import OLD_FORMAT_NOTE
from tests import factories as f

AS_OF = dt.date(2026, 6, 30)
TRAIN = "/api/v1/analysis/churn-model/train"


def _accounts_with_usage(session: Session, count: int, first: dt.date) -> list[int]:
    ids = []
    for _ in range(count):
        account = f.make_account(session, contract_start=dt.date(2025, 1, 1))
        f.add_usage(session, account, first, AS_OF)
        ids.append(account.id)
    return ids


def _queued(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(JobRequest)) or 0


def test_no_data_at_all_is_a_422(client: FlaskClient, db_session: Session) -> None:
    response = client.post(TRAIN, json={"as_of": AS_OF.isoformat()})
    assert response.status_code == 422
    assert response.get_json()["errors"]["as_of"] == [
        "There is no data to learn from yet: no usage, signals, licenses, feedback, tickets or outcomes."
    ]
    assert _queued(db_session) == 0


def test_an_as_of_before_any_data_is_a_422_naming_the_first_day(client: FlaskClient, db_session: Session) -> None:
    with db_session.begin():
        _accounts_with_usage(db_session, 1, dt.date(2026, 1, 10))
    response = client.post(TRAIN, json={"as_of": "2025-06-30"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["errors"]["as_of"] == ["as_of 2025-06-30 is before any data: the first data is dated 2026-01-10."]
    assert _queued(db_session) == 0


def test_a_horizon_longer_than_the_history_is_a_422_saying_the_longest(
    client: FlaskClient, db_session: Session
) -> None:
    with db_session.begin():
        _accounts_with_usage(db_session, 1, dt.date(2026, 4, 1))
    response = client.post(TRAIN, json={"as_of": AS_OF.isoformat(), "horizon_days": 120})
    assert response.status_code == 422
    [message] = response.get_json()["errors"]["horizon_days"]
    assert message.startswith("horizon_days 120 is longer than the history: the data runs from 2026-04-01 to as_of")
    assert message.endswith("use at most 90 days or a later as_of.")
    # The suggestions refuse it the same way.
    assert (
        client.post("/api/v1/scoring/suggestions", json={"as_of": AS_OF.isoformat(), "horizon_days": 120}).status_code
        == 422
    )
    # 90 days fit the history (the request then fails on the outcomes: there are none).
    fits = client.post(TRAIN, json={"as_of": AS_OF.isoformat(), "horizon_days": 90}).get_json()
    assert set(fits["errors"]) == {"outcomes"}


@pytest.mark.parametrize("kind", [OutcomeKind.CHURNED, OutcomeKind.RENEWED])
def test_every_account_churned_or_none_is_a_422_at_once(
    client: FlaskClient, db_session: Session, kind: OutcomeKind
) -> None:
    with db_session.begin():
        for i, account_id in enumerate(_accounts_with_usage(db_session, 40, dt.date(2025, 6, 1))):
            db_session.add(Outcome(account_id=account_id, source="t", external_id=f"o{i}", kind=kind,
                                   day=dt.date(2026, 5, 1)))  # fmt: skip
    response = client.post(TRAIN, json={"as_of": AS_OF.isoformat(), "periodic": False})
    assert response.status_code == 422
    [message] = response.get_json()["errors"]["outcomes"]
    counts = "40 churned and 0 not churned" if kind is OutcomeKind.CHURNED else "0 churned and 40 not churned"
    assert message.startswith(f"Too few outcomes to learn from: {counts} observations at most")
    assert message.endswith("at least 30 of each are needed.")
    assert _queued(db_session) == 0


def test_the_cli_training_says_when_no_observation_churned(runner: FlaskCliRunner, db_session: Session) -> None:
    with db_session.begin():
        for i, account_id in enumerate(_accounts_with_usage(db_session, 40, dt.date(2025, 6, 1))):
            db_session.add(Outcome(account_id=account_id, source="t", external_id=f"o{i}", kind=OutcomeKind.RENEWED,
                                   day=dt.date(2026, 5, 1)))  # fmt: skip
    result = runner.invoke(args=["analysis", "train", "--as-of", AS_OF.isoformat(), "--periodic-months", "3"])
    assert result.exit_code == 1
    assert "none of the" in result.output and "observations churned: nothing to learn churn from" in result.output
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ChurnModel)) == 0


def test_a_stored_model_of_the_older_format_is_ignored_with_a_note(client: FlaskClient, db_session: Session) -> None:
    with db_session.begin():
        # An account that barely uses the product: on the watchlist (its note is checked there too).
        account = f.make_account(db_session, contract_start=dt.date(2025, 1, 1))
        f.add_usage(db_session, account, dt.date(2026, 5, 1), AS_OF, active_users=0, logins=0, key_feature_uses=0)
        account_id = account.id
        blob = io.BytesIO()
        joblib.dump({"an": "estimator of the old shape"}, blob)
        db_session.add(
            ChurnModel(
                version=1, trained_by="old", horizon_days=90, config_version=1, neutral_score=50.0,
                measure_names=["nps"], feature_names=["score:nps", "missing:nps"], params={"as_of": "2026-01-01"},
                counts={"observations": 100}, validation={"auc": 0.8, "split": {"test": 30}}, model=blob.getvalue(),
            )
        )  # fmt: skip
    with db_session.begin():
        run_scoring(db_session, as_of=AS_OF)  # no crash: the old model is not applied
    assert (
        db_session.scalar(sa.select(LatestScore.churn_probability).where(LatestScore.account_id == account_id)) is None
    )
    db_session.rollback()
    note = OLD_FORMAT_NOTE.format(version=1)
    info = client.get("/api/v1/analysis/churn-model").get_json()
    assert info["note"] == note and info["model"]["format"] == 1 and info["model"]["kind"] is None
    assert info["model"]["validation"] == {"auc": 0.8}  # what the schema knows of the old figures
    detail = client.get(f"/api/v1/accounts/{account_id}").get_json()
    assert detail["churn_probability"] is None and detail["churn_probability_note"] == note
    assert detail["churn_reasons"] is None
    rows = client.get("/api/v1/watchlist?scope=all").get_json()["items"]
    assert rows and all(row["churn_probability_note"] == note for row in rows)
