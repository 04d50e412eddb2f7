"""Observations (account, date, churned within the horizon), the 28-day features of the reference
methods, and the time split (pure numpy: no database, no app)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

#: A day as numpy holds it; NaT means "none" (an account that never churned).
Day = np.datetime64


@dataclass(frozen=True, slots=True)
class Observations:
    """One row per (account, observation date), all arrays of the same length."""

    account: np.ndarray  # int64: the account's id in the source data
    day: np.ndarray  # datetime64[D]: the observation date (the scored day)
    churned: np.ndarray  # bool: churned within (day, day + horizon]
    tenure_days: np.ndarray  # int64: days since the account started

    def __len__(self) -> int:
        return int(self.account.size)

    def subset(self, mask: np.ndarray) -> Observations:
        return Observations(self.account[mask], self.day[mask], self.churned[mask], self.tenure_days[mask])


def monthly_dates(first: dt.date, last: dt.date) -> list[dt.date]:
    """``first``, then the same day of each following month, up to ``last`` inclusive (a day past
    the end of a short month is clipped to its last day)."""
    dates, k = [], 0
    while True:
        year, month = divmod(first.month - 1 + k, 12)
        year, month = first.year + year, month + 1
        next_first = dt.date(year + month // 12, month % 12 + 1, 1)
        day = min(first.day, (next_first - dt.timedelta(days=1)).day)
        candidate = dt.date(year, month, day)
        if candidate > last:
            return dates
        dates.append(candidate)
        k += 1


def build_observations(
    account: np.ndarray,
    start: np.ndarray,
    churn: np.ndarray,
    dates: list[dt.date],
    *,
    horizon_days: int,
    data_end: dt.date,
    min_tenure_days: int = 0,
) -> Observations:
    """Every account active on each date is observed there: started at least ``min_tenure_days``
    before it (``start <= date - min_tenure_days``) and not yet churned (no churn, or churn after
    the date). Its label is a churn in ``(date, date + horizon_days]``. ``churn`` is NaT for an
    account that never churned. Raises ``ValueError`` when a date's horizon reaches past
    ``data_end`` (its labels would not be known yet)."""
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    start = np.asarray(start, dtype="datetime64[D]")
    churn = np.asarray(churn, dtype="datetime64[D]")
    end = np.datetime64(data_end, "D")
    parts: list[tuple[np.ndarray, ...]] = []
    for date in sorted(dates):
        day = np.datetime64(date, "D")
        if day + horizon_days > end:
            raise ValueError(f"{date}: its {horizon_days}-day horizon ends after the data ({data_end})")
        never = np.isnat(churn)
        active = (start <= day - min_tenure_days) & (never | (churn > day))
        label = ~never & (churn > day) & (churn <= day + horizon_days)
        tenure = (day - start).astype(np.int64)
        n = int(active.sum())
        parts.append((account[active], np.full(n, day), label[active], tenure[active]))
    if not parts:
        ints = np.empty(0, dtype=np.int64)
        return Observations(ints, np.empty(0, dtype="datetime64[D]"), np.empty(0, dtype=bool), ints)
    return Observations(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def window_sums(cube: np.ndarray, first_day: dt.date, index: np.ndarray, days: np.ndarray, window: int) -> np.ndarray:
    """For each observation (row ``index[i]`` of ``cube``, day ``days[i]``), the sums of the
    cube's last axis over the ``window`` days ending on that day inclusive: ``cube`` is
    (accounts, days from ``first_day``, k) and the answer (observations, k). Days before
    ``first_day`` count as zero."""
    n_days = cube.shape[1]
    cumulative = np.zeros((cube.shape[0], n_days + 1, cube.shape[2]), dtype=np.float64)
    np.cumsum(cube, axis=1, out=cumulative[:, 1:, :])
    offset = (np.asarray(days, dtype="datetime64[D]") - np.datetime64(first_day, "D")).astype(np.int64)
    if (offset >= n_days).any() or (offset < 0).any():
        raise ValueError("an observation day is outside the cube")
    high = offset + 1
    low = np.clip(high - window, 0, None)
    return cumulative[index, high, :] - cumulative[index, low, :]


def time_split(observations: Observations, split: dt.date) -> tuple[Observations, Observations]:
    """Train: observations dated before ``split``; test: on or after it."""
    before = observations.day < np.datetime64(split, "D")
    return observations.subset(before), observations.subset(~before)
