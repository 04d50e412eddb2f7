"""The scoring-config admin API: versions, diff, activation (queueing a rescore a worker runs),
rollback, and the preview with its backtest, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.db import Base
from app.models import AuditEntry, HealthScore, LatestScore, Outcome, Role, ScoringConfigVersion
from app.models.enums import OutcomeKind
from app.pipeline.run import run_scoring
from app.services.scoring_config import versions as config_admin
from scoring.bands import Band
from scoring.model import default_config_dict
from scoring.stage import LifecycleStage
from tests import factories as f
from tests.support.auth import bearer
from tests.support.job_requests import work_requests

pytestmark = [pytest.mark.api, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)
URL = "/api/v1/scoring/config"
IssueToken = Callable[..., str]


def config(**changes: Any) -> dict[str, Any]:
    data = default_config_dict()
    data.update(changes)
    return data


def weights_only(*names: str) -> dict[str, dict[str, float]]:
    """Per-stage weights giving the named measures weight 1 and every other measure 0."""
    measures = [m["name"] for m in default_config_dict()["measures"]]
    weights = {m: (1.0 if m in names else 0.0) for m in measures}
    return {stage: dict(weights) for stage in ("onboarding", "established", "pre_renewal")}


def row_counts(session: Session) -> dict[str, int]:
    with session.begin():
        return {
            table.name: session.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture
def scored(db_session: Session) -> dict[str, int]:
    """Three accounts scored on AS_OF with version 1: busy (good), idle (poor), empty (no score)."""
    with db_session.begin():
        busy = f.make_account(db_session, name="Busy Corp")
        f.add_usage(
            db_session, busy, AS_OF - dt.timedelta(days=89), AS_OF, active_users=8, logins=12, key_feature_uses=6
        )
        f.add_license(db_session, busy, AS_OF, purchased=10, assigned=10, active=9)
        idle = f.make_account(db_session, name="Idle Ltd")
        f.add_usage(
            db_session,
            idle,
            AS_OF - dt.timedelta(days=89),
            AS_OF - dt.timedelta(days=40),
            active_users=1,
            logins=1,
            key_feature_uses=0,
        )
        f.add_license(db_session, idle, AS_OF, purchased=10, assigned=4, active=1)
        empty = f.make_account(db_session, name="Empty Inc")
    with db_session.begin():
        run_scoring(db_session, as_of=AS_OF)
    return {"busy": busy.id, "idle": idle.id, "empty": empty.id}


def create(client: FlaskClient, data: dict[str, Any], comment: str = "test") -> dict[str, Any]:
    response = client.post(f"{URL}/versions", json={"config": data, "comment": comment})
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


# --- reading --------------------------------------------------------------------------------------


def test_the_active_config_is_version_one_on_a_fresh_database(client: FlaskClient) -> None:
    body = client.get(URL).get_json()
    assert body["version"] == 1 and body["active"] is True and body["author"] == "system"
    assert body["rescore_pending"] is False
    assert body["config"]["measures"][0]["name"] == "goals_achieved_ratio"
    assert body["created_at"].endswith("+00:00")


def test_versions_list_newest_first_paginated_and_detail(client: FlaskClient) -> None:
    for i in range(3):
        create(client, config(neutral_score=50 + i), comment=f"v{i + 2}")
    page = client.get(f"{URL}/versions?per_page=2").get_json()
    assert page["total"] == 4 and [v["version"] for v in page["items"]] == [4, 3]
    assert "config" not in page["items"][0] and page["items"][0]["comment"] == "v4"
    assert [v["version"] for v in client.get(f"{URL}/versions?per_page=2&page=2").get_json()["items"]] == [2, 1]
    detail = client.get(f"{URL}/versions/3").get_json()
    assert detail["config"]["neutral_score"] == 51 and detail["active"] is False
    assert client.get(f"{URL}/versions/99").status_code == 404
    assert client.get(f"{URL}/versions/1/diff/99").status_code == 404
    assert client.get(f"{URL}/versions?bogus=1").status_code == 422


# --- creating -------------------------------------------------------------------------------------


def test_create_stores_an_inactive_audited_version_by_the_token_user(
    app: Any, issue_token: IssueToken, db_session: Session
) -> None:
    admin = app.test_client()
    token = issue_token(Role.ADMIN, "ada")
    response = admin.post(
        f"{URL}/versions", json={"config": config(bands={"good": 75, "poor": 45}), "comment": "stricter"},
        headers=bearer(token),
    )  # fmt: skip
    assert response.status_code == 201
    body = response.get_json()
    assert body["version"] == 2 and body["active"] is False and body["author"] == "ada"
    assert body["comment"] == "stricter" and body["config"]["bands"] == {"good": 75.0, "poor": 45.0}
    assert admin.get(URL, headers=bearer(token)).get_json()["version"] == 1  # not active
    with db_session.begin():
        entry = db_session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "scoring_config.create")).one()
    assert entry.actor == "ada" and entry.target == "scoring_config:2"
    assert entry.details["comment"] == "stricter"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"config": config(), "comment": "x", "bogus": 1}, ["bogus"]),
        ({"config": config(bogus=1)}, ["config", "bogus"]),
        ({"comment": "no config"}, ["config"]),
        ({"config": config(weights={**weights_only("nps"), "established": {"nps": -1}})}, None),
        ({"config": config(bands={"good": 40, "poor": 70})}, ["config", "bands", "poor"]),
        ({"config": config(neutral_score="50")}, ["config", "neutral_score"]),
        ([], ["_schema"]),
    ],
)
def test_create_refuses_bad_input_with_field_messages(
    client: FlaskClient, db_session: Session, body: Any, path: list[str] | None
) -> None:
    client.get(URL)  # version 1 exists
    response = client.post(f"{URL}/versions", json=body)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]["json"]
    if path is None:  # the negative weight
        assert errors["config"]["weights"]["established"]["nps"] == ["Weights must not be negative."]
    else:
        node = errors
        for key in path:
            node = node[key]
        assert node and isinstance(node, list)
    with db_session.begin():
        assert db_session.scalar(sa.select(sa.func.count()).select_from(ScoringConfigVersion)) == 1


def test_create_refuses_non_json_bodies(client: FlaskClient) -> None:
    assert client.post(f"{URL}/versions", data="x", content_type="text/plain").status_code == 415
    assert client.post(f"{URL}/versions", data="{", content_type="application/json").status_code == 400


def test_a_concurrent_duplicate_version_number_is_409(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    client.get(URL)
    create(client, config())
    # As if another request took version 2 between reading max(version) and inserting.
    monkeypatch.setattr(config_admin, "next_version_number", lambda session: 2)
    response = client.post(f"{URL}/versions", json={"config": config()})
    assert response.status_code == 409
    assert client.get(f"{URL}/versions").get_json()["total"] == 2


# --- roles ----------------------------------------------------------------------------------------


def test_roles_everyone_reads_the_active_config_only_admins_change_it(
    anonymous_client: FlaskClient, issue_token: IssueToken
) -> None:
    for role in (Role.MANAGER, Role.CSM, Role.VIEWER):
        headers = bearer(issue_token(role))
        assert anonymous_client.get(URL, headers=headers).status_code == 200
        assert anonymous_client.get(f"{URL}/versions", headers=headers).status_code == 403
        assert anonymous_client.post(f"{URL}/versions", json={"config": config()}, headers=headers).status_code == 403
        assert anonymous_client.post(f"{URL}/versions/1/activate", headers=headers).status_code == 403
        assert anonymous_client.post(f"{URL}/preview", json={"config": config()}, headers=headers).status_code == 403
    ingest = bearer(issue_token(Role.INGEST))
    assert anonymous_client.get(URL, headers=ingest).status_code == 403
    assert anonymous_client.get(URL).status_code == 401


# --- activating -----------------------------------------------------------------------------------


def rescore_result(client: FlaskClient, app: Flask, response: TestResponse) -> dict[str, Any]:
    """An activation's 202 answer: the rescore it queued, run by a worker; its result."""
    assert response.status_code == 202, response.get_json()
    queued = response.get_json()["rescore"]
    assert queued["status"] == "queued" and response.headers["Location"] == queued["url"]
    assert queued["url"] == f"/api/v1/jobs/requests/{queued['id']}"
    assert client.get(URL).get_json()["rescore_pending"] is True
    [outcome] = work_requests(app)
    assert outcome.request_id == queued["id"] and not outcome.failed, outcome
    request = client.get(queued["url"]).get_json()
    assert request["status"] == "succeeded" and request["kind"] == "rescore", request
    assert client.get(URL).get_json()["rescore_pending"] is False
    result: dict[str, Any] = request["result"]
    return result


