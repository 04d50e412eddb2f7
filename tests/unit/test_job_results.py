"""The stored job results are exactly what the API schemas dumped when the endpoints were synchronous."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from app.schemas.analysis import ChurnModelSchema, SuggestionsSchema
from app.schemas.config_admin import RunSummarySchema
from app.services.jobs.results import churn_model_result, run_summary_result, suggestions_result

pytestmark = pytest.mark.unit

AS_OF = dt.date(2026, 3, 1)


def same(result: dict, dumped: dict) -> bool:
    """Equal, in the same key order, and stored as the same JSON text."""
    return json.dumps(result) == json.dumps(dumped)


def test_run_summary_result_is_the_schemas_dump():
    counts = {
        "accounts_scored": np.int64(12), "accounts_without_score": 1, "by_band": {"good": 7, "poor": np.int64(5)},
        "by_stage": {"onboarding": 12}, "config_version": 3, "events": 4, "events_by_rule": {"r": 4},
        "play_runs": 2, "play_runs_by_play": {"p": 2}, "tasks": 5, "accounts_backfilled": 0,
        "alerts_queued": 9, "seconds": {"score": np.float64(0.25), "total": 1},
    }  # fmt: skip
    dumped = RunSummarySchema().dump({"as_of": AS_OF, **counts})
    assert same(run_summary_result(AS_OF, counts), dumped)


def test_suggestions_result_is_the_schemas_dump():
    interval = {"value": np.float64(0.71), "low": 0.6, "high": None, "extra": 1}
    suggestions = {
        "as_of": AS_OF, "horizon_days": 90, "periodic_months": 0, "active_version": 2,
        "data": {"observations": 40, "observation_dates": ["2026-01-01"], "cached": False},
        "measures": [{"measure": {"name": "logins_28d", "thresholds": [1.0, 2.0]}, "reason": "ranks",
                      "weights": {"onboarding": np.float64(12.5)}}],
        "bands": {"poor": 40.0, "good": 70.0},
        "messages": ["m"],
        "validation": {
            "folds": [{"test_from": "2026-01-01", "train": 30}],
            "comparison": {"observations": 40, "churned": np.int64(8), "accounts": 20, "draws": 100,
                           "auc": {"proposal": interval, "active": interval}, "reference": "active",
                           "difference_vs_reference": {"proposal": interval}},
            "top_decile_lift": {"proposal": np.float64(2.5), "active": None},
            "verdict": {"improvement": False, "worse": False, "message": "not better"},
            "messages": [],
        },
        "signals": [{"measure": "logins_28d", "label": "l", "definition": {"source": "usage.logins"},
                     "direction": "higher_is_better", "coverage": 0.9, "train_auc": np.float64(0.7),
                     "test_auc": interval, "top_decile_lift": None,
                     "deciles": [{"decile": 1, "observations": np.int64(4), "churned": 2, "churn_rate": 0.5,
                                  "low": 0.1, "high": 0.9}],
                     "group": np.int64(3), "chosen": True}],
        "new_version": {"config": {"weights": {}}, "comment": "learned"},
        "suggested_author": "suggestions",
        "seconds": {"data": 0.5, "fit": np.float64(0.25)},
    }  # fmt: skip
    assert same(suggestions_result(suggestions), SuggestionsSchema().dump(suggestions))


@pytest.mark.parametrize(
    "trained_at",
    [dt.datetime(2026, 3, 1, 12, 30), dt.datetime(2026, 3, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))],
)
def test_churn_model_result_is_the_schemas_dump(trained_at):
    trained = {
        "version": 4, "trained_at": trained_at, "trained_by": "ann", "horizon_days": 90, "config_version": 2,
        "format": 3, "kind": "logistic_regression",
        "measure_names": ["nps"], "feature_names": ["nps", "stage"], "params": {"c": 1.0},
        "counts": {"observations": 40}, "validation": {"auc": 0.7}, "seconds": {"fit": np.float64(0.5)},
    }  # fmt: skip
    assert same(churn_model_result(trained), ChurnModelSchema().dump(trained))
