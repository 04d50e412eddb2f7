"""Event rules: every default rule fires exactly once on a crafted history and never on its near
miss; hysteresis, stage exits, re-firing after a clear, idempotent re-evaluation; validation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scoring.bands import BANDS, Band
from scoring.measures import LEGACY_DEFINITIONS
from scoring.model import default_config_dict, model_from_dict
from scoring.rules import (
    MAX_RULES,
    Rule,
    RuleError,
    RuleInputs,
    RuleKind,
    RuleType,
    Severity,
    check_rules,
    describe,
    evaluate_rules,
    remap_state,
    rule_needs,
    rules_from_list,
    trigger_values,
)
from scoring.stage import STAGE_CODE, LifecycleStage
from tests.support.examples import examples

pytestmark = pytest.mark.unit

RULES = model_from_dict(default_config_dict()).rules
RULE_INDEX = {rule.id: i for i, rule in enumerate(RULES)}
NEEDS = rule_needs(RULES)


def day(stage: str = "established", **kw: Any) -> dict[str, Any]:
    return {"stage": stage, **kw}


def inputs_for(d: dict[str, Any]) -> RuleInputs:
    """One account's inputs for one day: neutral everywhere except what ``d`` sets."""
    one = lambda v: np.array([v], dtype=np.float64)  # noqa: E731
    score = d.get("score", 60.0)
    band = d.get("band", "average")
    values = {name: one(np.nan) for name in LEGACY_DEFINITIONS}
    values.update({"score": one(score), "login_days_30d": one(10.0), "days_to_renewal": one(200.0)})
    for name, value in d.get("values", {}).items():
        values[name] = one(value)
    x = RuleInputs(
        stage=np.array([STAGE_CODE[LifecycleStage(d["stage"])]], dtype=np.int8),
        band=np.array([BANDS.index(Band(band))], dtype=np.int8),
        days_since_start=one(d.get("days_since_start", 400.0)),
        values=values,
        activity_ever=np.array([d.get("activity", True)]),
    )
    for key in NEEDS.usage_windows:
        cur, prev = d.get("usage", {}).get(key, (100.0, 100.0))
        x.usage[key] = (one(cur), one(prev))
    for key in NEEDS.signal_windows:
        count, days = d.get("signals", {}).get(key, (0.0, 0.0))
        x.signals[key] = (one(count), one(days))
    for name in NEEDS.signals_ever:
        x.signals_ever[name] = np.array([d.get("ever", {}).get(name, True)])
    for name in NEEDS.milestones_ever:
        x.milestones_ever[name] = np.array([True])
    for key in NEEDS.contact_windows:
        x.contacts[key] = one(d.get("contacts", {}).get(key, 0.0))
    for days in NEEDS.score_days_ago:
        x.score_ago[days] = one(d.get("score_ago", score))
    return x


def fires(rule_id: str, history: list[dict[str, Any]], rules: tuple[Rule, ...] = RULES) -> int:
    """How often ``rule_id`` fires over consecutive evaluations of ``history``."""
    state = np.zeros(1, dtype=np.int64)
    index = [r.id for r in rules].index(rule_id)
    count = 0
    for d in history:
        result = evaluate_rules(rules, inputs_for(d), state)
        count += int(result.fired[index].sum())
        state = result.state
    return count


SIG = "signals"
USERS_7 = ("added", ("user",), 7)
USERS_30 = ("added", ("user",), 30)
LEFT_30 = ("removed", ("admin", "champion"), 30)


def sig(name: str, window: int, count: float, days: float | None = None) -> dict[str, Any]:
    return {SIG: {(name, window): (count, count if days is None else days)}}


def util(v: float) -> dict[str, Any]:
    return {"values": {"license_utilization_ratio": v}}


def usage(column: str, cur: float, prev: float = 100.0) -> dict[str, Any]:
    """A 30-day usage window at ``cur`` percent of ``prev``, as sums of a ten-user account (x10):
    the default change rules also need a change of ``min_change`` (30) in absolute terms."""
    return {"usage": {(column, 30): (cur * 10, prev * 10)}}


ONB, EST, PRE = "onboarding", "established", "pre_renewal"