def test_activate_rescores_audits_and_rolls_back(
    client: FlaskClient, app: Flask, scored: dict[str, int], db_session: Session
) -> None:
    strict = create(client, config(bands={"good": 99.9, "poor": 99}), comment="everyone poor")
    response = client.post(f"{URL}/versions/{strict['version']}/activate")
    body = response.get_json()
    assert body["version_from"] == 1 and body["version_to"] == 2
    assert body["version"] == 2 and body["active"] is True and body["comment"] == "everyone poor"
    assert body["config"]["bands"] == {"good": 99.9, "poor": 99}
    rescore = rescore_result(client, app, response)
    assert rescore["as_of"] == AS_OF.isoformat() and rescore["config_version"] == 2
    assert rescore["accounts_scored"] == 3 and rescore["by_band"]["poor"] == 2
    assert set(rescore["seconds"]) >= {"measures", "score", "latest"} and "events_by_rule" in rescore
    with db_session.begin():
        latest = db_session.execute(sa.select(LatestScore.account_id, LatestScore.config_version, LatestScore.band))
        assert {(a, v, b) for a, v, b in latest} == {
            (scored["busy"], 2, Band.POOR), (scored["idle"], 2, Band.POOR), (scored["empty"], 2, None),
        }  # fmt: skip
        assert db_session.scalar(sa.select(ScoringConfigVersion.version).where(ScoringConfigVersion.active)) == 2
    assert client.get(URL).get_json()["version"] == 2
    (run,) = client.get("/api/v1/jobs/runs?job=score").get_json()["items"][:1]
    assert run["status"] == "succeeded" and "activation of version 2" in run["params"]["trigger"]
    assert run["counts"]["config_version"] == 2
    assert client.post(f"{URL}/versions/2/activate").status_code == 409
    assert client.post(f"{URL}/versions/99/activate").status_code == 404

    response = client.post(f"{URL}/versions/1/activate")
    assert response.get_json()["version_from"] == 2
    assert rescore_result(client, app, response)["config_version"] == 1
    with db_session.begin():
        assert set(db_session.scalars(sa.select(LatestScore.config_version))) == {1}
        busy = db_session.get_one(LatestScore, scored["busy"])
        assert busy.band is Band.GOOD
        entries = db_session.execute(
            sa.select(AuditEntry.actor, AuditEntry.target, AuditEntry.details)
            .where(AuditEntry.action == "scoring_config.activate")
            .order_by(AuditEntry.id)
        ).all()
    assert [(t, d) for _, t, d in entries] == [
        ("scoring_config:2", {"from": 1, "to": 2}),
        ("scoring_config:1", {"from": 2, "to": 1}),
    ]
    assert {a for a, _, _ in entries} == {"test-admin"}
    # The refused activations (409, 404) queued nothing: two rescores, both done.
    requests = client.get("/api/v1/jobs/requests?kind=rescore").get_json()
    assert requests["total"] == 2 and {r["status"] for r in requests["items"]} == {"succeeded"}


