"""Learning from outcomes through the API, on SQLite and PostgreSQL: suggestions (queued, run by a
worker, and posting the proposal as a new version), the churn model (trained by a queued request,
read, applied by the scoring run, shown on account detail and the watchlist), event lift,
validation errors and roles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.demo.seed import seed_demo
from app.models import Account, ChurnModel, Event, HealthScore, JobRun, LatestScore, Outcome, Role
from app.models.enums import OutcomeKind
from app.pipeline.run import run_scoring
from app.schemas import MAX_INT
from app.services.analysis import NO_MODEL_NOTE, NOT_SCORED_SINCE_NOTE
from app.services.users import set_password
from scoring.bands import Band
from scoring.rules import RuleKind, Severity
from scoring.stage import LifecycleStage
from tests import factories as f
from tests.support.auth import bearer
from tests.support.job_requests import work_requests
from tests.support.web import PASSWORD, sign_in

pytestmark = [pytest.mark.api, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)
IssueToken = Callable[..., str]
#: Enough history for a 90-day horizon and 6 monthly observations; small enough to seed fast.
LEARN = {"as_of": AS_OF.isoformat(), "periodic_months": 6, "min_per_class": 10}


@pytest.fixture
def demo(db_session: Session) -> Session:
    with db_session.begin():
        seed_demo(db_session, accounts=250, days=300, as_of=AS_OF, seed=3)
    return db_session


def score(session: Session) -> None:
    with session.begin():
        run_scoring(session, as_of=AS_OF)


def queued_result(client: FlaskClient, app: Flask, response: TestResponse, kind: str) -> dict[str, Any]:
    """A 202 answer: the job request it queued, run by a worker; its result."""
    assert response.status_code == 202, response.get_json()
    queued = response.get_json()
    assert queued["kind"] == kind and queued["status"] == "queued" and queued["result"] is None
    assert response.headers["Location"] == queued["url"] == f"/api/v1/jobs/requests/{queued['id']}"
    [outcome] = work_requests(app)
    assert outcome.request_id == queued["id"] and not outcome.failed, outcome
    request = client.get(queued["url"]).get_json()
    assert request["status"] == "succeeded" and request["attempts"] == 1, request
    result: dict[str, Any] = request["result"]
    return result


# --- suggestions ------------------------------------------------------------------------------------


def test_suggestions_propose_a_config_validated_walk_forward_and_it_posts_as_a_version(
    client: FlaskClient, app: Flask, demo: Session
) -> None:
    assert client.get("/api/v1/analysis/signals").status_code == 404  # nothing ranked yet
    body = queued_result(client, app, client.post("/api/v1/scoring/suggestions", json=LEARN), "suggestions")
    assert body["as_of"] == AS_OF.isoformat()
    assert body["horizon_days"] == 90 and body["periodic_months"] == 6 and body["active_version"] == 1
    data = body["data"]
    assert data["churned"] >= 10 and data["not_churned"] > data["churned"]
    assert data["periodic_observations"] == data["observations"] and data["candidates"] >= 30
    assert data["cached"] is False
    # At most 12 measures, each in the measure language with a fitted direction and thresholds.
    assert 1 <= len(body["measures"]) <= 12
    for m in body["measures"]:
        assert m["measure"]["source"] and m["measure"]["direction"] in {"higher_is_better", "lower_is_better"}
        assert m["measure"]["thresholds"] == sorted(m["measure"]["thresholds"])
        assert set(m["weights"]) == {"onboarding", "established", "pre_renewal"}
        assert m["reason"].startswith("Ranks churn with AUC")
    validation = body["validation"]
    assert len(validation["folds"]) == 3
    comparison = validation["comparison"]
    if comparison is not None:
        assert set(comparison["auc"]) == {"proposal", "active", "best_single", "reference_lr"}
        for interval in comparison["auc"].values():
            assert interval["low"] <= interval["value"] <= interval["high"]
        assert isinstance(validation["verdict"]["improvement"], bool)
    else:
        assert "no validation" in validation["messages"][0]
    # Every candidate ranked, the chosen ones marked.
    signals = body["signals"]
    assert len(signals) == data["candidates"]
    assert {s["measure"] for s in signals if s["chosen"]} == {m["measure"]["name"] for m in body["measures"]}
    # A second suggestion the same day (same active config) reads the day's observations back.
    again = queued_result(client, app, client.post("/api/v1/scoring/suggestions", json=LEARN), "suggestions")
    assert again["data"]["cached"] is True
    assert again["data"]["observations"] == data["observations"] and again["measures"] == body["measures"]
    new_version = body["new_version"]
    assert new_version["comment"].startswith("suggested from ")
    # Applying it is creating a version through the existing API, body as is; it activates and scores.
    created = client.post("/api/v1/scoring/config/versions", json=new_version)
    assert created.status_code == 201, created.get_json()
    version = created.get_json()["version"]
    assert client.post(f"/api/v1/scoring/config/versions/{version}/activate").status_code in {200, 202}
    [rescore] = work_requests(app)  # the activation's rescore, with the proposed config
    assert not rescore.failed, rescore
    with demo.begin():
        summary = run_scoring(demo, as_of=AS_OF)
    assert summary.config_version == version and summary.accounts_scored > 0
    # The ranking is readable afterwards, from the newest suggestion.
    ranked = client.get("/api/v1/analysis/signals")
    assert ranked.status_code == 200
    assert ranked.get_json()["signals"] == signals and ranked.get_json()["as_of"] == AS_OF.isoformat()


def test_an_as_of_before_any_data_or_a_horizon_past_the_history_is_a_422(
    client: FlaskClient, db_session: Session
) -> None:
    with db_session.begin():
        account = f.make_account(db_session, contract_start=dt.date(2026, 3, 1))
        f.add_usage(db_session, account, dt.date(2026, 3, 1), dt.date(2026, 6, 1))
    early = client.post("/api/v1/scoring/suggestions", json={"as_of": "2025-01-01"})
    assert early.status_code == 422
    assert early.get_json()["errors"]["as_of"] == [
        "as_of 2025-01-01 is before any data: the first data is dated 2026-03-01."
    ]
    long = client.post("/api/v1/analysis/churn-model/train", json={"as_of": "2026-06-01", "horizon_days": 120})
    assert long.status_code == 422
    assert "is longer than the history" in long.get_json()["errors"]["horizon_days"][0]
    assert client.get("/api/v1/jobs/requests").get_json()["total"] == 0


def test_every_account_churned_or_none_fails_the_request_saying_so(
    client: FlaskClient, app: Flask, db_session: Session
) -> None:
    with db_session.begin():
        for i in range(40):
            account = f.make_account(db_session, contract_start=dt.date(2025, 1, 1))
            f.add_usage(db_session, account, dt.date(2025, 1, 1), dt.date(2026, 6, 1))
            db_session.add(Outcome(account_id=account.id, source="t", external_id=f"r{i}", kind=OutcomeKind.RENEWED,
                                   day=dt.date(2026, 1, 1)))  # fmt: skip
    queued = client.post("/api/v1/scoring/suggestions", json={"as_of": AS_OF.isoformat(), "periodic_months": 6,
                                                                "min_per_class": 1})  # fmt: skip
    if queued.status_code == 422:  # the counts on record already rule it out
        assert "churn" in queued.get_json()["message"]
        return
    assert queued.status_code == 202
    [outcome] = work_requests(app)
    assert outcome.failed
    request = client.get(queued.get_json()["url"]).get_json()
    assert request["status"] == "failed" and "None of the" in request["error"] and "churned" in request["error"]


def test_too_few_outcomes_is_a_422_saying_how_many(client: FlaskClient, db_session: Session) -> None:
    with db_session.begin():
        account = f.make_account(db_session, contract_start=dt.date(2025, 1, 1))
        f.add_usage(db_session, account, dt.date(2025, 12, 1), dt.date(2026, 3, 1))
        db_session.add(Outcome(account_id=account.id, source="t", external_id="o1", kind=OutcomeKind.CHURNED,
                               day=dt.date(2026, 5, 1)))  # fmt: skip
    response = client.post("/api/v1/scoring/suggestions", json={"as_of": AS_OF.isoformat(), "periodic": False})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert "Too few outcomes to learn from: 1 churned and 0 not churned observations" in body["message"]
    assert body["errors"]["outcomes"][0].endswith("at least 30 of each are needed.")
    train = client.post("/api/v1/analysis/churn-model/train", json={"as_of": AS_OF.isoformat()})
    assert train.status_code == 422 and "Too few outcomes" in train.get_json()["message"]
    # Refused up front: nothing was queued.
    assert client.get("/api/v1/jobs/requests").get_json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"horizon_days": 0}, "horizon_days", "Must be greater than or equal to 7 and less than or equal to 730."),
        ({"horizon_days": "90"}, "horizon_days", "Not a valid integer."),
        (
            {"periodic_months": 61},
            "periodic_months",
            "Must be greater than or equal to 1 and less than or equal to 60.",
        ),
        (
            {"min_per_class": MAX_INT + 1},
            "min_per_class",
            "Must be greater than or equal to 1 and less than or equal to 100000.",
        ),
        ({"periodic": "sometimes"}, "periodic", "Not a valid boolean."),
        ({"as_of": "yesterday"}, "as_of", "Not a valid date."),
        (
            {"as_of": "0001-01-01"},
            "as_of",
            "Must be greater than or equal to 1990-01-01 and less than or equal to 2999-12-31.",
        ),
        ({"seed": 3}, "seed", "Unknown field."),
    ],
)
@pytest.mark.parametrize("url", ["/api/v1/scoring/suggestions", "/api/v1/analysis/churn-model/train"])
def test_bad_options_get_422_with_the_field(
    client: FlaskClient, url: str, body: dict[str, Any], field: str, message: str
) -> None:
    response = client.post(url, json=body)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert {k: body[k] for k in ("code", "status", "message")} == {
        "code": 422,
        "status": "Unprocessable Entity",
        "message": "The options are invalid.",
    }
    assert list(body["errors"]) == ["json"] and list(body["errors"]["json"]) == [field]
    assert body["errors"]["json"][field][0] == message


def test_a_body_that_is_not_an_object_or_not_json(client: FlaskClient) -> None:
    assert client.post("/api/v1/scoring/suggestions", json=[]).status_code == 422
    broken = client.post("/api/v1/scoring/suggestions", data="{", content_type="application/json")
    assert broken.status_code == 400
    bad_query = client.get("/api/v1/analysis/event-lift?window_days=0")
    assert bad_query.status_code == 422
    assert bad_query.get_json()["errors"] == {
        "query": {"window_days": ["Must be greater than or equal to 1 and less than or equal to 730."]}
    }


def test_roles(client: FlaskClient, issue_token: IssueToken) -> None:
    csm, manager, viewer = (issue_token(role) for role in (Role.CSM, Role.MANAGER, Role.VIEWER))
    for token in (csm, manager, viewer):
        assert client.post("/api/v1/scoring/suggestions", json={}, headers=bearer(token)).status_code == 403
        assert client.post("/api/v1/analysis/churn-model/train", json={}, headers=bearer(token)).status_code == 403
    denied = client.post("/api/v1/scoring/suggestions", json={}, headers=bearer(csm)).get_json()
    assert denied["code"] == 403 and denied["status"] == "Forbidden"
    assert client.get("/api/v1/analysis/event-lift", headers=bearer(manager)).status_code == 200
    assert client.get("/api/v1/analysis/event-lift", headers=bearer(csm)).status_code == 403
    assert client.get("/api/v1/analysis/churn-model", headers=bearer(viewer)).status_code == 200


# --- the churn model --------------------------------------------------------------------------------


def test_churn_probability_is_null_with_a_note_before_training_and_set_by_the_next_scoring_run(
    client: FlaskClient, app: Flask, demo: Session
) -> None:
    score(demo)
    first = demo.scalar(sa.select(LatestScore.account_id).order_by(LatestScore.account_id).limit(1))
    assert demo.scalar(sa.select(sa.func.count()).where(LatestScore.churn_probability.is_not(None))) == 0
    detail = client.get(f"/api/v1/accounts/{first}").get_json()
    assert detail["churn_probability"] is None and detail["expected_arr_at_risk"] is None
    assert detail["churn_probability_note"] == NO_MODEL_NOTE
    rows = client.get("/api/v1/watchlist?scope=all").get_json()["items"]
    assert rows and all(r["churn_probability"] is None and r["churn_probability_note"] == NO_MODEL_NOTE for r in rows)
    info = client.get("/api/v1/analysis/churn-model").get_json()
    assert info == {"model": None, "versions": 0, "note": NO_MODEL_NOTE}

    # A small portfolio: folds with 5 churned training observations are validated (min_per_class 5).
    trained = client.post("/api/v1/analysis/churn-model/train", json=LEARN | {"min_per_class": 5})
    model = queued_result(client, app, trained, "train-churn-model")
    assert model["version"] == 1 and model["horizon_days"] == 90 and model["config_version"] == 1
    assert model["trained_by"] == "test-admin"
    assert model["counts"]["churned"] >= 10
    assert model["format"] == 3 and model["kind"] in {"logistic_regression", "gradient_boosting"}
    # It learned from the config's measures and the discovered candidates, kept at most 24 (the best
    # of each correlated group), and stores what computes each (a ratio's parts too).
    assert model["params"]["candidates"] > 11 and 1 <= len(model["measure_names"]) <= 24
    defined = {m["name"] for m in model["params"]["measures"]}
    assert set(model["measure_names"]) <= defined
    validation = model["validation"]
    assert validation["auc"] is not None and validation["brier"] is not None
    assert validation["base_rate_brier"] is not None
    assert sum(b["observations"] for b in validation["reliability"]) == validation["observations"]
    assert sum(d["observations"] for d in validation["deciles"]) == validation["observations"]
    # Both candidates on the same pooled walk-forward observations, with intervals, and the winner.
    comparison = validation["comparison"]
    assert comparison["observations"] == validation["observations"] and comparison["reference"] == "logistic_regression"
    for candidate in ("logistic_regression", "gradient_boosting"):
        auc = comparison["auc"][candidate]
        assert auc["low"] <= auc["value"] <= auc["high"]
    assert validation["winner"] == model["kind"] and validation["reason"]
    assert any(fold["skipped"] is None for fold in validation["folds"])
    assert client.get("/api/v1/analysis/churn-model").get_json()["model"]["validation"] == validation
    run = demo.scalar(sa.select(JobRun).where(JobRun.job == "train-churn-model"))
    assert run is not None and run.status == "succeeded" and run.counts["version"] == 1
    assert run.params["job_request"] == trained.get_json()["id"] and run.params["requested_by"] == "test-admin"
    assert client.get(trained.headers["Location"]).get_json()["job_run_id"] == run.id
    assert client.get("/api/v1/analysis/churn-model").get_json()["model"]["version"] == 1
    demo.rollback()

    # Scored before the model existed: the note says the next run adds it.
    detail = client.get(f"/api/v1/accounts/{first}").get_json()
    assert detail["churn_probability"] is None and detail["churn_probability_note"] == NOT_SCORED_SINCE_NOTE

    score(demo)
    rows = demo.execute(
        sa.select(LatestScore.churn_probability, LatestScore.expected_arr_at_risk, LatestScore.churn_model_version,
                  Account.arr).join(Account, Account.id == LatestScore.account_id)
    ).all()  # fmt: skip
    demo.rollback()
    assert rows and all(version == 1 and 0.0 <= p <= 1.0 for p, _, version, _ in rows)
    assert all(expected == pytest.approx(p * arr, abs=0.01) for p, expected, _, arr in rows)
    detail = client.get(f"/api/v1/accounts/{first}").get_json()
    assert detail["churn_probability"] is not None and detail["churn_probability_note"] is None
    assert detail["churn_model_version"] == 1
    # The run computed the model's own measures and kept them with the latest score.
    stored = demo.scalar(sa.select(LatestScore.churn_values).where(LatestScore.account_id == first))
    demo.rollback()
    assert stored is not None and len(stored) == len(model["measure_names"])
    assert any(v is not None for v in stored)
    # Its reasons beside it: the largest contributions first, each a measure or the stage.
    reasons = detail["churn_reasons"]
    assert reasons and len(reasons) <= 5
    sizes = [abs(r["contribution"]) for r in reasons]
    assert sizes == sorted(sizes, reverse=True)
    measures = set(model["measure_names"]) | {"stage"}
    for reason in reasons:
        assert reason["feature"] in measures
        assert reason["effect"] == ("raises_risk" if reason["contribution"] > 0 else "lowers_risk")
    # The account page shows the top three beside the probability.
    with demo.begin():
        set_password(demo, "admin@example.com", PASSWORD, role=Role.ADMIN, now=dt.datetime.now(dt.UTC))
    page = sign_in(app.test_client(), "admin@example.com").get(f"/accounts/{first}").get_data(as_text=True)
    top = reasons[0]
    effect = "raises" if top["effect"] == "raises_risk" else "lowers"
    assert f"{top['feature'].replace('_', ' ')}" in page and f"{effect} the risk" in page


def test_the_churn_probability_does_not_change_with_the_active_config(
    client: FlaskClient, app: Flask, demo: Session
) -> None:
    """The model computes its own measures in the run: activating a suggested config (other measure
    names) leaves every probability as it was, and the reasons still come."""
    score(demo)
    suggested = queued_result(client, app, client.post("/api/v1/scoring/suggestions", json=LEARN), "suggestions")
    model = queued_result(client, app, client.post("/api/v1/analysis/churn-model/train", json=LEARN),
                          "train-churn-model")  # fmt: skip
    score(demo)

    def probabilities() -> dict[int, float | None]:
        rows = demo.execute(sa.select(LatestScore.account_id, LatestScore.churn_probability)).all()
        demo.rollback()
        return dict(rows)  # type: ignore[arg-type]

    before = probabilities()
    assert len(set(before.values())) > 10 and None not in before.values()
    posted = client.post("/api/v1/scoring/config/versions", json=suggested["new_version"])
    assert posted.status_code == 201, posted.get_json()
    version = posted.get_json()["version"]
    activated = client.post(f"/api/v1/scoring/config/versions/{version}/activate")
    assert activated.status_code in (200, 202), activated.get_json()
    new_names = {m["name"] for m in suggested["new_version"]["config"]["measures"]}
    assert not set(model["measure_names"]) <= new_names  # the model reads measures the config lacks
    score(demo)
    assert probabilities() == before
    first = min(before)
    assert client.get(f"/api/v1/accounts/{first}").get_json()["churn_reasons"]


def test_watchlist_sorts_by_expected_arr_at_risk_with_a_cursor(client: FlaskClient, app: Flask, demo: Session) -> None:
    score(demo)
    queued_result(client, app, client.post("/api/v1/analysis/churn-model/train", json=LEARN), "train-churn-model")
    score(demo)
    seen: list[tuple[float, int]] = []
    cursor = None
    while True:
        query = "sort=expected_arr_at_risk&scope=all&limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/watchlist?{query}").get_json()
        seen.extend((row["expected_arr_at_risk"], row["account_id"]) for row in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) > 7 and len({a for _, a in seen}) == len(seen)
    keys = [(-value, -account) for value, account in seen]
    assert keys == sorted(keys)  # largest first, ties by id (descending, as the other sorts)
    everything = client.get("/api/v1/watchlist?scope=all&limit=200").get_json()["items"]
    assert {a for _, a in seen} == {row["account_id"] for row in everything}


# --- event lift -------------------------------------------------------------------------------------


def test_event_lift_on_a_crafted_history(client: FlaskClient, db_session: Session) -> None:
    outcome_day = dt.date(2026, 5, 1)
    with db_session.begin():
        accounts = [f.make_account(db_session) for _ in range(10)]
        for i, account in enumerate(accounts):
            kind = OutcomeKind.CHURNED if i < 4 else (OutcomeKind.DOWNGRADED if i == 9 else OutcomeKind.RENEWED)
            db_session.add(Outcome(account_id=account.id, source="t", external_id=f"o{i}", kind=kind, day=outcome_day))
            # Scored in the window (events could fire), from 70 to 20 days before the outcome.
            for before in (70, 20):
                db_session.add(
                    HealthScore(account_id=account.id, day=outcome_day - dt.timedelta(days=before), config_version=1,
                                stage=LifecycleStage.PRE_RENEWAL, score=50.0, band=Band.AVERAGE, completeness=1.0,
                                measure_values=[])
                )  # fmt: skip
        # A churn whose account was never scored before it: left out, not counted as "no event".
        unscored = f.make_account(db_session)
        db_session.add(Outcome(account_id=unscored.id, source="t", external_id="o-unscored",
                               kind=OutcomeKind.CHURNED, day=outcome_day))  # fmt: skip

        def fire(account: Account, rule_id: str, days_before: int) -> None:
            db_session.add(
                Event(account_id=account.id, rule_id=rule_id, rule_name=rule_id, kind=RuleKind.RISK,
                      severity=Severity.HIGH, stage=LifecycleStage.PRE_RENEWAL,
                      day=outcome_day - dt.timedelta(days=days_before), config_version=1, score=30.0,
                      trigger_values={})
            )  # fmt: skip

        # any_data_export: 3 of the 4 churned and 1 renewed within 60 days; one more long before.
        for account, days in ((accounts[0], 10), (accounts[0], 20), (accounts[1], 60), (accounts[2], 1),
                              (accounts[4], 30), (accounts[5], 61)):  # fmt: skip
            fire(account, "any_data_export", days)
        fire(accounts[6], "legacy_rule", 5)  # a rule no longer in the config
    response = client.get("/api/v1/analysis/event-lift?window_days=60")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["outcomes"], body["churned"], body["churn_rate"], body["window_days"]) == (10, 4, 0.4, 60)
    assert body["outcomes_unscored"] == 1
    assert body["note"].startswith("1 outcomes (1 churned) are left out: their account was not scored")
    rules = {r["rule_id"]: r for r in body["rules"]}
    export = rules["any_data_export"]
    assert (export["outcomes_with_event"], export["churned_with_event"]) == (4, 3)
    assert export["lift"] == pytest.approx(1.875) and export["in_active_config"] is True
    assert export["ci_low"] < 1.875 < export["ci_high"] and export["reading"] == "unclear"
    legacy = rules["legacy_rule"]
    assert legacy["in_active_config"] is False and legacy["lift"] == 0.0 and legacy["name"] is None
    assert body["rules"][0]["rule_id"] == "any_data_export"  # highest lift first
    assert all(r["reading"] == "no_data" for r in body["rules"] if r["outcomes_with_event"] == 0)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ChurnModel)) == 0