#: rule id -> (history on which it fires exactly once, its near miss on which it never fires)
SCENARIOS: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "onb_setup_completed": (
        [day(ONB), *[day(ONB, **sig("setup_completed", 7, 1)) for _ in range(5)], day(ONB)],
        [day(EST, **sig("setup_completed", 7, 1)) for _ in range(5)],
    ),
    "onb_users_added": (
        [day(ONB), *[day(ONB, contacts={USERS_7: 1}) for _ in range(4)]],
        [day(ONB, contacts={USERS_7: 0}) for _ in range(4)],
    ),
    "onb_licenses_20pct": (
        [day(ONB, **util(v)) for v in (0.1, 0.21, 0.19, 0.16, 0.22)],
        [day(ONB, **util(v)) for v in (0.1, 0.19, 0.199, 0.15)],
    ),
    "onb_first_value": (
        [day(ONB), day(ONB, **sig("first_value", 7, 1)), day(EST, **sig("first_value", 7, 1))],
        [day(PRE, **sig("first_value", 7, 1)) for _ in range(3)],
    ),
    "onb_implementation_overdue": (
        [day(ONB, days_since_start=d, ever={"setup_completed": False}) for d in range(58, 64)],
        [day(ONB, days_since_start=d, ever={"setup_completed": False}) for d in range(54, 60)],
    ),
    "onb_no_activity": (
        [day(ONB, days_since_start=d, activity=False) for d in range(12, 18)],
        [day(ONB, days_since_start=d, activity=True) for d in range(12, 18)],
    ),
    "est_frequent_logins": (
        [day(EST, values={"login_days_30d": v}) for v in (18, 20, 17, 16, 21)],
        [day(EST, values={"login_days_30d": v}) for v in (18, 19, 19)],
    ),
    "est_users_added": (
        [day(EST, contacts={USERS_30: v}) for v in (9, 10, 11, 10)],
        [day(EST, contacts={USERS_30: v}) for v in (8, 9, 9)],
    ),
    "est_reports_daily": (
        [day(EST, **sig("report_viewed", 30, 40, d)) for d in (19, 20, 22)],
        [day(EST, **sig("report_viewed", 30, 40, d)) for d in (18, 19, 19)],
    ),
    "est_advanced_features_up": (
        [day(EST, **usage("key_feature_uses", v)) for v in (100, 126, 115, 130)],
        [day(EST, **usage("key_feature_uses", v)) for v in (100, 124, 124.9)],
    ),
    "est_new_module": (
        [day(EST), *[day(EST, **sig("module_adopted", 7, 1)) for _ in range(3)]],
        [day(ONB, **sig("module_adopted", 7, 1)) for _ in range(3)],
    ),
    "est_reporting_unused": (
        [day(EST, **sig("report_viewed", 30, 1)), day(EST), day(EST), day(EST)],
        [day(EST, **sig("report_viewed", 30, 1)) for _ in range(4)],
    ),
    "pre_engagement_falling": (
        [day(PRE, **usage("logins", v)) for v in (100, 79, 85, 78)],
        [day(PRE, **usage("logins", v)) for v in (100, 81, 80.5)],
    ),
    "pre_champion_left": (
        [day(PRE), day(PRE, contacts={LEFT_30: 1}), day(PRE, contacts={LEFT_30: 1})],
        [day(EST, contacts={LEFT_30: 1}) for _ in range(3)],
    ),
    "pre_open_tickets": (
        [day(PRE, values={"open_ticket_load": v}) for v in (5, 6, 5, 7)],
        [day(PRE, values={"open_ticket_load": v}) for v in (5, 5.9)],
    ),
    "pre_licenses_underused": (
        [day(PRE, **util(v)) for v in (0.7, 0.5, 0.55, 0.45)],
        [day(PRE, **util(v)) for v in (0.7, 0.51)],
    ),
    "pre_low_review_engagement": (
        [day(PRE, **sig("business_review", 120, 1)), day(PRE), day(PRE)],
        [day(PRE, **sig("business_review", 120, 1)) for _ in range(3)],
    ),
    "any_score_drop": (
        [day(score=s, score_ago=60.0) for s in (60, 50, 49, 52)],
        [day(score=s, score_ago=60.0) for s in (60, 50.5, 51)],
    ),
    "any_into_poor": (
        [day(band="average"), day(band="poor"), day(band="poor")],
        [day(band="average"), day(band="average")],
    ),
    "any_active_users_down": (
        [day(**usage("active_users", v)) for v in (100, 80, 85, 79)],
        [day(**usage("active_users", v)) for v in (100, 81, 80.1)],
    ),
    "any_data_export": (
        [day(PRE), day(PRE, **sig("data_export", 7, 1)), day(ONB, **sig("data_export", 7, 2))],
        [day(PRE), day(PRE)],
    ),
    "any_admin_changed": (
        [day(ONB), day(EST, **sig("admin_changed", 7, 1)), day(EST, **sig("admin_changed", 7, 1))],
        [day(EST), day(EST)],
    ),
}


def test_every_default_rule_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(RULE_INDEX)


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_default_rule_fires_exactly_once(rule_id: str) -> None:
    hit, _ = SCENARIOS[rule_id]
    assert fires(rule_id, hit) == 1


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_default_rule_does_not_fire_on_its_near_miss(rule_id: str) -> None:
    _, miss = SCENARIOS[rule_id]
    assert fires(rule_id, miss) == 0


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_re_evaluating_a_day_fires_nothing_new(rule_id: str) -> None:
    hit, _ = SCENARIOS[rule_id]
    state = np.zeros(1, dtype=np.int64)
    for d in hit:
        first = evaluate_rules(RULES, inputs_for(d), state)
        again = evaluate_rules(RULES, inputs_for(d), first.state)
        assert not again.fired.any()
        assert (again.state == first.state).all()
        state = first.state