def test_activate_without_any_score_rescores_as_of_today(client: FlaskClient, app: Flask) -> None:
    client.get(URL)
    create(client, config())
    body = rescore_result(client, app, client.post(f"{URL}/versions/2/activate"))
    assert body["as_of"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert body["accounts_scored"] == 0


# --- the diff -------------------------------------------------------------------------------------


def test_diff_reports_every_kind_of_change(client: FlaskClient) -> None:
    client.get(URL)
    data = default_config_dict()
    data["bands"] = {"good": 75, "poor": 40}
    data["neutral_score"] = 55
    data["stages"]["pre_renewal_days"] = 120
    measures = {m["name"]: m for m in data["measures"]}
    measures["nps"]["thresholds"] = [-40, 0, 40]
    measures["open_ticket_load"]["direction"] = "higher_is_better"
    data["measures"] = [m for m in data["measures"] if m["name"] != "csm_sentiment"]
    for weights in data["weights"].values():
        weights.pop("csm_sentiment")
    data["weights"]["established"]["nps"] = 20
    data["rules"] = [r for r in data["rules"] if r["id"] != "any_data_export"]
    changed_rule = next(r for r in data["rules"] if r["id"] == "pre_open_tickets")
    changed_rule["severity"] = "low" if changed_rule["severity"] != "low" else "high"
    create(client, data)

    diff = client.get(f"{URL}/versions/1/diff/2").get_json()
    assert diff["version_from"] == 1 and diff["version_to"] == 2 and diff["identical"] is False
    assert diff["bands"] == {"good": {"from": 70.0, "to": 75.0}}
    assert diff["neutral_score"] == {"from": 50.0, "to": 55.0}
    assert diff["stages"] == {"pre_renewal_days": {"from": 90, "to": 120}}
    assert diff["measures"]["added"] == [] and diff["measures"]["removed"] == ["csm_sentiment"]
    changes = {c["name"]: c["changes"] for c in diff["measures"]["changed"]}
    assert changes["nps"] == {"thresholds": {"from": [-50.0, 0.0, 50.0], "to": [-40.0, 0.0, 40.0]}}
    assert changes["open_ticket_load"]["direction"] == {"from": "lower_is_better", "to": "higher_is_better"}
    established = {w["measure"]: w for w in diff["weights"]["established"]}
    assert established["nps"]["weight_from"] == 5 and established["nps"]["weight_to"] == 20
    assert established["nps"]["share_from"] == pytest.approx(5 / 100, abs=1e-6)
    assert established["nps"]["share_to"] == pytest.approx(20 / 110, abs=1e-6)
    assert established["csm_sentiment"]["weight_to"] is None and established["csm_sentiment"]["share_to"] == 0
    # Every other measure's share shrinks: its weight is the same, the stage's total grew.
    assert established["goals_achieved_ratio"]["share_change"] == pytest.approx(15 / 110 - 15 / 100, abs=1e-6)
    assert diff["weights"]["established"][0]["measure"] == "nps"  # the largest share change first
    assert diff["rules"]["removed"] == ["any_data_export"] and diff["rules"]["added"] == []
    assert [c["id"] for c in diff["rules"]["changed"]] == ["pre_open_tickets"]
    assert set(diff["rules"]["changed"][0]["changes"]) == {"severity"}

    same = client.get(f"{URL}/versions/2/diff/2").get_json()
    assert same["identical"] is True and same["weights"] == {}


# --- the preview ----------------------------------------------------------------------------------


def test_preview_changes_nothing_and_reports_band_moves(
    client: FlaskClient, scored: dict[str, int], db_session: Session
) -> None:
    before = row_counts(db_session)
    response = client.post(f"{URL}/preview", json={"config": config(bands={"good": 99.9, "poor": 99})})
    assert response.status_code == 200, response.get_json()
    assert row_counts(db_session) == before
    body = response.get_json()
    assert body["active_version"] == 1 and body["notes"] == []
    changes = body["band_changes"]
    assert changes["accounts"] == 3 and changes["changed"] == 1  # busy: good -> poor; idle stays poor
    established = next(s for s in changes["by_stage"] if s["stage"] == "established")
    assert established["moves"] == [{"band_from": "good", "band_to": "poor", "accounts": 1}]
    assert established["accounts"] == 3 and established["changed"] == 1
    [busy] = changes["accounts_changed"]
    assert busy["account_id"] == scored["busy"] and busy["name"] == "Busy Corp"
    assert busy["band_active"] == "good" and busy["band_stored"] == "good" and busy["band_proposed"] == "poor"
    assert busy["score_active"] == busy["score_proposed"]  # same weights: only the cut-offs moved
    with db_session.begin():
        stored = db_session.get_one(LatestScore, scored["busy"]).score
    assert busy["score_active"] == pytest.approx(stored, abs=0.01)  # rescored from the stored values
    assert changes["list_capped"] is False
    capped = client.post(f"{URL}/preview", json={"config": config(bands={"good": 99.9, "poor": 99}), "list_limit": 0})
    assert capped.get_json()["band_changes"]["list_capped"] is True
    assert capped.get_json()["band_changes"]["accounts_changed"] == []


def test_preview_notes_stage_rule_changes_and_refuses_bad_input(client: FlaskClient, scored: dict[str, int]) -> None:
    data = config()
    data["stages"] = {**data["stages"], "pre_renewal_days": 30}
    body = client.post(f"{URL}/preview", json={"config": data}).get_json()
    assert any("stage rules differ" in note for note in body["notes"])
    assert body["band_changes"]["changed"] == 0
    bad = client.post(f"{URL}/preview", json={"config": config(), "horizon_days": 0, "extra": 1})
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]["json"]) == {"horizon_days", "extra"}


