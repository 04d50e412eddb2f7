"""The measure language against the data: the first configs' measures compute what they did,
windows hold at their edges, and each source, form and normalisation on a small known portfolio."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy.orm import Session

from app.demo.seed import seed_demo
from app.pipeline.measures import compute_measures
from scoring.health import compute_health
from scoring.measures import LEGACY_DEFINITIONS
from scoring.model import default_config_dict, model_from_dict
from scoring.stage import assign_stages
from tests.support import legacy_measures

AS_OF = dt.date(2026, 6, 30)


def _legacy_config() -> dict:
    """The default config as the first versions stored it: each measure named, nothing more."""
    data = default_config_dict()
    data["measures"] = [
        {k: m[k] for k in ("name", "label", "group", "direction", "thresholds")} for m in data["measures"]
    ]
    return data


def test_stored_configs_migrate_forward_with_identical_scores(db_session: Session) -> None:
    """The demo portfolio scored by the measure step before the language (a frozen copy) and by the
    language's reading of a stored first-version config: every raw value and every score equal."""
    seed_demo(db_session, accounts=300, days=400, seed=11, as_of=AS_OF)
    model = model_from_dict(_legacy_config())
    assert {m.name for m in model.measures} == set(LEGACY_DEFINITIONS)
    assert model_from_dict(default_config_dict()).measures == model.measures
    windows = frozenset({("active_users", 14), ("logins", 30), ("active_users", 30)})
    compared = 0
    for day in (AS_OF, AS_OF - dt.timedelta(days=45), AS_OF - dt.timedelta(days=200)):
        old = legacy_measures.compute_measures(
            db_session, as_of=day, first_value_signal=model.stage_rules.first_value_signal, usage_windows=windows
        )
        new = compute_measures(db_session, as_of=day, model=model, usage_windows=windows)
        np.testing.assert_array_equal(new.account_id, old.account_id)
        for name in model.measure_names:
            np.testing.assert_allclose(new.raw[name], old.raw[name], rtol=1e-12, atol=1e-12, err_msg=name)
            assert np.count_nonzero(~np.isnan(new.raw[name])) == np.count_nonzero(~np.isnan(old.raw[name]))
        np.testing.assert_array_equal(new.login_days_30d, old.login_days_30d)
        assert new.usage_windows.keys() == old.usage_windows.keys()
        for key, (current, previous) in new.usage_windows.items():
            np.testing.assert_array_equal(current, old.usage_windows[key][0])
            np.testing.assert_array_equal(previous, old.usage_windows[key][1])
        np.testing.assert_array_equal(new.ever_used, old.ever_used)
        stage = assign_stages(day, new.contract_start, new.renewal_date, new.first_value_on, model.stage_rules)
        scored_new = compute_health(new.matrix(model.measure_names), stage, model)
        scored_old = compute_health(old.matrix(model.measure_names), stage, model)
        np.testing.assert_array_equal(scored_new.score, scored_old.score)
        np.testing.assert_array_equal(scored_new.band, scored_old.band)
        compared += int(np.count_nonzero(~np.isnan(scored_new.score)))
    assert compared > 600  # the comparison saw real scores, not an empty portfolio
