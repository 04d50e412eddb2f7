"""Lifecycle stage boundaries at the exact day, and one valid stage for every account."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.stage import STAGE_CODE, STAGES, LifecycleStage, StageRules, assign_stages, to_day_array
from tests.support.examples import examples

pytestmark = pytest.mark.unit

AS_OF = dt.date(2024, 6, 1)
ONBOARDING = LifecycleStage.ONBOARDING
ESTABLISHED = LifecycleStage.ESTABLISHED
PRE_RENEWAL = LifecycleStage.PRE_RENEWAL
LONG_AGO = 1000  # days since contract start: well past onboarding
DEFAULT_RULES = StageRules()


def day(offset: int | None, as_of: dt.date = AS_OF) -> dt.date | None:
    """The date ``offset`` days after ``as_of`` (negative: before), None for unknown."""
    return None if offset is None else as_of + dt.timedelta(days=offset)


def stage_of(
    *,
    started_days_ago: int | None = LONG_AGO,
    renewal_in_days: int | None = None,
    first_value_in_days: int | None = None,
    rules: StageRules = DEFAULT_RULES,
) -> LifecycleStage:
    """The stage of one account, described relative to ``AS_OF``."""
    codes = assign_stages(
        AS_OF,
        to_day_array([day(None if started_days_ago is None else -started_days_ago)]),
        to_day_array([day(renewal_in_days)]),
        to_day_array([day(first_value_in_days)]),
        rules,
    )
    return STAGES[codes[0]]


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        pytest.param({"started_days_ago": 0}, ONBOARDING, id="contract-starts-today"),
        pytest.param({"started_days_ago": 89}, ONBOARDING, id="day-89-onboarding"),
        pytest.param({"started_days_ago": 90}, ESTABLISHED, id="day-90-established"),
        pytest.param({"renewal_in_days": 90}, PRE_RENEWAL, id="renewal-90-days-away"),
        pytest.param({"renewal_in_days": 91}, ESTABLISHED, id="renewal-91-days-away"),
        pytest.param({"renewal_in_days": 0}, PRE_RENEWAL, id="renewal-today"),
        pytest.param({"renewal_in_days": -30}, PRE_RENEWAL, id="renewal-passed"),
        pytest.param({"started_days_ago": 10, "renewal_in_days": 90}, PRE_RENEWAL, id="pre-renewal-wins"),
        pytest.param({"started_days_ago": 10, "renewal_in_days": 91}, ONBOARDING, id="onboarding-far-renewal"),
        pytest.param({"started_days_ago": 10, "first_value_in_days": 0}, ESTABLISHED, id="first-value-today"),
        pytest.param({"started_days_ago": 10, "first_value_in_days": -3}, ESTABLISHED, id="first-value-before"),
        pytest.param({"started_days_ago": 10, "first_value_in_days": 1}, ONBOARDING, id="first-value-after-as-of"),
        pytest.param({"started_days_ago": 10}, ONBOARDING, id="no-renewal-date-onboarding"),
        pytest.param({}, ESTABLISHED, id="no-renewal-date-established"),
        pytest.param({"started_days_ago": None}, ESTABLISHED, id="no-contract-start"),
        pytest.param({"started_days_ago": None, "renewal_in_days": 30}, PRE_RENEWAL, id="no-start-renewal-near"),
    ],
)
def test_assign_stages_boundaries(account, expected):
    assert stage_of(**account) is expected


@pytest.mark.parametrize(
    ("rules", "account", "expected"),
    [
        pytest.param(StageRules(onboarding_max_days=0), {"started_days_ago": 0}, ESTABLISHED, id="no-onboarding"),
        pytest.param(StageRules(onboarding_max_days=30), {"started_days_ago": 29}, ONBOARDING, id="short-29"),
        pytest.param(StageRules(onboarding_max_days=30), {"started_days_ago": 30}, ESTABLISHED, id="short-30"),
        pytest.param(StageRules(pre_renewal_days=0), {"renewal_in_days": 0}, PRE_RENEWAL, id="renewal-day-only"),
        pytest.param(StageRules(pre_renewal_days=0), {"renewal_in_days": 1}, ESTABLISHED, id="renewal-tomorrow"),
        pytest.param(StageRules(pre_renewal_days=120), {"renewal_in_days": 120}, PRE_RENEWAL, id="long-120"),
    ],
)
def test_assign_stages_follows_the_rules(rules, account, expected):
    assert stage_of(rules=rules, **account) is expected


def test_assign_stages_is_vectorized_in_input_order():
    codes = assign_stages(
        AS_OF,
        to_day_array([day(-10), day(-400), day(-400), None]),
        to_day_array([None, None, day(60), None]),
        to_day_array([None, day(-300), None, None]),
        StageRules(),
    )
    assert codes.dtype == np.int8
    assert [STAGES[c] for c in codes] == [ONBOARDING, ESTABLISHED, PRE_RENEWAL, ESTABLISHED]


def test_to_day_array_accepts_dates_iso_strings_and_none():
    days = to_day_array([dt.date(2024, 2, 29), "2024-03-01", None])
    assert days.dtype == np.dtype("datetime64[D]")
    assert days[0] == np.datetime64("2024-02-29")
    assert days[1] == np.datetime64("2024-03-01")
    assert np.isnat(days[2])


def test_stage_codes_index_stages():
    assert [STAGES[STAGE_CODE[stage]] for stage in LifecycleStage] == list(LifecycleStage)


OFFSETS = st.one_of(st.none(), st.integers(-3000, 3000))


def reference_stage(
    as_of: dt.date, start: dt.date | None, renewal: dt.date | None, first_value: dt.date | None, rules: StageRules
) -> LifecycleStage:
    """The stage rules written out for one account with plain dates."""
    if renewal is not None and (renewal - as_of).days <= rules.pre_renewal_days:
        return PRE_RENEWAL
    reached_value = first_value is not None and first_value <= as_of
    if start is not None and (as_of - start).days < rules.onboarding_max_days and not reached_value:
        return ONBOARDING
    return ESTABLISHED


@settings(max_examples=examples(60), deadline=None)
@given(
    as_of=st.dates(dt.date(2000, 1, 1), dt.date(2090, 12, 31)),
    accounts=st.lists(st.tuples(OFFSETS, OFFSETS, OFFSETS), min_size=1, max_size=20),
    onboarding_max_days=st.integers(0, 400),
    pre_renewal_days=st.integers(0, 400),
)
def test_assign_stages_gives_every_account_exactly_one_valid_stage(
    as_of, accounts, onboarding_max_days, pre_renewal_days
):
    rules = StageRules(onboarding_max_days=onboarding_max_days, pre_renewal_days=pre_renewal_days)
    dates = [tuple(day(offset, as_of) for offset in account) for account in accounts]
    codes = assign_stages(
        as_of,
        to_day_array([d[0] for d in dates]),
        to_day_array([d[1] for d in dates]),
        to_day_array([d[2] for d in dates]),
        rules,
    )
    assert codes.shape == (len(accounts),)
    assert codes.dtype == np.int8
    assert set(codes.tolist()) <= set(range(len(STAGES)))
    assert [STAGES[c] for c in codes] == [reference_stage(as_of, *d, rules) for d in dates]