def _history(session: Session, account_id: int, day: dt.date, version: int, values: list[float | None]) -> None:
    session.add(
        HealthScore(
            account_id=account_id,
            day=day,
            config_version=version,
            stage=LifecycleStage.ESTABLISHED,
            score=None,
            band=None,
            completeness=1.0,
            measure_values=values,
        )
    )


@pytest.fixture
def outcomes(client: FlaskClient, db_session: Session) -> dict[str, Any]:
    """Outcomes with stored scores 90 days before, under a two-measure version 2 (nps, csat_avg):
    churned accounts have low NPS and high CSAT, renewed ones the reverse."""
    client.get(URL)  # version 1 (the default) is active
    two = copy.deepcopy(default_config_dict())
    two["measures"] = [m for m in two["measures"] if m["name"] in ("nps", "csat_avg")]
    two["weights"] = {stage: {"nps": 1, "csat_avg": 1} for stage in two["weights"]}
    two["rules"] = []
    create(client, two)
    outcome_day = dt.date(2026, 6, 1)
    horizon_day = outcome_day - dt.timedelta(days=90)
    accounts: dict[str, list[int]] = {"churned": [], "renewed": []}
    with db_session.begin():
        for i, (kind, nps, csat) in enumerate(
            [
                (OutcomeKind.CHURNED, -80.0, 4.8),
                (OutcomeKind.CHURNED, -60.0, 4.9),
                (OutcomeKind.CHURNED, -40.0, 4.6),
                (OutcomeKind.RENEWED, 60.0, 2.0),
                (OutcomeKind.RENEWED, 70.0, 1.8),
                (OutcomeKind.EXPANDED, 80.0, 1.5),
            ]
        ):
            account = f.make_account(db_session, name=f"Outcome {i}")
            _history(db_session, account.id, horizon_day - dt.timedelta(days=3), 2, [nps, csat])
            # A newer row, after the horizon, says the opposite: the backtest must not read it.
            _history(db_session, account.id, horizon_day + dt.timedelta(days=1), 2, [-nps, 6.0 - csat])
            db_session.add(Outcome(account_id=account.id, external_id=f"o{i}", kind=kind, day=outcome_day))
            accounts["churned" if kind is OutcomeKind.CHURNED else "renewed"].append(account.id)
        late = f.make_account(db_session, name="Scored too early")
        _history(db_session, late.id, horizon_day - dt.timedelta(days=20), 2, [-90.0, 5.0])
        db_session.add(Outcome(account_id=late.id, external_id="late", kind=OutcomeKind.CHURNED, day=outcome_day))
        blank = f.make_account(db_session, name="No data")
        _history(db_session, blank.id, horizon_day, 2, [None, None])
        db_session.add(Outcome(account_id=blank.id, external_id="blank", kind=OutcomeKind.RENEWED, day=outcome_day))
        down = f.make_account(db_session, name="Downgraded")
        _history(db_session, down.id, horizon_day, 2, [0.0, 3.0])
        db_session.add(Outcome(account_id=down.id, external_id="down", kind=OutcomeKind.DOWNGRADED, day=outcome_day))
    return accounts


