"""What the predictive benchmark needs of a dataset, whatever its source: accounts with a start
and (maybe) a churn day, a dense (account, day, signal) cube of daily counts, the records the
ingest API takes for any window of days, and the observation dates, cut date and horizon
(pure numpy: no database, no app).

A dataset (``bench.predictive.cdnow``, ``.crm``, ``.telco``) builds a ``Panel`` and says how its
account records look on a day and which records beyond usage and churns it has (renewals,
licenses). The harness pushes them window by window, as a live installation would have received
them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.external.observations import Observations, build_observations

Records = dict[str, list[dict[str, Any]]]  # ingest kind -> records


def day_of(value: np.datetime64) -> dt.date:
    return value.astype("datetime64[D]").astype(dt.date)  # type: ignore[no-any-return]


@dataclass(slots=True)
class Panel:
    """Accounts are rows 0..n-1 of every per-account array."""

    name: str
    ids: list[str]  # external ids, as pushed
    start: np.ndarray  # datetime64[D]: contract start (first purchase, first subscription...)
    churn: np.ndarray  # datetime64[D]: the day of the churned outcome; NaT: none within the data
    first_day: dt.date  # day 0 of the cube
    end: dt.date  # the last day of data: every label must be known by then
    signals: list[str]  # the cube's last axis, as the usage records' signal names
    cube: np.ndarray  # int32 (accounts, days, signals): each signal's count that day
    dates: list[dt.date]  # observation dates (each one scored by the service)
    cut: dt.date  # the service learns as of this day; the later period starts on it
    horizon: int  # churned within this many days after an observation date
    #: accounts as known on a day (the ``accounts`` ingest records)
    account_records: Callable[[dt.date], list[dict[str, Any]]]
    users: np.ndarray | None = None  # int (accounts, days): active users per day; None: 1 on active days
    #: further records dated in ``(after, through]`` (renewals, licenses...), by ingest kind
    extra_records: Callable[[dt.date | None, dt.date], Records] | None = None
    #: rows observed on each date (default: started on or before it and not churned by it)
    present: Callable[[dt.date], np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def days(self) -> int:
        return int(self.cube.shape[1])

    def day_index(self, day: dt.date) -> int:
        return (day - self.first_day).days

    # --- observations --------------------------------------------------------------------------

    def observations(self) -> Observations:
        """Every account observed on each date, labelled churned when its churn day is in
        ``(date, date + horizon]``; ``Observations.account`` holds the row number."""
        rows = np.arange(len(self.ids), dtype=np.int64)
        if self.present is None:
            return build_observations(
                rows, self.start, self.churn, self.dates, horizon_days=self.horizon, data_end=self.end
            )
        parts = []
        for date in sorted(self.dates):
            mask = self.present(date)
            parts.append(
                build_observations(
                    rows[mask], self.start[mask], self.churn[mask], [date], horizon_days=self.horizon, data_end=self.end
                )
            )
        return Observations(*(np.concatenate([getattr(p, f) for p in parts]) for f in Observations.__slots__))

    def earlier(self, obs: Observations) -> np.ndarray:
        """Observations whose label was known on the cut day (``date + horizon <= cut``): what a
        method may be fitted on as of the cut."""
        return obs.day + self.horizon <= np.datetime64(self.cut, "D")  # type: ignore[no-any-return]

    def later(self, obs: Observations) -> np.ndarray:
        """Observations dated on or after the cut day: what every method is judged on."""
        return obs.day >= np.datetime64(self.cut, "D")  # type: ignore[no-any-return]

    # --- records -------------------------------------------------------------------------------

    def _day_range(self, after: dt.date | None, through: dt.date) -> range:
        first = 0 if after is None else self.day_index(after) + 1
        last = min(self.day_index(through), self.days - 1)
        return range(max(first, 0), last + 1)

    def usage_records(self, after: dt.date | None, through: dt.date) -> list[dict[str, Any]]:
        """One row per account and day in ``(after, through]`` with any signal: active users (1, or
        the dataset's count of distinct users), a sign-in per active user, each signal's count."""
        days = self._day_range(after, through)
        if not days:
            return []
        block = self.cube[:, days.start : days.stop, :]
        rows, offsets = np.nonzero(block.sum(axis=2))
        records = []
        for row, offset in zip(rows.tolist(), offsets.tolist(), strict=True):
            counts = block[row, offset]
            users = 1 if self.users is None else max(1, int(self.users[row, days.start + offset]))
            records.append(
                {
                    "account": self.ids[row],
                    "day": (self.first_day + dt.timedelta(days=days.start + offset)).isoformat(),
                    "active_users": users,
                    "logins": users,
                    "signals": {name: int(n) for name, n in zip(self.signals, counts.tolist(), strict=True) if n > 0},
                }
            )
        return records

    def churn_records(self, after: dt.date | None, through: dt.date) -> list[dict[str, Any]]:
        """A ``churned`` outcome on each churn day in ``(after, through]``."""
        low = np.datetime64("0001-01-01") if after is None else np.datetime64(after, "D")
        high = np.datetime64(through, "D")
        known = ~np.isnat(self.churn)
        rows = np.flatnonzero(known & (self.churn > low) & (self.churn <= high))
        return [
            {
                "account": self.ids[row],
                "external_id": f"{self.ids[row]}-churned",
                "kind": "churned",
                "day": day_of(self.churn[row]).isoformat(),
            }
            for row in rows.tolist()
        ]

    def records(self, after: dt.date | None, through: dt.date) -> Records:
        """Everything dated in ``(after, through]`` except the accounts, by ingest kind, in the
        order to push it."""
        out: Records = {"usage": self.usage_records(after, through), "outcomes": self.churn_records(after, through)}
        if self.extra_records is not None:
            for kind, items in self.extra_records(after, through).items():
                out.setdefault(kind, []).extend(items)
        return out
