"""Play effectiveness on crafted histories whose answer is known exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Account, HealthScore, Outcome, OutcomeKind, PlayDefinition, PlayRun
from playbooks.plays import AlertMode
from scoring.bands import Band
from scoring.stage import LifecycleStage
from tests import factories as f

pytestmark = [pytest.mark.api, pytest.mark.db]

D = dt.date(2026, 1, 15)
EST, ONB, PRE = LifecycleStage.ESTABLISHED, LifecycleStage.ONBOARDING, LifecycleStage.PRE_RENEWAL
_outcome_ids = itertools.count(1)


def _play(session: Session, play_id: str, name: str) -> None:
    session.add(PlayDefinition(id=play_id, definition={"id": play_id, "name": name}))
    session.flush()


def _scores(
    session: Session, account: Account, base: float | None, *, stage: LifecycleStage, band: Band | None, day: dt.date = D,
    later: dict[int, float] | None = None,
) -> None:  # fmt: skip
    """A score on ``day`` and, for each ``{days: change}``, one ``days`` later (same stage and band)."""
    points = {0: base} if base is not None else {}
    points.update({days: (base or 0) + change for days, change in (later or {}).items()})
    for days, score in points.items():
        session.add(
            HealthScore(
                account_id=account.id,
                day=day + dt.timedelta(days=days),
                config_version=1,
                stage=stage,
                score=score,
                band=band,
                completeness=1.0,
                measure_values=[],
            )
        )
    session.flush()


def _run(
    session: Session, account: Account, play_id: str, *, day: dt.date = D, stage: LifecycleStage = EST,
    band: Band | None = Band.AVERAGE, score: float | None = 50.0,
) -> None:  # fmt: skip
    session.add(
        PlayRun(
            play_id=play_id,
            play_version=1,
            account_id=account.id,
            started_on=day,
            stage=stage,
            band=band,
            score=score,
            alert=AlertMode.NONE,
        )
    )
    session.flush()


def _outcome(session: Session, account: Account, kind: OutcomeKind, day: dt.date) -> None:
    session.add(Outcome(account_id=account.id, external_id=f"o-{next(_outcome_ids)}", kind=kind, day=day))
    session.flush()


def _get(client: FlaskClient, path: str) -> dict:  # type: ignore[type-arg]
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_treated_rise_10_controls_rise_2_and_renewal_rates(client: FlaskClient, db_session: Session) -> None:
    with db_session.begin():
        _play(db_session, "training", "Training on key features")
        _play(db_session, "other", "Another play")
        treated = [f.make_account(db_session) for _ in range(3)]
        controls = [f.make_account(db_session) for _ in range(3)]
        for i, account in enumerate(treated):
            _scores(db_session, account, 50.0 + i, stage=EST, band=Band.AVERAGE, later={30: 10.0, 90: 15.0})
            _run(db_session, account, "training")
        for i, account in enumerate(controls):
            _scores(db_session, account, 52.0 + i, stage=EST, band=Band.AVERAGE, later={30: 2.0, 90: 5.0})
        _run(db_session, controls[0], "other")  # another play does not disqualify a control
        # First outcome after the run day: 2 of 3 treated renewed (or expanded), 1 of 3 controls.
        _outcome(db_session, treated[0], OutcomeKind.RENEWED, D + dt.timedelta(days=100))
        _outcome(db_session, treated[1], OutcomeKind.EXPANDED, D + dt.timedelta(days=40))
        _outcome(db_session, treated[2], OutcomeKind.RENEWED, D - dt.timedelta(days=10))  # before: ignored
        _outcome(db_session, treated[2], OutcomeKind.CHURNED, D + dt.timedelta(days=120))
        _outcome(db_session, treated[2], OutcomeKind.RENEWED, D + dt.timedelta(days=200))  # not the first
        _outcome(db_session, controls[0], OutcomeKind.CHURNED, D + dt.timedelta(days=50))
        _outcome(db_session, controls[1], OutcomeKind.DOWNGRADED, D + dt.timedelta(days=60))
        _outcome(db_session, controls[2], OutcomeKind.RENEWED, D + dt.timedelta(days=70))

    body = _get(client, "/api/v1/plays/training/effectiveness")

    assert body["play"] == {"id": "training", "name": "Training on key features"}
    assert body["runs"] == 3 and body["control_window_days"] == 90
    h30, h90 = body["horizons"]
    assert h30["days"] == 30 and h90["days"] == 90
    assert h30["treated"] == {"n": 3, "mean_change": pytest.approx(10.0), "not_measurable": 0, "unmatched": 0}
    assert h30["control"] == {"n": 3, "mean_change": pytest.approx(2.0), "cells": 1}
    assert h30["difference"] == pytest.approx(8.0) and h30["reason"] is None
    assert h90["treated"]["mean_change"] == pytest.approx(15.0)
    assert h90["control"]["mean_change"] == pytest.approx(5.0)
    assert h90["difference"] == pytest.approx(10.0)
    renewal = body["renewal"]
    assert renewal["treated"] == {"n_outcomes": 3, "renewed": 2, "rate": pytest.approx(2 / 3), "no_outcome": 0}
    assert renewal["control"] == {
        "n_outcomes": 3,
        "renewed": 1,
        "rate": pytest.approx(1 / 3),
        "crude_rate": pytest.approx(1 / 3),
    }
    assert renewal["difference"] == pytest.approx(1 / 3) and renewal["reason"] is None


def test_controls_are_standardised_per_cell_and_exclusions_hold(client: FlaskClient, db_session: Session) -> None:
    with db_session.begin():
        _play(db_session, "escalate", "Escalate")
        # Cell (D, established, average): 3 treated +10 (one also +20 at 90 days), 3 controls +2 (one +4 at 90).
        t = [f.make_account(db_session) for _ in range(3)]
        for i, account in enumerate(t):
            _scores(
                db_session,
                account,
                50.0,
                stage=EST,
                band=Band.AVERAGE,
                later={30: 10.0, **({90: 20.0} if i == 0 else {})},
            )
            _run(db_session, account, "escalate")
        c = [f.make_account(db_session) for _ in range(3)]
        for i, account in enumerate(c):
            _scores(
                db_session,
                account,
                55.0,
                stage=EST,
                band=Band.AVERAGE,
                later={30: 2.0, **({90: 4.0} if i == 0 else {})},
            )
        # Cell (D, established, poor): 1 treated without a score on D (the run's stage, band and
        # score stand in) that rises to 40; 2 controls +6.
        fallback = f.make_account(db_session)
        _scores(db_session, fallback, None, stage=EST, band=Band.POOR, later={30: 40.0})
        _run(db_session, fallback, "escalate", band=Band.POOR, score=30.0)
        for _ in range(2):
            _scores(db_session, f.make_account(db_session), 20.0, stage=EST, band=Band.POOR, later={30: 6.0})
        # Cell (D, pre_renewal, average): a treated run with no control at all -> unmatched.
        lonely = f.make_account(db_session)
        _scores(db_session, lonely, 50.0, stage=PRE, band=Band.AVERAGE, later={30: 10.0})
        _run(db_session, lonely, "escalate", stage=PRE)
        # Not controls: got the play 60 days earlier (outside since, inside the 90-day window); other
        # band; other stage; same cell a day later.
        contaminated = f.make_account(db_session)
        _scores(db_session, contaminated, 50.0, stage=EST, band=Band.AVERAGE, later={30: 100.0})
        _run(db_session, contaminated, "escalate", day=D - dt.timedelta(days=60))
        _scores(db_session, f.make_account(db_session), 80.0, stage=EST, band=Band.GOOD, later={30: 50.0})
        _scores(db_session, f.make_account(db_session), 50.0, stage=ONB, band=Band.AVERAGE, later={30: 50.0})
        _scores(
            db_session,
            f.make_account(db_session),
            50.0,
            stage=EST,
            band=Band.AVERAGE,
            day=D + dt.timedelta(days=1),
            later={30: 50.0},
        )
        # Got the play 100 days later: outside the window, so still a control (+2 like the others).
        late = f.make_account(db_session)
        _scores(db_session, late, 55.0, stage=EST, band=Band.AVERAGE, later={30: 2.0})
        _run(db_session, late, "escalate", day=D + dt.timedelta(days=100))

    body = _get(client, f"/api/v1/plays/escalate/effectiveness?since={D.isoformat()}&until={D.isoformat()}")

    assert body["runs"] == 5 and body["since"] == D.isoformat() and body["until"] == D.isoformat()
    h30, h90 = body["horizons"]
    assert h30["treated"] == {"n": 5, "mean_change": pytest.approx(10.0), "not_measurable": 0, "unmatched": 1}
    # Control means weighted by treated runs per cell: (3 x 2 + 1 x 6) / 4 = 3 (crude would be 3.33).
    assert h30["control"] == {"n": 6, "mean_change": pytest.approx(3.0), "cells": 2}
    assert h30["difference"] == pytest.approx(7.0)
    assert h90["treated"] == {"n": 1, "mean_change": pytest.approx(20.0), "not_measurable": 4, "unmatched": 0}
    assert h90["control"] == {"n": 1, "mean_change": pytest.approx(4.0), "cells": 1}
    assert h90["difference"] == pytest.approx(16.0)
    notes = " ".join(body["notes"])
    assert "4 run(s) are not yet measurable at 90 days" in notes
    assert "1 run(s) had no health score on their start day" in notes
    assert "1 measured run(s) at 30 days have no control" in notes
    # No outcomes anywhere: null rates with a reason, counts still reported.
    renewal = body["renewal"]
    assert renewal["treated"] == {"n_outcomes": 0, "renewed": 0, "rate": None, "no_outcome": 5}
    assert renewal["control"]["rate"] is None and renewal["control"]["n_outcomes"] == 0
    assert renewal["difference"] is None and "outcome" in renewal["reason"]


def test_play_without_runs_is_zeros_and_notes(client: FlaskClient, db_session: Session) -> None:
    with db_session.begin():
        _play(db_session, "quiet", "Never triggered")
        _scores(db_session, f.make_account(db_session), 50.0, stage=EST, band=Band.AVERAGE, later={30: 5.0})

    body = _get(client, "/api/v1/plays/quiet/effectiveness")

    assert body["runs"] == 0
    for horizon in body["horizons"]:
        assert horizon["treated"] == {"n": 0, "mean_change": None, "not_measurable": 0, "unmatched": 0}
        assert horizon["control"] == {"n": 0, "mean_change": None, "cells": 0}
        assert horizon["difference"] is None and horizon["reason"]
    assert body["renewal"]["treated"]["rate"] is None and body["renewal"]["reason"]
    assert any("no runs" in note for note in body["notes"])


def test_unknown_play_is_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/plays/nope/effectiveness")
    assert response.status_code == 404
    body = response.get_json()
    assert body["code"] == 404 and "nope" in body["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("since=yesterday", "since"), ("until=2026-13-01", "until"), ("since=2026-02-01&until=2026-01-01", "until"),
     ("horizon=60", "horizon")],
)  # fmt: skip
def test_bad_query_is_a_422_with_field_messages(
    client: FlaskClient, db_session: Session, query: str, field: str
) -> None:
    with db_session.begin():
        _play(db_session, "training", "Training")
    response = client.get(f"/api/v1/plays/training/effectiveness?{query}")
    assert response.status_code == 422
    body = response.get_json()
    assert list(body["errors"]["query"]) == [field]
