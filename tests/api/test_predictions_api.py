"""Stored daily churn predictions judged against outcomes, on both databases: the API and the CLI
agree with scikit-learn on the same (account, day) labels; open horizons are left out; bad
queries get field errors; the run itself stores a prediction on every scored day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient, FlaskCliRunner
from sklearn.metrics import brier_score_loss, roc_auc_score
from sqlalchemy.orm import Session

from app.models import HealthScore, Outcome, OutcomeKind, Role
from app.pipeline.run import run_scoring
from scoring.stage import LifecycleStage
from tests import factories as f
from tests.support.auth import bearer

pytestmark = [pytest.mark.api, pytest.mark.db]

FIRST = dt.date(2026, 3, 1)
DAYS = [FIRST + dt.timedelta(days=k) for k in range(10)]
HORIZON = 30
#: account index -> the day it churned (None: never)
CHURNS = {0: FIRST + dt.timedelta(days=5), 1: FIRST + dt.timedelta(days=35), 2: FIRST + dt.timedelta(days=200)}
ACCOUNTS = 6


def _probability(account: int, k: int) -> float:
    # Distinct values, higher for the accounts that churn soon (so the AUC is well above 0.5).
    return round(0.05 + 0.1 * (account in (0, 1)) + 0.011 * account + 0.0007 * k, 6)


def _label(account: int, day: dt.date) -> int:
    churn = CHURNS.get(account)
    return int(churn is not None and day < churn <= day + dt.timedelta(days=HORIZON))


@pytest.fixture
def stored(db_session: Session) -> list[int]:
    """Ten days of stored predictions for six accounts, with their churn outcomes (model v1 trained
    as of the fifth day). An account is scored only on days before it churned."""
    with db_session.begin():
        ids = [f.make_account(db_session).id for _ in range(ACCOUNTS)]
        f.add_churn_model(db_session, as_of=DAYS[4].isoformat())
        for index, churn in CHURNS.items():
            db_session.add(Outcome(account_id=ids[index], source="t", external_id=f"o{index}",
                                   kind=OutcomeKind.CHURNED, day=churn))  # fmt: skip
        for index, account_id in enumerate(ids):
            for k, day in enumerate(DAYS):
                if CHURNS.get(index) is not None and day >= CHURNS[index]:
                    continue
                p = _probability(index, k)
                db_session.add(HealthScore(account_id=account_id, day=day, config_version=1,
                                           stage=LifecycleStage.ESTABLISHED, score=50.0, band=None, completeness=1.0,
                                           measure_values=[], churn_probability=p, expected_arr_at_risk=p * 1000,
                                           churn_model_version=1))  # fmt: skip
    return ids


def _expected(days: list[dt.date]) -> tuple[np.ndarray, np.ndarray]:
    p, y = [], []
    for index in range(ACCOUNTS):
        for k, day in enumerate(DAYS):
            if day in days and not (CHURNS.get(index) is not None and day >= CHURNS[index]):  # type: ignore[operator]
                p.append(_probability(index, k))
                y.append(_label(index, day))
    return np.array(p), np.array(y)


def get(client: FlaskClient, **query: Any) -> Any:
    return client.get("/api/v1/analysis/predictions", query_string=query)


def test_predictions_are_judged_against_churn_within_the_horizon(client: FlaskClient, stored: list[int]) -> None:
    as_of = DAYS[-1] + dt.timedelta(days=HORIZON)  # every horizon closed
    body = get(client, horizon_days=HORIZON, as_of=as_of.isoformat()).get_json()
    p, y = _expected(DAYS)
    assert (body["predictions"], body["churned"], body["censored"]) == (p.size, int(y.sum()), 0)
    assert body["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-4)
    assert body["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-6)
    assert body["base_rate"] == pytest.approx(y.mean(), abs=1e-6)
    assert sum(d["count"] for d in body["deciles"]) == p.size
    assert sum(d["churned"] for d in body["deciles"]) == int(y.sum())
    assert [d["decile"] for d in body["deciles"]] == sorted(d["decile"] for d in body["deciles"])
    assert body["models"] == [
        {"version": 1, "trained_as_of": DAYS[4].isoformat(), "predictions": p.size,
         "out_of_sample": int(sum(1 for i in range(ACCOUNTS) for day in DAYS[4:]
                                  if not (CHURNS.get(i) is not None and day >= CHURNS[i])))},  # type: ignore[operator]
    ]  # fmt: skip
    assert body["note"] is None


def test_open_horizons_are_left_out_and_the_range_and_model_filters_apply(
    client: FlaskClient, stored: list[int]
) -> None:
    as_of = DAYS[6] + dt.timedelta(days=HORIZON)  # the last three days' horizons are still open
    body = get(client, horizon_days=HORIZON, as_of=as_of.isoformat()).get_json()
    p, y = _expected(DAYS[:7])
    assert (body["predictions"], body["churned"]) == (p.size, int(y.sum()))
    assert body["censored"] == 3 * ACCOUNTS - 3  # account 0 churned on the sixth day: no rows after it
    ranged = get(client, horizon_days=HORIZON, as_of=as_of.isoformat(), **{"from": DAYS[2].isoformat(),
                                                                             "to": DAYS[3].isoformat()})  # fmt: skip
    p, y = _expected(DAYS[2:4])
    assert ranged.get_json()["predictions"] == p.size
    assert ranged.get_json()["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-6)
    later = get(client, horizon_days=HORIZON, as_of=as_of.isoformat(), out_of_sample="true").get_json()
    p, y = _expected(DAYS[4:7])
    assert later["predictions"] == p.size and later["out_of_sample"] is True


def test_no_stored_prediction_answers_with_a_note(client: FlaskClient, db_session: Session) -> None:
    body = get(client, as_of="2026-06-30").get_json()
    assert (body["predictions"], body["auc"], body["brier"], body["deciles"]) == (0, None, None, [])
    assert body["note"].startswith("No stored prediction")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-03-05", "to": "2026-03-01"}, "to"),
        ({"horizon_days": "0"}, "horizon_days"),
        ({"horizon_days": "731"}, "horizon_days"),
        ({"from": "yesterday"}, "from"),
        ({"as_of": "2026-02-30"}, "as_of"),
        ({"out_of_sample": "perhaps"}, "out_of_sample"),
        ({"window": "7"}, "window"),
    ],
)
def test_bad_queries_get_field_errors(client: FlaskClient, query: dict[str, str], field: str) -> None:
    response = get(client, **query)
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["query"]) == [field]


def test_managers_and_admins_may_read_it(client: FlaskClient, issue_token: Callable[..., str]) -> None:
    assert get(client).status_code == 200
    assert client.get("/api/v1/analysis/predictions", headers=bearer(issue_token(Role.MANAGER))).status_code == 200
    assert client.get("/api/v1/analysis/predictions", headers=bearer(issue_token(Role.CSM))).status_code == 403


def test_the_cli_prints_the_figures_and_deciles(runner: FlaskCliRunner, stored: list[int]) -> None:
    as_of = (DAYS[-1] + dt.timedelta(days=HORIZON)).isoformat()
    result = runner.invoke(args=["analysis", "predictions", "--horizon-days", str(HORIZON), "--as-of", as_of])
    assert result.exit_code == 0, result.output
    p, y = _expected(DAYS)
    assert f"{p.size} predictions ({int(y.sum())} churned, 0 left out" in result.output
    assert f"ROC AUC {roc_auc_score(y, p):.3f}" in result.output
    assert "decile" in result.output and "model v1 (trained as of 2026-03-05)" in result.output
    bad = runner.invoke(args=["analysis", "predictions", "--from", "2026-03-05", "--to", "2026-03-01"])
    assert bad.exit_code != 0 and "must not be before --from" in bad.output


def test_every_scored_day_stores_the_prediction_in_history(client: FlaskClient, db_session: Session) -> None:
    with db_session.begin():
        account = f.make_account(db_session, arr=2000.0)
        f.add_usage(db_session, account, DAYS[0] - dt.timedelta(days=40), DAYS[-1])
        f.add_churn_model(db_session, probability=0.3)
        for day in DAYS:
            run_scoring(db_session, as_of=day)
        rows = db_session.execute(
            sa.select(HealthScore.churn_probability, HealthScore.expected_arr_at_risk, HealthScore.churn_model_version)
        ).all()
    assert len(rows) == len(DAYS) and all(tuple(r) == (0.3, 600.0, 1) for r in rows)
    history = client.get(f"/api/v1/accounts/{account.id}").get_json()["history"]
    assert len(history) == len(DAYS)
    assert all((h["churn_probability"], h["expected_arr_at_risk"], h["churn_model_version"]) == (0.3, 600.0, 1)
               for h in history)  # fmt: skip
