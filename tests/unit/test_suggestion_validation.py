"""The walk-forward validation of a suggestion, on arrays: the whole procedure refitted per fold,
every method judged on the same later observations of other accounts, and a verdict that never
calls a proposal better than its interval allows."""

from __future__ import annotations

import numpy as np
import pytest

from app.services.suggestions import _verdict, _walk_forward
from scoring.discovery import candidate_measures
from scoring.learning import TrainingSet
from scoring.model import default_config_dict, model_from_dict

pytestmark = pytest.mark.unit

ACTIVE = model_from_dict(default_config_dict())


def _monthly(accounts: int = 1500, months: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = accounts * months
    account = np.repeat(np.arange(1, accounts + 1), months)
    observed = np.datetime64("2025-01-31") + (np.tile(np.arange(months), accounts) * 30).astype("timedelta64[D]")
    level = np.repeat(rng.normal(size=accounts), months) + rng.normal(scale=0.5, size=k)
    values = np.column_stack([np.exp(level + rng.normal(scale=0.4, size=k)), rng.normal(size=k),
                              np.exp(-level + rng.normal(scale=0.4, size=k))])  # fmt: skip
    label = rng.random(k) < 1 / (1 + np.exp(2.2 + 1.3 * level))
    stage = rng.choice(3, size=k, p=[0.1, 0.7, 0.2]).astype(np.int8)
    m = len(ACTIVE.measures)
    active_scores = rng.uniform(0, 100, size=(k, m))  # an active config that knows nothing
    data = TrainingSet(observed, account, stage, active_scores, label, ACTIVE.measure_names)
    return data, values, active_scores


def test_a_proposal_that_ranks_churn_better_is_called_an_improvement_with_intervals():
    data, values, active_scores = _monthly()
    candidates = candidate_measures(["usage.logins"], limit=3)
    validation, per_candidate, y, accounts = _walk_forward(
        data, values, active_scores, ACTIVE, candidates, horizon_days=30, min_per_class=30, seed=0, draws=200,
        folds=3,
    )  # fmt: skip
    assert [("skipped" in f) for f in validation["folds"]] == [False, False, False]
    for fold in validation["folds"]:
        assert fold["train"] > 0 and fold["test"] > 0
    comparison = validation["comparison"]
    auc = {m: comparison["auc"][m]["value"] for m in comparison["auc"]}
    assert auc["active"] == pytest.approx(0.5, abs=0.05)
    assert auc["proposal"] > 0.7 and auc["reference_lr"] > 0.7 and auc["best_single"] > 0.65
    assert abs(auc["proposal"] - auc["reference_lr"]) < 0.03
    assert comparison["difference_vs_reference"]["proposal"]["low"] > 0
    assert validation["verdict"]["improvement"] is True and validation["verdict"]["worse"] is False
    assert set(per_candidate) == {c.name for c in candidates}
    assert y.size == comparison["observations"] == accounts.size


def test_no_fold_with_enough_earlier_outcomes_means_no_validation_said_plainly():
    data, values, active_scores = _monthly(accounts=60, months=3)
    candidates = candidate_measures(["usage.logins"], limit=3)
    validation, per_candidate, y, _ = _walk_forward(
        data, values, active_scores, ACTIVE, candidates, horizon_days=30, min_per_class=30, seed=0, draws=50,
        folds=3,
    )  # fmt: skip
    assert validation["comparison"] is None and validation["verdict"] is None
    assert validation["messages"] == ["No walk-forward fold had enough earlier outcomes to train on: no validation."]
    assert all("at least 30 of each are needed" in f["skipped"] for f in validation["folds"])
    assert per_candidate == {} and y.size == 0


def _comparison(low: float, value: float, high: float) -> dict:
    interval = {"value": 0.7, "low": 0.65, "high": 0.75}
    return {
        "auc": {"proposal": interval, "active": interval},
        "difference_vs_reference": {"proposal": {"value": value, "low": low, "high": high}},
    }


def test_the_verdict_follows_the_interval_of_the_difference():
    assert _verdict(_comparison(0.01, 0.03, 0.05))["improvement"] is True
    within = _verdict(_comparison(-0.01, 0.02, 0.05))
    assert within["improvement"] is False and within["worse"] is False
    assert within["message"].startswith("Not an improvement")
    worse = _verdict(_comparison(-0.06, -0.04, -0.01))
    assert worse["worse"] is True and "Do not activate it" in worse["message"]