def test_threshold_fires_again_after_it_cleared_past_the_hysteresis() -> None:
    values = (0.1, 0.21, 0.16, 0.21, 0.14, 0.21)  # on, inside the band (stays on), cleared, on again
    assert fires("onb_licenses_20pct", [day(ONB, **util(v)) for v in values]) == 2


def test_leaving_the_rules_stages_clears_it() -> None:
    history = [day(PRE, **util(0.4)), day(EST, **util(0.4)), day(PRE, **util(0.4))]
    assert fires("pre_licenses_underused", history) == 2


def test_missing_data_keeps_the_state() -> None:
    history = [day(PRE, values={"open_ticket_load": v}) for v in (7, np.nan, 7)]
    assert fires("pre_open_tickets", history) == 1


def test_change_without_a_baseline_never_fires() -> None:
    assert fires("any_active_users_down", [day(**usage("active_users", 0, 0)) for _ in range(3)]) == 0


def test_the_first_evaluation_records_the_state_without_firing() -> None:
    """Issue 17: the demo's first evaluation fired every condition already true (40% of accounts on
    the watchlist, 990 tasks). The first day stores the on-state; only a change fires after it."""
    poor = day(band="poor")
    first = evaluate_rules(RULES, inputs_for(poor), np.zeros(1, dtype=np.int64), first=np.array([True]))
    i = RULE_INDEX["any_into_poor"]
    assert not first.fired.any()
    assert first.active[i, 0] and first.state[0] >> i & 1
    again = evaluate_rules(RULES, inputs_for(poor), first.state, first=np.array([False]))
    assert not again.fired[i].any()  # still poor: nothing new


def test_a_rule_with_fire_on_first_day_fires_on_the_first_evaluation() -> None:
    rules = tuple(replace(r, fire_on_first_day=r.id == "any_into_poor") for r in RULES)
    result = evaluate_rules(rules, inputs_for(day(band="poor")), np.zeros(1, dtype=np.int64), first=np.array([True]))
    assert [rules[i].id for i in np.flatnonzero(result.fired[:, 0])] == ["any_into_poor"]
    loaded = rules_from_list([rule_dict(fire_on_first_day=True)])[0]
    assert loaded.fire_on_first_day and loaded.to_dict()["fire_on_first_day"] is True
    assert "fire_on_first_day" not in rules_from_list([rule_dict()])[0].to_dict()


def test_the_shipped_rules_that_fire_on_the_first_day() -> None:
    """Only what a CSM must act on at once even at install: onboarding already overdue."""
    assert {r.id for r in RULES if r.fire_on_first_day} == {"onb_no_activity", "onb_implementation_overdue"}


def test_a_change_rule_needs_its_min_change_in_absolute_terms() -> None:
    """A fall from 2 active-user days to 1 is -50%: noise, not a risk."""
    small = [day(usage={("active_users", 30): (cur, prev)}) for cur, prev in ((10, 10), (1, 2), (5, 10), (29, 40))]
    assert fires("any_active_users_down", small) == 0
    big = [day(usage={("active_users", 30): (cur, prev)}) for cur, prev in ((100, 100), (60, 100))]
    assert fires("any_active_users_down", big) == 1
    rule = RULES[RULE_INDEX["any_active_users_down"]]
    assert rule.min_change == 30 and "by 30 or more" in describe(rule)
    (values,) = trigger_values(rule, inputs_for(big[1]), np.array([0]))
    assert values["min_change"] == 30.0
    # Without min_change (0), the old behaviour: any -20% fires.
    loose = tuple(replace(r, min_change=0.0) for r in RULES)
    assert fires("any_active_users_down", small, rules=loose) == 1


def test_trigger_values_describe_what_fired() -> None:
    rule = RULES[RULE_INDEX["any_score_drop"]]
    x = inputs_for(day(score=48.0, score_ago=60.0))
    (values,) = trigger_values(rule, x, np.array([0]))
    assert values == {"score": 48.0, "score_before": 60.0, "change": -12.0, "days": 7, "points": 10.0}
    rule = RULES[RULE_INDEX["onb_licenses_20pct"]]
    (values,) = trigger_values(rule, inputs_for(day(ONB, **util(0.25))), np.array([0]))
    assert values == {"value": 0.25, "measure": "license_utilization_ratio", "op": "above", "threshold": 0.2}


def test_every_default_rule_has_a_description() -> None:
    for rule in RULES:
        assert describe(rule)


# --- properties -------------------------------------------------------------------------------------


