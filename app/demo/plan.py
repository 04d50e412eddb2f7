"""The account-level plan: archetypes, lifecycle cohorts, contracts, usage curves, names and owners."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from app.demo.common import add_years, categorical, epoch_day, join, uniform, words

# --- Archetypes and cohorts (codes index the tables below) -------------------------------------------

HEALTHY, DECLINING, RECOVERING, NEVER_ADOPTING, AVERAGE = range(5)
ARCHETYPES = ("healthy", "declining", "recovering", "never_adopting", "average")

NEW, PRE_RENEWAL, ESTABLISHED, RENEWED, CHURNED = range(5)
COHORTS = ("new", "pre_renewal", "established", "renewed", "churned")
_COHORT_SHARE = np.array([0.24, 0.19, 0.32, 0.10, 0.15])
# P(archetype | cohort), columns in archetype order; the marginals come out at about
# healthy 45 %, declining 20 %, recovering 10 %, never-adopting 10 %, average 15 %.
_ARCHETYPE_GIVEN_COHORT = np.array(
    [
        [0.38, 0.07, 0.07, 0.30, 0.18],  # new: most never-adopting accounts are here
        [0.48, 0.20, 0.13, 0.03, 0.16],  # pre-renewal
        [0.48, 0.20, 0.13, 0.03, 0.16],  # established
        [0.62, 0.12, 0.10, 0.04, 0.12],  # renewed: mostly healthy-looking, some not
        [0.15, 0.50, 0.05, 0.15, 0.15],  # churned: mostly a decline before the churn, not always
    ]
)
# Churn is predictable from the data, but not trivially (docs/learning.md: the demo's churn model
# validates at an AUC between 0.70 and 0.88): a share of churns come with no warning in the data
# (an acquisition, a budget cut), some renewals follow a dip that looked like a churn coming, and
# accounts that stay decline at any time of the year, not only in its last months.
_CHURN_SIGNALLED = 0.7  # churned accounts whose usage (and sentiment) declines into the churn
_MID_TERM_CHURN = 0.3  # churns in a contract's term rather than at its renewal
_RENEWAL_DIP = 0.35  # renewed accounts whose usage dipped before the renewal

SEGMENTS = ("smb", "mid_market", "enterprise")
_SEGMENT_SHARE = np.array([0.55, 0.30, 0.15])
_SEATS_RANGE = np.array([[5, 50], [50, 300], [300, 3000]])
_PRICE_PER_SEAT = np.array([600.0, 480.0, 360.0])  # ARR per seat, before noise
ACCOUNTS_PER_CSM = 40

# Per archetype (healthy, declining, recovering, never-adopting, average): (low, high) ranges.
_LEVEL_START = np.array([[0.40, 0.80], [0.35, 0.70], [0.02, 0.10], [0.003, 0.03], [0.15, 0.35]])
_LEVEL_END = np.array([[0.90, 1.10], [0.01, 0.10], [0.35, 0.70], [1.0, 1.0], [0.85, 1.15]])
_LEVEL_END_IS_RELATIVE = np.array([True, False, False, True, True])
_RAMP_DAYS = np.array([[7, 21], [7, 21], [20, 40], [30, 60], [14, 35]])
_ACTIVE_DAY_SHARE = np.array([[1, 1], [1, 1], [1, 1], [0.10, 0.35], [1, 1]])
_LOGIN_EXTRA = np.array([[0.6, 1.6], [0.2, 0.7], [0.4, 1.2], [0.1, 0.5], [0.3, 0.9]])
_KEY_FEATURE_SHARE = np.array([[0.55, 0.85], [0.15, 0.40], [0.30, 0.55], [0.0, 0.10], [0.25, 0.50]])
_WEEKEND_FACTOR = np.array([0.05, 0.30])


# --- Names ------------------------------------------------------------------------------------------

_NAME_PREFIX = (
    "Acme", "Northwind", "Bluebird", "Summit", "Granite", "Harbor", "Cedar", "Pioneer", "Silverline",
    "Redwood", "Apex", "Lumen", "Nimbus", "Orbit", "Quantum", "Beacon", "Evergreen", "Falcon", "Horizon",
    "Ironclad", "Juniper", "Keystone", "Lakeside", "Meridian", "Northstar", "Oakridge", "Pinnacle",
    "Riverbend", "Sterling", "Trident", "Unity", "Vertex", "Willow", "Zenith", "Atlas", "Brightwater",
    "Copperfield", "Delta", "Elmwood", "Frontier", "Goldleaf", "Highland", "Indigo", "Jadestone",
    "Kestrel", "Lighthouse", "Maple", "Nova", "Onyx", "Polaris", "Quarry", "Rocket", "Sapphire",
    "Tidal", "Upland", "Vista", "Westfield", "Yellowstone", "Zephyr", "Crescent",
)  # fmt: skip
_NAME_CORE = (
    "Analytics", "Logistics", "Health", "Foods", "Robotics", "Software", "Labs", "Systems", "Energy",
    "Media", "Capital", "Dynamics", "Networks", "Retail", "Biotech", "Freight", "Insurance", "Learning",
    "Manufacturing", "Pharma", "Security", "Solar", "Telecom", "Travel", "Ventures", "Works", "Data",
    "Cloud", "Motors", "Apparel", "Designs", "Consulting", "Hospitality", "Marine", "Materials",
    "Payments", "Properties", "Studios", "Supply", "Outfitters",
)  # fmt: skip
_NAME_SUFFIX = ("Inc", "LLC", "Ltd", "Group", "Co", "GmbH", "Corp", "Partners")
_NAME_REGION = (
    "", "Pacific", "Atlantic", "Nordic", "Midwest", "Alpine", "Coastal", "Continental", "Eastern",
    "Western", "Southern", "Northern", "Central", "Global", "United", "Metro", "Prairie", "Gulf",
    "Island", "Valley", "Capitol",
)  # fmt: skip
FIRST_NAMES = (
    "Dana", "Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn",
    "Priya", "Wei", "Fatima", "Mateo", "Sofia", "Liam", "Noah", "Emma", "Olivia", "Ava", "Lucas",
    "Mia", "Ethan", "Isabel", "Hiro", "Yuki", "Ana", "Omar", "Leila", "Chen", "Ravi", "Nadia", "Ivan",
    "Elena", "Tomas", "Grace", "Kofi", "Amara", "Sven", "Ingrid", "Diego", "Lucia", "Marco", "Chloe",
    "Aisha", "Kenji", "Zara", "Felix", "Maya",
)  # fmt: skip
LAST_NAMES = (
    "Lee", "Smith", "Garcia", "Chen", "Patel", "Kim", "Nguyen", "Johnson", "Brown", "Martin", "Rossi",
    "Muller", "Silva", "Khan", "Haddad", "Novak", "Andersen", "Okafor", "Tanaka", "Sato", "Lopez",
    "Gonzalez", "Wilson", "Taylor", "Moore", "Clark", "Lewis", "Walker", "Hall", "Young", "Allen",
    "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts",
    "Carter", "Phillips", "Evans", "Turner", "Torres", "Parker", "Collins", "Edwards", "Stewart",
    "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Peterson", "Cooper", "Reed", "Bailey", "Bell",
)  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class DemoPlan:
    """Account-level demo data as arrays in account-id order (``account_id`` is 1..n).

    Days are int64 days since 1970-01-01. ``end`` is the first day without activity (the churn
    day for churned accounts, the day after ``as_of`` otherwise). ``t0``/``t1``/``level_*``
    describe each account's usage curve: the share of seats active on a weekday moves from
    ``level_start`` to ``level_end`` between days ``t0`` and ``t1``.
    """

    seed: int
    as_of: dt.date
    days: int
    account_id: np.ndarray
    archetype: np.ndarray  # int codes into ARCHETYPES
    cohort: np.ndarray  # int codes into COHORTS
    segment: np.ndarray  # int codes into SEGMENTS
    seats: np.ndarray
    arr: np.ndarray
    owner: np.ndarray  # index into csm_emails
    csm_emails: list[str]
    external_id: list[str]
    name: list[str]
    domain: np.ndarray  # str
    start: np.ndarray
    renewal: np.ndarray
    end: np.ndarray
    event_day: np.ndarray  # churn or renewal outcome day, -1 for the others
    signals_churn: np.ndarray  # bool: a churned account whose data declines into its churn
    level_start: np.ndarray
    level_end: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    ramp_days: np.ndarray
    active_day_share: np.ndarray
    login_extra: np.ndarray
    key_feature_share: np.ndarray
    weekend_factor: np.ndarray

    @property
    def size(self) -> int:
        return int(self.account_id.size)

    def archetype_names(self) -> list[str]:
        return [ARCHETYPES[code] for code in self.archetype.tolist()]

    def cohort_names(self) -> list[str]:
        return [COHORTS[code] for code in self.cohort.tolist()]


# --- The plan: accounts -----------------------------------------------------------------------------


class _Portfolio(NamedTuple):
    cohort: np.ndarray
    archetype: np.ndarray
    segment: np.ndarray
    seats: np.ndarray
    arr: np.ndarray


class _Contracts(NamedTuple):
    start: np.ndarray
    renewal: np.ndarray
    end: np.ndarray
    event_day: np.ndarray


class _UsageCurves(NamedTuple):
    level_start: np.ndarray
    level_end: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    signals_churn: np.ndarray


def demo_plan(*, accounts: int, days: int, seed: int = 7, as_of: dt.date) -> DemoPlan:
    """Draw the account-level demo data (no database); ``seed_demo`` writes it and its raw data."""
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    # One generator for the whole plan: the steps below draw from it in this order.
    rng = np.random.default_rng(seed)
    today = epoch_day(as_of)
    ids = np.arange(1, accounts + 1, dtype=np.int64)
    portfolio = _portfolio(rng, accounts)
    contracts = _contracts(rng, portfolio.cohort, today=today, days=days)
    curves = _usage_curves(rng, portfolio, contracts, today=today, days=days)
    name, domain, external_id = _names(rng, ids)
    csm_emails, owner = _owners(rng, accounts)
    archetype = portfolio.archetype
    return DemoPlan(
        seed=seed,
        as_of=as_of,
        days=days,
        account_id=ids,
        archetype=archetype,
        cohort=portfolio.cohort,
        segment=portfolio.segment,
        seats=portfolio.seats,
        arr=portfolio.arr,
        owner=owner,
        csm_emails=csm_emails,
        external_id=external_id,
        name=name,
        domain=domain,
        start=contracts.start,
        renewal=contracts.renewal,
        end=contracts.end,
        event_day=contracts.event_day,
        signals_churn=curves.signals_churn,
        level_start=curves.level_start,
        level_end=curves.level_end,
        t0=curves.t0,
        t1=curves.t1,
        ramp_days=uniform(rng, _RAMP_DAYS, archetype),
        active_day_share=uniform(rng, _ACTIVE_DAY_SHARE, archetype),
        login_extra=uniform(rng, _LOGIN_EXTRA, archetype),
        key_feature_share=uniform(rng, _KEY_FEATURE_SHARE, archetype),
        weekend_factor=rng.uniform(_WEEKEND_FACTOR[0], _WEEKEND_FACTOR[1], accounts),
    )


def _portfolio(rng: np.random.Generator, n: int) -> _Portfolio:
    """Cohort, archetype (given the cohort), segment, seats and ARR per account."""
    cohort = rng.choice(len(COHORTS), size=n, p=_COHORT_SHARE)
    archetype = categorical(rng, _ARCHETYPE_GIVEN_COHORT, cohort)
    segment = rng.choice(len(SEGMENTS), size=n, p=_SEGMENT_SHARE)
    low, high = _SEATS_RANGE[segment, 0], _SEATS_RANGE[segment, 1]
    seats = np.round(np.exp(np.log(low) + (np.log(high) - np.log(low)) * rng.random(n))).astype(np.int64)
    arr = np.round(seats * _PRICE_PER_SEAT[segment] * rng.lognormal(0.0, 0.25, n), -2)
    arr = np.maximum(arr, 1000.0)
    return _Portfolio(cohort, archetype, segment, seats, arr)


def _contracts(rng: np.random.Generator, cohort: np.ndarray, *, today: int, days: int) -> _Contracts:
    """Contract dates by cohort: annual contracts; renewal on the anniversary of the start."""
    n = cohort.size
    tenure = rng.integers(1, 5, n)  # years since the start, for accounts that are not new
    new_start = today - rng.integers(0, 90, n)
    pre_renewal = today + rng.integers(1, 91, n)
    established = today + rng.integers(91, 366, n)
    # Outcome windows: spread over the history but its first 120 days (so every outcome has a
    # 90-day horizon with usage before it); at least the last 90 (renewals) and 60 (churns) days.
    outcome_span = int(np.clip(days - 120, 0, 600))
    renewed_on = today - rng.integers(1, max(91, outcome_span + 1), n)
    churned_on = today - rng.integers(1, max(61, outcome_span + 1), n)
    # Most churns are a renewal that did not happen; the others end a contract in its term (a
    # cancellation, a notice given months ahead): their renewal date lies after the churn day.
    mid_term = rng.random(n) < _MID_TERM_CHURN
    churn_anchor = np.where(mid_term, churned_on + rng.integers(30, 301, n), churned_on)
    renewal = np.select(
        [cohort == NEW, cohort == PRE_RENEWAL, cohort == ESTABLISHED, cohort == RENEWED],
        [add_years(new_start, 1), pre_renewal, established, add_years(renewed_on, 1)],
        churn_anchor,
    )
    anchor = np.select([cohort == RENEWED, cohort == CHURNED], [renewed_on, churn_anchor], renewal)
    start = add_years(anchor, -tenure)
    too_young = (cohort == ESTABLISHED) & (start > today - 90)
    start = np.where(too_young, add_years(anchor, -(tenure + 1)), start)
    start = np.where(cohort == NEW, new_start, start)
    event_day = np.select([cohort == RENEWED, cohort == CHURNED], [renewed_on, churned_on], -1)
    end = np.where(cohort == CHURNED, churned_on, today + 1)
    return _Contracts(start, renewal, end, event_day)


def _usage_curves(
    rng: np.random.Generator, portfolio: _Portfolio, contracts: _Contracts, *, today: int, days: int
) -> _UsageCurves:
    """Usage curve: share of seats active on a weekday, from level_start to level_end over [t0, t1]."""
    n = portfolio.archetype.size
    archetype, cohort, start = portfolio.archetype, portfolio.cohort, contracts.start
    level_start = uniform(rng, _LEVEL_START, archetype)
    end_draw = uniform(rng, _LEVEL_END, archetype)
    level_end = np.where(_LEVEL_END_IS_RELATIVE[archetype], level_start * end_draw, end_draw)
    window_start = today - days + 1
    t0 = np.full(n, window_start, dtype=np.int64)
    t1 = np.full(n, today, dtype=np.int64)
    # Declining accounts that stay: their decline ends anywhere in the history (a customer may
    # decline and stay for months), not only in its last weeks.
    decline_end = today - rng.integers(-10, max(21, days - 60), n)
    decline_start = decline_end - rng.integers(35, 71, n)
    # The churn day is ``end`` for churned accounts, the only ones whose churn curve is used.
    churn_end = contracts.end - rng.integers(0, 6, n)
    churn_start = churn_end - rng.integers(45, 151, n)
    # A dip before a renewal that did not end in a churn.
    dip_end = contracts.event_day - rng.integers(0, 30, n)
    dip_start = dip_end - rng.integers(45, 121, n)
    rise_start = today - rng.integers(45, 76, n)
    rise_end = rise_start + rng.integers(20, 41, n)
    declining = archetype == DECLINING
    recovering = archetype == RECOVERING
    # Most churned accounts (never-adopting ones had little to lose) decline into their churn, some
    # deeply, some barely; the others churn with no warning in the data.
    churn_decline = (cohort == CHURNED) & (archetype != NEVER_ADOPTING) & (rng.random(n) < _CHURN_SIGNALLED)
    dip = (cohort == RENEWED) & ~declining & (rng.random(n) < _RENEWAL_DIP)
    level_end = np.where(churn_decline, level_start * rng.uniform(0.1, 0.8, n), level_end)
    level_end = np.where(dip, level_start * rng.uniform(0.2, 0.7, n), level_end)
    unsignalled_decline = (cohort == CHURNED) & ~churn_decline & declining
    level_end = np.where(unsignalled_decline, level_start * rng.uniform(0.8, 1.1, n), level_end)
    t0 = np.select(
        [churn_decline, dip, declining & ~unsignalled_decline, recovering],
        [churn_start, dip_start, decline_start, rise_start],
        t0,
    )
    t1 = np.select(
        [churn_decline, dip, declining & ~unsignalled_decline, recovering],
        [churn_end, dip_end, decline_end, rise_end],
        t1,
    )
    # New accounts: the story starts after the contract does.
    changes = churn_decline | dip | declining | recovering
    t0 = np.where(changes, np.maximum(t0, start + 10), t0)
    t1 = np.where(changes, np.maximum(t1, t0 + 20), t1)
    return _UsageCurves(level_start, level_end, t0, t1, churn_decline)


def _names(rng: np.random.Generator, ids: np.ndarray) -> tuple[list[str], np.ndarray, list[str]]:
    """Account names, web domains and external ids: every name is unique."""
    n = ids.size
    combos = len(_NAME_PREFIX) * len(_NAME_CORE) * len(_NAME_SUFFIX)
    combo = rng.permutation(combos)[np.arange(n) % combos]
    region = (np.arange(n) // combos) % len(_NAME_REGION)
    prefix = combo // (len(_NAME_CORE) * len(_NAME_SUFFIX))
    core = (combo // len(_NAME_SUFFIX)) % len(_NAME_CORE)
    suffix = combo % len(_NAME_SUFFIX)
    name = join(
        words(_NAME_REGION, " ")[region], words(_NAME_PREFIX)[prefix], " ", words(_NAME_CORE)[core], " ",
        words(_NAME_SUFFIX)[suffix],
    )  # fmt: skip
    domain = join(
        words(_NAME_REGION, "-", lower=True)[region], words(_NAME_PREFIX, "-", lower=True)[prefix],
        words(_NAME_CORE, "-", lower=True)[core], words(_NAME_SUFFIX, lower=True)[suffix], ".example",
    )  # fmt: skip
    width = max(6, len(str(n)))
    external_id = np.char.add("acct-", np.char.zfill(ids.astype(str), width)).tolist()
    return name.tolist(), domain, external_id


def _owners(rng: np.random.Generator, n: int) -> tuple[list[str], np.ndarray]:
    """One CSM per ``ACCOUNTS_PER_CSM`` accounts (at least 3): their emails, and each account's owner."""
    csm_count = max(3, round(n / ACCOUNTS_PER_CSM))
    people = len(FIRST_NAMES) * len(LAST_NAMES)
    person = rng.permutation(people)[np.arange(csm_count) % people]
    generation = np.arange(csm_count) // people
    csm_emails = join(
        words(FIRST_NAMES, ".", lower=True)[person // len(LAST_NAMES)],
        words(LAST_NAMES, lower=True)[person % len(LAST_NAMES)],
        np.where(generation == 0, "", (generation + 1).astype(str)),
        "@example.com",
    ).tolist()
    owner = rng.integers(0, csm_count, n)
    return csm_emails, owner


def usage_level(plan: DemoPlan, sel: slice | np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weekday share of seats active for the selected accounts (rows) on ``day`` (broadcast against
    a column per account), 0 outside the contract; and the curve's progress 0..1."""

    def col(values: np.ndarray) -> np.ndarray:
        return values[sel][:, None]

    t0, t1 = col(plan.t0), col(plan.t1)
    x = np.clip((day - t0) / np.maximum(t1 - t0, 1), 0.0, 1.0)
    progress = x * x * (3.0 - 2.0 * x)
    a, b = col(plan.level_start), col(plan.level_end)
    start = col(plan.start)
    ramp = np.clip((day - start + 1) / col(plan.ramp_days), 0.1, 1.0)
    live = (day >= start) & (day < col(plan.end))
    return np.where(live, (a + (b - a) * progress) * ramp, 0.0), progress
