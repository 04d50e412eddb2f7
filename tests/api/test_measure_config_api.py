"""The measure language through the API: a new version from a merge patch, the catalog, the bad
inputs the config refuses with field messages, and a portfolio-dependent config explained from its
stored calibration; on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.pipeline.run import run_scoring
from app.services.scoring_config.versions import activate_version
from scoring.model import default_config_dict
from tests import factories as f

pytestmark = [pytest.mark.api, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)
URL = "/api/v1/scoring/config"
POSTS = {
    "name": "posts_28d",
    "label": "Posts (28 days)",
    "group": "product",
    "source": "signal.post",
    "aggregate": "sum",
    "window_days": 28,
    "per": "active_user",
    "missing": "zero",
    "direction": "higher_is_better",
    "thresholds": [0, 1, 5],
}


def patch(client: FlaskClient, body: Any, comment: str = "patch") -> Any:
    return client.patch(f"{URL}?comment={comment}", json=body)


def test_a_merge_patch_changes_one_weight_and_keeps_everything_else(client: FlaskClient) -> None:
    response = patch(client, {"weights": {"established": {"nps": 12}}}, "more nps")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["version"] == 2 and body["active"] is False and body["comment"] == "more nps"
    diff = client.get(f"{URL}/versions/1/diff/2").get_json()
    changed = [w for w in diff["weights"]["established"] if w["weight_from"] != w["weight_to"]]
    assert [(w["measure"], w["weight_to"]) for w in changed] == [("nps", 12.0)]
    assert not any(diff["measures"].values()) and not any(diff["rules"].values())
    assert diff["bands"] == {} and diff["stages"] == {}


def test_a_patch_adds_a_measure_by_name_removes_a_rule_and_changes_another(client: FlaskClient) -> None:
    rules = default_config_dict()["rules"]
    removed, changed = rules[0]["id"], rules[1]["id"]
    body = {
        "measures": {"posts_28d": {k: v for k, v in POSTS.items() if k != "name"}, "csm_sentiment": None},
        "weights": {
            stage: {"posts_28d": 20, "csm_sentiment": None} for stage in ("onboarding", "established", "pre_renewal")
        },
        "rules": {removed: None, changed: {"name": "Renamed"}},
    }
    response = patch(client, body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["warnings"] == [
        "No data yet for product signal 'post': measures on it have no data until it arrives."
    ]
    config = client.get(f"{URL}/versions/2").get_json()["config"]
    names = [m["name"] for m in config["measures"]]
    assert names[-1] == "posts_28d" and "csm_sentiment" not in names
    assert config["measures"][-1]["per"] == "active_user"
    ids = [r["id"] for r in config["rules"]]
    assert removed not in ids and next(r for r in config["rules"] if r["id"] == changed)["name"] == "Renamed"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param(
            {"measures": {"a": {**POSTS, "ratio": ["b", "x"]}, "b": {**POSTS, "ratio": ["a", "x"]}}},
            "ratio",
            id="circular-ratio",
        ),
        pytest.param({"measures": {"nps": {"window_days": 0}}}, "window_days", id="window-0"),
        pytest.param({"measures": {"nps": {"window_days": 731}}}, "window_days", id="window-731"),
        pytest.param({"measures": {"r": {**POSTS, "source": None, "ratio": ["nps", "nps"]}}}, "ratio", id="self-ratio"),
        pytest.param({"measures": {"nps": {"thresholds": [-1e300, 0, 1e300]}}}, "thresholds", id="absurd-threshold"),
        pytest.param({"measures": {"nps": {"source": "signal."}}}, "source", id="empty-signal-name"),
        pytest.param({"measures": {"nps": {"mapping": "percentile"}}}, "mapping", id="percentile-small-portfolio"),
    ],
)
def test_bad_measures_get_a_field_level_422(client: FlaskClient, body: dict[str, Any], errors: str) -> None:
    body = copy.deepcopy(body)  # parameters are shared by the backends' runs
    if "a" in body.get("measures", {}):
        body["measures"]["a"].pop("source")
        body["measures"]["b"].pop("source")
        body["measures"]["x"] = {k: v for k, v in POSTS.items() if k != "name"}
    response = patch(client, body)
    assert response.status_code == 422, response.get_json()
    measures = response.get_json()["errors"]["json"]["config"]["measures"]
    assert any(errors in fields for fields in measures.values()), measures
    assert client.get(f"{URL}/versions").get_json()["total"] == 1  # nothing stored


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"weights": {"established": {"nps": 1e20}}}, id="absurd-weight"),
        pytest.param({"bands": {"good_share": 0.7, "poor_share": 0.4}}, id="shares-over-one"),
        pytest.param({"stages": {"terms": {"weekly": {"pre_renewal_days": 3}}}}, id="unknown-term"),
        pytest.param({"bogus": 1}, id="unknown-key"),
        pytest.param([1, 2], id="not-an-object"),
    ],
)
def test_other_bad_patches_get_a_422(client: FlaskClient, body: Any) -> None:
    response = patch(client, body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]["json"]
    assert client.get(f"{URL}/versions").get_json()["total"] == 1


def test_the_catalog_lists_sources_and_signals_with_their_data(client: FlaskClient, db_session: Session) -> None:
    a, b = f.make_account(db_session), f.make_account(db_session)
    f.add_signal(db_session, a, AS_OF - dt.timedelta(days=3), "post")
    f.add_signal(db_session, b, AS_OF - dt.timedelta(days=1), "post")
    f.add_signal(db_session, b, AS_OF, "invite")
    f.add_usage(db_session, a, AS_OF - dt.timedelta(days=1), AS_OF)
    db_session.commit()
    body = client.get("/api/v1/scoring/measures/catalog").get_json()
    assert body["accounts"] == 2
    post = next(s for s in body["signals"] if s["signal"] == "post")
    assert post | {"aggregates": None, "description": None} == {
        "source": "signal.post", "family": "signal", "aggregates": None, "windowed": True, "daily": True,
        "description": None, "records": 2, "accounts": 2, "events": 2, "signal": "post",
        "first_day": (AS_OF - dt.timedelta(days=3)).isoformat(), "last_day": (AS_OF - dt.timedelta(days=1)).isoformat(),
    }  # fmt: skip
    usage = next(s for s in body["sources"] if s["source"] == "usage.logins")
    assert (usage["records"], usage["accounts"]) == (2, 1)
    assert "percentile" in body["options"]["mapping"]
    assert client.get("/api/v1/scoring/measures/catalog?x=1").status_code == 422


def test_a_percentile_config_is_explained_with_its_day_calibration(client: FlaskClient, db_session: Session) -> None:
    accounts = [f.make_account(db_session) for _ in range(24)]
    for i, account in enumerate(accounts):
        f.add_usage(db_session, account, AS_OF - dt.timedelta(days=40), AS_OF, active_users=1 + i % 6, logins=2 + i)
    db_session.commit()
    logins = {
        "label": "Logins", "group": "adoption", "source": "usage.logins", "aggregate": "sum", "window_days": 7,
        "mapping": "percentile", "direction": "higher_is_better",
    }  # fmt: skip
    response = patch(
        client,
        {"measures": {"logins_7d": logins}, "weights": {"established": {"logins_7d": 50}},
         "bands": {"good": None, "poor": None, "good_share": 0.25, "poor_share": 0.25}},
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    activate_version(db_session, 2, actor="test")
    db_session.commit()
    for day in (AS_OF - dt.timedelta(days=1), AS_OF):
        run_scoring(db_session, as_of=day)
        db_session.commit()
    detail = client.get(f"/api/v1/accounts/{accounts[5].id}").get_json()
    driver = next(d for d in detail["health"]["drivers"] if d["measure"] == "logins_7d")
    assert 0 < driver["score"] < 100  # explained with the day's points, not an empty mapping
    bands = [client.get(f"/api/v1/accounts/{a.id}").get_json()["health"]["band"] for a in accounts]
    assert bands.count("good") == 6 and bands.count("poor") == 6
    change = client.get(
        f"/api/v1/accounts/{accounts[5].id}/score-change?from={(AS_OF - dt.timedelta(days=1)).isoformat()}"
        f"&to={AS_OF.isoformat()}"
    )
    assert change.status_code == 200, change.get_json()
    body = change.get_json()
    assert body["data_effect"] + body["config_effect"] == pytest.approx(body["change"], abs=1e-6)
