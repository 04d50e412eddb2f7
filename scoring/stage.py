"""Lifecycle stage per account as of a date, vectorized over arrays of accounts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

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


@dataclass(frozen=True, slots=True)
class StageRules:
    """When an account is in which stage (part of the scoring config, not code).

    ``onboarding_max_days``: an account is onboarding from its contract start until it reaches
    first value (the first day the ``first_value_signal`` product signal occurs) or until this
    many days have passed, whichever comes first.
    ``pre_renewal_days``: an account whose renewal date is this many days away or fewer (a renewal
    date already passed without an outcome included) is pre-renewal; this wins over onboarding.
    """

    onboarding_max_days: int = 90
    pre_renewal_days: int = 90
    first_value_signal: str = "first_value"


def to_day_array(values: object) -> np.ndarray:
    """Convert dates (``datetime.date``, ISO strings or ``None``) to a ``datetime64[D]`` array, NaT for missing."""
    return np.asarray(values, dtype="datetime64[D]")


def assign_stages(
    as_of: dt.date,
    contract_start: np.ndarray,
    renewal_date: np.ndarray,
    first_value_on: np.ndarray,
    rules: StageRules,
) -> np.ndarray:
    """Return each account's stage code (``int8``, an index into ``STAGES``) as of ``as_of``.

    All three arrays are ``datetime64[D]`` of the same length; NaT means unknown (no renewal
    date, first value not reached). Day arithmetic is exact: with the defaults an account is
    onboarding on days 0..89 after its contract start and established from day 90; it is
    pre-renewal when its renewal date is 90 or fewer days away.
    """
    day = np.datetime64(as_of, "D")
    days_since_start = (day - contract_start).astype("timedelta64[D]").astype(np.int64)
    # A missing contract start counts as long ago: no onboarding without a start date.
    days_since_start = np.where(np.isnat(contract_start), np.iinfo(np.int32).max, days_since_start)
    reached_value = ~np.isnat(first_value_on) & (first_value_on <= day)
    onboarding = (days_since_start < rules.onboarding_max_days) & ~reached_value

    days_to_renewal = (renewal_date - day).astype("timedelta64[D]").astype(np.int64)
    pre_renewal = ~np.isnat(renewal_date) & (days_to_renewal <= rules.pre_renewal_days)

    stage = np.full(contract_start.shape, STAGE_CODE[LifecycleStage.ESTABLISHED], dtype=np.int8)
    stage[onboarding] = STAGE_CODE[LifecycleStage.ONBOARDING]
    stage[pre_renewal] = STAGE_CODE[LifecycleStage.PRE_RENEWAL]
    return stage
