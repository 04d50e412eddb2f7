"""Lifecycle stage per account as of a date, vectorized over arrays of accounts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


class LifecycleStage(StrEnum):
    ONBOARDING = "onboarding"
    ESTABLISHED = "established"
    PRE_RENEWAL = "pre_renewal"


#: Stage codes used in arrays: ``STAGES[code]`` is the stage.
STAGES: tuple[LifecycleStage, ...] = (
    LifecycleStage.ONBOARDING,
    LifecycleStage.ESTABLISHED,
    LifecycleStage.PRE_RENEWAL,
)
STAGE_CODE: dict[LifecycleStage, int] = {stage: code for code, stage in enumerate(STAGES)}


class BillingTerm(StrEnum):
    """How often an account's contract renews (account data, or pushed subscriptions)."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"
    MULTI_YEAR = "multi_year"


#: Nominal days per term, for a pre-renewal window given as a share of the term.
TERM_DAYS: dict[BillingTerm, int] = {
    BillingTerm.MONTHLY: 30,
    BillingTerm.QUARTERLY: 91,
    BillingTerm.ANNUAL: 365,
    BillingTerm.MULTI_YEAR: 730,
}


@dataclass(frozen=True, slots=True)
class TermStage:
    """The pre-renewal window for one billing term: ``days`` before the renewal, or ``share`` of
    the term (0-1), or neither (``pre_renewal`` false): accounts on that term are staged by tenure
    alone (onboarding, then established), as a monthly self-serve product usually is."""

    pre_renewal: bool = True
    days: int | None = None
    share: float | None = None

    def window_days(self, term: BillingTerm, default: int) -> int | None:
        """Days before the renewal that count as pre-renewal (None: never pre-renewal)."""
        if not self.pre_renewal:
            return None
        if self.days is not None:
            return self.days
        if self.share is not None:
            return round(self.share * TERM_DAYS[term])
        return default

    def to_dict(self) -> dict[str, object]:
        if not self.pre_renewal:
            return {"pre_renewal": False}
        if self.days is not None:
            return {"pre_renewal_days": self.days}
        if self.share is not None:
            return {"pre_renewal_share": self.share}
        return {}


def term_stage_from_dict(data: dict[str, object]) -> TermStage:
    days = data.get("pre_renewal_days")
    share = data.get("pre_renewal_share")
    return TermStage(
        pre_renewal=bool(data.get("pre_renewal", True)),
        days=None if days is None else int(days),  # type: ignore[call-overload]
        share=None if share is None else float(share),  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class StageRules:
    """When an account is in which stage (part of the scoring config, not code).

    ``onboarding_max_days``: an account is onboarding from its contract start until it reaches
    first value (the first day the ``first_value_signal`` product signal occurs) or until this
    many days have passed, whichever comes first.
    ``pre_renewal_days``: an account whose renewal date is this many days away or fewer (a renewal
    date already passed without an outcome included) is pre-renewal; this wins over onboarding.
    ``terms``: per billing term, its own pre-renewal window (``TermStage``); accounts whose term is
    unknown or not listed use ``pre_renewal_days``.
    """

    onboarding_max_days: int = 90
    pre_renewal_days: int = 90
    first_value_signal: str = "first_value"
    terms: dict[BillingTerm, TermStage] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "onboarding_max_days": self.onboarding_max_days,
            "pre_renewal_days": self.pre_renewal_days,
            "first_value_signal": self.first_value_signal,
        }
        if self.terms:
            out["terms"] = {term.value: rule.to_dict() for term, rule in self.terms.items()}
        return out


def stage_rules_from_dict(data: dict[str, Any]) -> StageRules:
    terms: dict[str, Any] = data.get("terms") or {}
    return StageRules(
        onboarding_max_days=int(data.get("onboarding_max_days", 90)),
        pre_renewal_days=int(data.get("pre_renewal_days", 90)),
        first_value_signal=str(data.get("first_value_signal", "first_value")),
        terms={BillingTerm(t): term_stage_from_dict(dict(r)) for t, r in terms.items()},
    )


def check_stage_rules(rules: StageRules) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not 0 <= rules.onboarding_max_days <= 3650:
        errors["stages.onboarding_max_days"] = ["Must be between 0 and 3650 days."]
    if not 0 <= rules.pre_renewal_days <= 3650:
        errors["stages.pre_renewal_days"] = ["Must be between 0 and 3650 days."]
    for term, rule in rules.terms.items():
        path = f"stages.terms.{term.value}"
        if rule.days is not None and rule.share is not None:
            errors.setdefault(path, []).append("Give pre_renewal_days or pre_renewal_share, not both.")
        if rule.days is not None and not 0 <= rule.days <= 3650:
            errors.setdefault(f"{path}.pre_renewal_days", []).append("Must be between 0 and 3650 days.")
        if rule.share is not None and not (0.0 <= rule.share <= 1.0):
            errors.setdefault(f"{path}.pre_renewal_share", []).append("A share of the term is between 0 and 1.")
    return errors


def to_day_array(values: object) -> np.ndarray:
    """Convert dates (``datetime.date``, ISO strings or ``None``) to a ``datetime64[D]`` array, NaT for missing."""
    return np.asarray(values, dtype="datetime64[D]")


def assign_stages(
    as_of: dt.date,
    contract_start: np.ndarray,
    renewal_date: np.ndarray,
    first_value_on: np.ndarray,
    rules: StageRules,
    *,
    term: np.ndarray | None = None,
) -> np.ndarray:
    """Return each account's stage code (``int8``, an index into ``STAGES``) as of ``as_of``.

    All three arrays are ``datetime64[D]`` of the same length; NaT means unknown (no renewal
    date, first value not reached). Day arithmetic is exact: with the defaults an account is
    onboarding on days 0..89 after its contract start and established from day 90; it is
    pre-renewal when its renewal date is 90 or fewer days away. ``term`` (object array of billing
    term values or None) picks each account's pre-renewal window from ``rules.terms``.
    """
    day = np.datetime64(as_of, "D")
    days_since_start = (day - contract_start).astype("timedelta64[D]").astype(np.int64)
    # A missing contract start counts as long ago: no onboarding without a start date.
    days_since_start = np.where(np.isnat(contract_start), np.iinfo(np.int32).max, days_since_start)
    reached_value = ~np.isnat(first_value_on) & (first_value_on <= day)
    onboarding = (days_since_start < rules.onboarding_max_days) & ~reached_value

    days_to_renewal = (renewal_date - day).astype("timedelta64[D]").astype(np.int64)
    window = _pre_renewal_window(rules, term, contract_start.shape)
    pre_renewal = ~np.isnat(renewal_date) & (days_to_renewal <= window)

    stage = np.full(contract_start.shape, STAGE_CODE[LifecycleStage.ESTABLISHED], dtype=np.int8)
    stage[onboarding] = STAGE_CODE[LifecycleStage.ONBOARDING]
    stage[pre_renewal] = STAGE_CODE[LifecycleStage.PRE_RENEWAL]
    return stage


def _pre_renewal_window(rules: StageRules, term: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Each account's pre-renewal window in days; the int64 minimum (no renewal date is that far
    past) for a term staged by tenure alone."""
    window = np.full(shape, rules.pre_renewal_days, dtype=np.int64)
    if term is None or not rules.terms:
        return window
    for billing_term, rule in rules.terms.items():
        days = rule.window_days(billing_term, rules.pre_renewal_days)
        window[term == billing_term.value] = np.iinfo(np.int64).min if days is None else days
    return window
