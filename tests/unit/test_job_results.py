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
    ranking = {"observations": 40, "churned": 8, "auc": np.float64(0.71), "top_decile_lift": None,
               "churned_in_poor_share": 0.5, "note": None, "extra": 1}  # fmt: skip
    suggestions = {
        "as_of": AS_OF, "horizon_days": 90, "periodic_months": 0, "active_version": 2,
        "data": {"observations": 40, "observation_dates": ["2026-01-01"]},
        "stages": [{"stage": "onboarding", "source": "pooled", "churned": 8, "not_churned": 32,
                    "coefficients": {"nps": np.float64(-0.3)}, "message": None}],
        "flags": [{"stage": "established", "measure": "nps", "configured_direction": "higher_is_better",
                   "coefficient": np.float64(0.1), "message": "contradicts"}],
        "messages": ["m"],
        "validation": {"split": {"train": 30, "cutoff": "2025-12-01"}, "proposed": ranking, "active": None,
                       "messages": []},
        "churned_in_poor_share": {"proposed": 0.4, "active": None},
        "weights": {"proposed": {"onboarding": {"nps": 1}}, "active": {"onboarding": {"nps": np.float64(2.5)}}},
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
        "format": 2, "kind": "logistic_regression",
        "measure_names": ["nps"], "feature_names": ["nps", "stage"], "params": {"c": 1.0},
        "counts": {"observations": 40}, "validation": {"auc": 0.7}, "seconds": {"fit": np.float64(0.5)},
    }  # fmt: skip
    assert same(churn_model_result(trained), ChurnModelSchema().dump(trained))
