"""Back-filling 90 days after later account data was loaded reads, for each day, only what was
known to be in force that day (both databases): stages and days-to-renewal from that day's
renewal date, ARR-based figures (expected ARR at risk, an ARR measure) from that day's ARR,
seat-based measures from that day's seats."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Account, HealthScore
from app.pipeline.measures import compute_measures
from app.pipeline.run import run_scoring
from app.services.ingest.records import ingest_records
from app.services.scoring_config.active import get_active_model
from app.services.scoring_config.versions import activate_version, create_version
from scoring.model import default_config_dict
from scoring.stage import LifecycleStage
from tests import factories as f

pytestmark = [pytest.mark.e2e, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)
DAYS = [AS_OF - dt.timedelta(days=k) for k in range(90, 0, -1)]  # the 90 days before AS_OF
RENEWED_ON = dt.date(2026, 4, 10)
LOADED_ON = dt.date(2026, 6, 1)
PROBABILITY = 0.25
ACCOUNT_MEASURES = {"arr_now": "account.arr", "seats_now": "account.seats", "to_renewal": "account.days_to_renewal"}


def _record(external_id: str, effective_on: dt.date, **values: Any) -> dict[str, Any]:
    return {"external_id": external_id, "name": external_id, "effective_on": effective_on.isoformat(), **values}


def _load(session: Session) -> dict[str, int]:
    """Two accounts with dated data, loaded (all of it) before any scoring:

    - ``renews``: annual since 2024-04-10, renewed on 2026-04-10 with more ARR, seats, a new
      owner and plan, and the next renewal date;
    - ``late``: annual since 2024-09-01, first known on 2026-06-01 with a renewal date moved to
      2026-07-15 (so the recorded date must not reach the days before it).
    """
    early = {"contract_start": "2024-04-10", "billing_term": "annual", "arr": 10_000, "seats_purchased": 10,
             "renewal_date": "2026-04-10", "owner": "early@example.com", "plan": "team"}  # fmt: skip
    renewed = {**early, "arr": 99_000, "seats_purchased": 40, "renewal_date": "2027-04-10",
               "owner": "late@example.com", "plan": "business"}  # fmt: skip
    late = {"contract_start": "2024-09-01", "billing_term": "annual", "arr": 77_000, "seats_purchased": 20,
            "renewal_date": "2026-07-15", "owner": "late@example.com"}  # fmt: skip
    with session.begin():
        records = [
            _record("renews", dt.date(2025, 4, 10), **early),
            _record("renews", RENEWED_ON, **renewed),
            _record("late", LOADED_ON, **late),
        ]
        for record in records:  # one record per batch: each is its own push
            assert ingest_records(session, kind="accounts", records=[record], source="crm").landed == 1
        ids = {name: id_ for name, id_ in session.execute(sa.select(Account.external_id, Account.id))}
        for account_id in ids.values():
            account = session.get(Account, account_id)
            assert account is not None
            f.add_usage(session, account, AS_OF - dt.timedelta(days=150), AS_OF, active_users=5)
        f.add_churn_model(session, probability=PROBABILITY)
        # The default config plus measures read from the account fields themselves.
        config = default_config_dict()
        config["measures"] += [
            {"name": name, "label": name, "group": "account", "source": source, "direction": "higher_is_better",
             "thresholds": [0, 100, 100_000]}
            for name, source in ACCOUNT_MEASURES.items()
        ]  # fmt: skip
        for weights in config["weights"].values():
            weights.update(dict.fromkeys(ACCOUNT_MEASURES, 1))
        version = create_version(session, {"config": config, "comment": "account measures"}, actor="test")
        activate_version(session, version["version"], actor="test")
    return ids


def _expected_renews(day: dt.date) -> tuple[float, float, dt.date, str, str]:
    """``renews``'s ARR, seats, renewal date, owner and plan in force on ``day``."""
    if day < RENEWED_ON:
        return 10_000.0, 10.0, dt.date(2026, 4, 10), "early@example.com", "team"
    return 99_000.0, 40.0, dt.date(2027, 4, 10), "late@example.com", "business"


def _expected_late_renewal(day: dt.date) -> dt.date:
    # Before its first row: the next anniversary of the start; from it: the recorded date.
    return dt.date(2026, 9, 1) if day < LOADED_ON else dt.date(2026, 7, 15)


def _stage(day: dt.date, renewal: dt.date) -> str:
    return LifecycleStage.PRE_RENEWAL if 0 <= (renewal - day).days <= 90 else LifecycleStage.ESTABLISHED


def test_a_backfill_after_later_account_data_never_reads_a_later_value(db_session: Session) -> None:
    ids = _load(db_session)
    with db_session.begin():
        run_scoring(db_session, as_of=AS_OF)  # today first, as a new installation would
        for day in DAYS:
            run_scoring(db_session, as_of=day)
        _, model = get_active_model(db_session)
        ratio = model.measure_names.index("active_user_ratio")
        at = {name: model.measure_names.index(name) for name in ACCOUNT_MEASURES}
        rows = db_session.execute(
            sa.select(HealthScore).where(HealthScore.day < AS_OF).order_by(HealthScore.day, HealthScore.account_id)
        ).scalars()
        scores = {(row.account_id, row.day): row for row in rows}
    assert len(scores) == 2 * len(DAYS)
    discriminating = 0
    for day in DAYS:
        arr, seats, renewal, _, _ = _expected_renews(day)
        row = scores[(ids["renews"], day)]
        assert row.stage == _stage(day, renewal), day
        assert row.expected_arr_at_risk == pytest.approx(PROBABILITY * arr), day
        assert row.churn_probability == pytest.approx(PROBABILITY) and row.churn_model_version == 1
        assert row.measure_values[ratio] == pytest.approx(5 / seats), day
        assert row.measure_values[at["arr_now"]] == arr and row.measure_values[at["seats_now"]] == seats, day
        assert row.measure_values[at["to_renewal"]] == (renewal - day).days, day
        late = scores[(ids["late"], day)]
        assert late.stage == _stage(day, _expected_late_renewal(day)), day
        assert late.measure_values[at["to_renewal"]] == (_expected_late_renewal(day) - day).days, day
        # Days where the later renewal date would have changed the stage: the test can tell.
        discriminating += _stage(day, renewal) != _stage(day, dt.date(2027, 4, 10))
        discriminating += _stage(day, _expected_late_renewal(day)) != _stage(day, dt.date(2026, 7, 15))
    assert discriminating >= 50


def test_the_measures_of_a_past_day_carry_that_days_account_fields(db_session: Session) -> None:
    ids = _load(db_session)
    with db_session.begin():
        _, model = get_active_model(db_session)
        for day in (DAYS[0], RENEWED_ON - dt.timedelta(days=1), RENEWED_ON, LOADED_ON - dt.timedelta(days=1)):
            pm = compute_measures(db_session, as_of=day, model=model)
            at = int(np.searchsorted(pm.account_id, ids["renews"]))
            arr, _, renewal, owner, plan = _expected_renews(day)
            assert (pm.arr[at], pm.owner[at], pm.plan[at], pm.term[at]) == (arr, owner, plan, "annual"), day
            assert pm.renewal_date[at] == np.datetime64(renewal, "D"), day
            late = int(np.searchsorted(pm.account_id, ids["late"]))
            assert pm.renewal_date[late] == np.datetime64(_expected_late_renewal(day), "D"), day
            assert pm.segment[late] is None