def oracle_fires(values: list[float], at: float, clear: float) -> int:
    """A plain scalar state machine for an 'above' threshold with hysteresis."""
    on, count = False, 0
    for v in values:
        if np.isnan(v):
            continue
        if not on and v >= at:
            on, count = True, count + 1
        elif on and v < clear:
            on = False
    return count


THRESHOLD = Rule(
    id="t", name="t", kind=RuleKind.RISK, severity=Severity.LOW, type=RuleType.THRESHOLD,
    value="nps", op="above", at=10.0, clear_at=5.0,
)  # fmt: skip


@settings(max_examples=examples(60), deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 20)),
        elements=st.one_of(st.floats(0, 15, allow_nan=False), st.just(np.nan)),
    )
)
def test_vectorized_evaluation_matches_a_scalar_state_machine(values: np.ndarray) -> None:
    days, n = values.shape
    state = np.zeros(n, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    for t in range(days):
        x = RuleInputs(
            stage=np.full(n, 1, dtype=np.int8),
            band=np.zeros(n, dtype=np.int8),
            days_since_start=np.full(n, 400.0),
            values={"nps": values[t]},
        )
        result = evaluate_rules((THRESHOLD,), x, state)
        counts += result.fired[0]
        state = result.state
    expected = [oracle_fires(values[:, j].tolist(), 10.0, 5.0) for j in range(n)]
    assert counts.tolist() == expected


@given(st.permutations(list(RULE_INDEX)), st.integers(0, 2**22 - 1))
def test_remap_state_round_trips(new_order: list[str], bits: int) -> None:
    old = tuple(RULE_INDEX)
    state = np.array([bits], dtype=np.int64)
    there = remap_state(state, old, tuple(new_order))
    assert (remap_state(there, tuple(new_order), old) == state).all()
    # A rule dropped from the new order loses its bit; a new rule starts off.
    dropped = remap_state(state, old, (*new_order[1:], "brand_new"))
    assert (dropped >> np.int64(len(new_order) - 1)) & 1 == 0


# --- validation -------------------------------------------------------------------------------------


def rule_dict(**overrides: Any) -> dict[str, Any]:
    base = {"id": "r", "name": "R", "kind": "risk", "severity": "low", "type": "threshold", "value": "nps",
            "op": "above", "at": 10}  # fmt: skip
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"id": "Bad Id"}, "rules.0.id"),
        ({"value": "nope"}, "rules.0.value"),
        ({"op": "sideways"}, "rules.0.op"),
        ({"clear_at": 11}, "rules.0.clear_at"),
        ({"type": "change", "value": "logins", "window_days": 30, "change_pct": 0}, "rules.0.change_pct"),
        ({"type": "change", "value": "seats", "window_days": 30, "change_pct": -20}, "rules.0.value"),
        ({"type": "signal", "signal": "x", "window_days": 7, "min_days": 8}, "rules.0.min_days"),
        ({"type": "overdue", "after_days": 10, "without": "milestone:r"}, "rules.0.without"),
        ({"type": "overdue", "after_days": 10, "without": "whatever"}, "rules.0.without"),
        ({"type": "score_drop", "points": 0, "days": 7}, "rules.0.points"),
        (
            {"type": "change", "value": "logins", "window_days": 30, "change_pct": -20, "min_change": -1},
            "rules.0.min_change",
        ),
        (
            {"type": "change", "value": "logins", "window_days": 30, "change_pct": -20, "min_change": float("nan")},
            "rules.0.min_change",
        ),
        ({"type": "contacts", "change": "added", "roles": ["ceo"], "window_days": 7}, "rules.0.roles"),
    ],
)
def test_invalid_rules_are_refused_with_a_field_path(overrides: dict[str, Any], path: str) -> None:
    data = rule_dict(**overrides)
    if data["type"] != "threshold":
        for key in ("value", "op", "at"):
            if key not in overrides:
                data.pop(key, None)
    with pytest.raises(RuleError) as info:
        rules_from_list([data], measure_names={"nps", "csat_avg"})
    assert path in info.value.errors


def test_duplicate_ids_and_too_many_rules_are_refused() -> None:
    errors = check_rules((rules_from_list([rule_dict()])[0],) * 2)
    assert "rules.1.id" in errors
    many = tuple(replace(rules_from_list([rule_dict()])[0], id=f"r{i}") for i in range(MAX_RULES + 1))
    assert "rules" in check_rules(many)


def test_overdue_may_wait_for_a_milestone_rule() -> None:
    late = {"id": "late", "name": "Late", "kind": "risk", "severity": "high", "type": "overdue",
            "after_days": 30, "without": "milestone:m"}  # fmt: skip
    rules = rules_from_list([rule_dict(id="m", kind="milestone"), late])
    assert rule_needs(rules).milestones_ever == frozenset({"m"})
