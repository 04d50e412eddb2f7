"""scoring/discovery.py: candidates in the measure language, directions and curves, correlation
groups, thresholds from the risk curve, a weight fit that reproduces the score's own arithmetic,
and a proposal that the scoring run scores exactly as it was judged."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.services.suggestions import _new_config
from scoring.discovery import (
    MAX_MEASURES,
    candidate_measures,
    correlation_groups,
    curve_thresholds,
    fit_score_weights,
    judge_candidates,
    propose,
    score_of,
)
from scoring.health import compute_health
from scoring.measures import Direction, check_measures, score_measure
from scoring.model import default_config_dict, model_from_dict
from scoring.validation import roc_auc
from tests.support.examples import examples

pytestmark = pytest.mark.unit

SOURCES = ["usage.active_users", "usage.logins", "signal.post", "signal.Like it!", "tickets.opened", "account.arr",
           "feedback.nps", "license.active"]  # fmt: skip


def test_candidates_are_valid_measures_named_apart_from_the_active_ones():
    cands = candidate_measures(SOURCES, limit=60, taken=["sla_breaches_90d", "logins_28d"])
    assert not check_measures(tuple(cands))
    names = [m.name for m in cands]
    assert len(set(names)) == len(names)
    assert "logins_28d" not in names and "logins_28d_2" in names
    assert any(n.startswith("sig_like_it") for n in names)
    # The fixed sources first, then every series' 28-day value before any series' 7-day one.
    first_7d = min(i for i, n in enumerate(names) if n.endswith("_7d"))
    plain_28d = [i for i, n in enumerate(names) if re.search(r"_28d(_\d+)?$", n) and not any(
        part in n for part in ("per_", "change", "active_days"))]  # fmt: skip
    assert len(plain_28d) == 4 and max(plain_28d) < first_7d
    assert len(candidate_measures(SOURCES, limit=10)) == 10
    assert candidate_measures([]) == []
    with pytest.raises(ValueError, match="unknown sources: nope"):
        candidate_measures(["nope"])


def _synthetic(k: int = 20_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=k)
    good = np.exp(latent + rng.normal(scale=0.5, size=k))  # protects: churn falls as it rises
    bad = np.exp(-latent + rng.normal(scale=0.5, size=k))  # churn rises with it
    copy = good * 1.01  # the same thing twice
    noise = rng.normal(size=k)
    values = np.column_stack([good, bad, copy, noise])
    values[rng.random(values.shape) < 0.1] = np.nan
    label = rng.random(k) < 1 / (1 + np.exp(2.5 + 1.5 * latent))
    stage = rng.choice(3, size=k, p=[0.2, 0.6, 0.2]).astype(np.int8)
    return values, label, stage


def test_directions_are_learned_and_a_negative_relationship_is_lower_is_better():
    values, label, _ = _synthetic()
    judged = judge_candidates(values, label)
    assert judged[0].direction is Direction.HIGHER_IS_BETTER
    assert judged[1].direction is Direction.LOWER_IS_BETTER
    assert judged[0].train_auc > 0.7 and judged[1].train_auc > 0.7
    assert judged[3].train_auc < 0.55
    assert 0.85 < judged[0].coverage < 0.95


def test_correlated_candidates_share_a_group():
    values, _, _ = _synthetic()
    groups = correlation_groups(values)
    assert groups[0] == groups[2]
    assert groups[3] != groups[0]
    assert correlation_groups(values[:, :1]).tolist() == [0]


def test_thresholds_sit_where_the_risk_crosses_multiples_of_the_base_rate():
    values, label, _ = _synthetic()
    t = curve_thresholds(values[:, 0], label, Direction.HIGHER_IS_BETTER)
    assert t is not None and len(t) == 5 and list(t) == sorted(t)
    x = values[:, 0]
    ok = np.isfinite(x)
    scores = score_measure(x[ok], np.asarray(t), Direction.HIGHER_IS_BETTER)
    base = label[ok].mean()
    # Accounts scored 0 churn at about twice the base rate or more, those scored 100 at half or less.
    assert label[ok][scores == 0].mean() > 1.6 * base
    assert label[ok][scores == 100].mean() < 0.6 * base
    t_bad = curve_thresholds(values[:, 1], label, Direction.LOWER_IS_BETTER)
    assert t_bad is not None and list(t_bad) == sorted(t_bad)
    assert curve_thresholds(np.ones(100), label[:100], Direction.HIGHER_IS_BETTER) is None
    assert curve_thresholds(values[:50, 0], np.zeros(50, bool), Direction.HIGHER_IS_BETTER) is None


@settings(max_examples=examples(60), deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(2, 80), elements=st.floats(-1e6, 1e6) | st.just(np.nan)),
    st.data(),
    st.sampled_from(list(Direction)),
)
def test_thresholds_are_none_or_a_valid_mapping(values, data, direction):
    label = np.array(data.draw(st.lists(st.booleans(), min_size=values.size, max_size=values.size)))
    t = curve_thresholds(values, label, direction)
    if t is not None:
        assert len(t) in (2, 5)
        assert all(b > a for a, b in itertools.pairwise(t))


@settings(max_examples=examples(60), deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 5)),
               elements=st.floats(0, 100) | st.just(np.nan)),
    st.data(),
)  # fmt: skip
def test_score_of_is_the_health_score_arithmetic(scores, data):
    m = scores.shape[1]
    weights = np.array(data.draw(st.lists(st.floats(0.01, 100), min_size=m, max_size=m)))
    config = default_config_dict()
    names = [f"m{j}" for j in range(m)]
    config["measures"] = [
        {"name": n, "group": "adoption", "source": "usage.logins", "window_days": 28, "direction": "higher_is_better",
         "thresholds": [0, 100]}
        for n in names
    ]  # fmt: skip
    config["weights"] = {s: dict(zip(names, weights.tolist(), strict=True)) for s in config["weights"]}
    config["rules"] = []
    model = model_from_dict(config)
    stage = np.ones(scores.shape[0], dtype=np.int8)
    health = compute_health(scores.T.copy(), stage, model).score
    np.testing.assert_allclose(score_of(scores, weights), health, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_the_weight_fit_favours_the_measure_that_predicts_and_skips_missing_ones():
    values, label, _ = _synthetic()
    scores = np.column_stack(
        [
            score_measure(values[:, 0], np.array([0.3, 3.0]), Direction.HIGHER_IS_BETTER),
            score_measure(values[:, 3], np.array([-1.0, 1.0]), Direction.HIGHER_IS_BETTER),
        ]
    )
    fit = fit_score_weights(scores, label)
    assert fit.weights.sum() == pytest.approx(100, abs=0.01)
    assert fit.weights[0] > 4 * fit.weights[1]
    assert fit.slope < 0  # a higher score, less churn
    with pytest.raises(ValueError, match="churned and not churned"):
        fit_score_weights(scores, np.zeros(label.size, bool))


def test_a_proposal_keeps_one_of_each_group_and_scores_as_the_scoring_run_does():
    values, label, stage = _synthetic()
    cands = candidate_measures(["usage.logins"], limit=4)
    proposal = propose(values, stage, label, cands, min_per_class=30)
    chosen = [c.index for c in proposal.chosen]
    assert 1 in chosen and 3 not in chosen  # the noise is never proposed
    assert not {0, 2} <= set(chosen)  # a group offers its best member only
    assert len(chosen) <= MAX_MEASURES
    by_index = {c.index: c.measure for c in proposal.chosen}
    assert by_index[1].direction is Direction.LOWER_IS_BETTER
    assert all(proposal.weights[s][by_index[1].name] > 0 for s in proposal.weights)
    assert proposal.bands is not None and proposal.bands[0] < proposal.bands[1]
    # The config built from it, scored by the scoring run's own code, gives the proposal's scores.
    active = model_from_dict(default_config_dict())
    model = _new_config(active, proposal)
    raw = np.vstack([values[:, next(c.index for c in proposal.chosen if c.measure.name == m.name)]
                     if m.name in {c.measure.name for c in proposal.chosen} else np.full(values.shape[0], np.nan)
                     for m in model.measures])  # fmt: skip
    run = compute_health(raw, stage, model).score
    np.testing.assert_allclose(run, proposal.score(values, stage), rtol=1e-6, atol=1e-4, equal_nan=True)
    ok = np.isfinite(run)
    assert roc_auc(100 - run[ok], label[ok]) > 0.7


def test_nothing_to_propose_says_why():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(2000, 2))
    label = rng.random(2000) < 0.2
    with pytest.raises(ValueError, match="nothing to propose"):
        propose(values, np.ones(2000, np.int8), label, candidate_measures(["usage.logins"], limit=2), min_per_class=30)