def test_backtest_auc_is_one_for_the_separating_measure_and_zero_for_the_misleading_one(
    client: FlaskClient, outcomes: dict[str, Any], db_session: Session
) -> None:
    before = row_counts(db_session)
    nps = client.post(f"{URL}/preview", json={"config": config(weights=weights_only("nps"))})
    assert nps.status_code == 200, nps.get_json()
    backtest = nps.get_json()["backtest"]
    assert backtest["horizon_days"] == 90 and backtest["window_days"] == 14
    assert backtest["outcomes"] == {
        "considered": 9,
        "used": 6,
        "churned": 3,
        "renewed": 3,
        "skipped": {"downgraded": 1, "no_score_at_horizon": 1, "no_measure_data": 1},
    }
    proposed = backtest["proposed"]
    assert proposed["auc"] == 1.0 and proposed["auc_note"] is None and proposed["config_version"] is None
    assert proposed["churned_in_poor_share"] == 1.0 and proposed["renewed_in_poor_share"] == 0.0
    assert proposed["mean_score_churned"] < proposed["mean_score_renewed"]

    csat = client.post(f"{URL}/preview", json={"config": config(weights=weights_only("csat_avg"))}).get_json()
    assert csat["backtest"]["proposed"]["auc"] == 0.0
    # The active side is the same in both previews, and equals the active config previewed as proposed.
    active = csat["backtest"]["active"]
    assert active == backtest["active"] and active["config_version"] == 1
    itself = client.post(f"{URL}/preview", json={"config": config()}).get_json()["backtest"]["proposed"]
    assert {k: v for k, v in itself.items() if k != "config_version"} == {
        k: v for k, v in active.items() if k != "config_version"
    }
    assert row_counts(db_session) == before

    # A shorter horizon lands on the newer rows, which say the opposite.
    flipped = client.post(f"{URL}/preview", json={"config": config(weights=weights_only("nps")), "horizon_days": 89})
    assert flipped.get_json()["backtest"]["proposed"]["auc"] == 0.0


def test_backtest_auc_is_null_with_a_reason_when_only_one_class_is_present(
    client: FlaskClient, outcomes: dict[str, Any], db_session: Session
) -> None:
    with db_session.begin():
        db_session.execute(sa.delete(Outcome).where(Outcome.kind == OutcomeKind.CHURNED))
    body = client.post(f"{URL}/preview", json={"config": config()}).get_json()["backtest"]
    assert body["outcomes"]["churned"] == 0 and body["outcomes"]["renewed"] == 3
    for side in ("active", "proposed"):
        assert body[side]["auc"] is None and "Only renewals" in body[side]["auc_note"]
        assert body[side]["churned_in_poor_share"] is None


def test_preview_on_an_empty_database_writes_nothing(client: FlaskClient, db_session: Session) -> None:
    before = row_counts(db_session)
    body = client.post(f"{URL}/preview", json={"config": config()}).get_json()
    assert body["active_version"] is None and body["band_changes"]["accounts"] == 0
    assert body["backtest"]["outcomes"]["considered"] == 0
    assert body["backtest"]["proposed"]["auc"] is None
    assert any("No account has a score" in note for note in body["notes"])
    after = row_counts(db_session)
    # Only the token the client fixture issued was written, before the request.
    assert after == before
