"""The generated product as the ingest API's records: what a customer of this product would push.

- ``accounts``: one per subscriber (external id ``sn7-<ChurnSim id>``), contract start = the first
  subscription's start, renewal date = the end of the subscription running on the day the record
  describes, ARR = that subscription's MRR x 12, one seat (ChurnSim's social product has a single
  user per account), status churned once the last subscription has ended, and the billing term
  (``monthly`` for ChurnSim's one-month bill period) when the API accepts the field.
- ``usage``: one row per account and day with any event: ``active_users`` 1 (the account's single
  user did something), ``logins`` 1 (an active day is a day the user signed in; the product
  records no login event of its own), and every event type's count that day as a named product
  signal (``post``, ``like``, ``adview``...). Days without events get no row, which the service
  reads as no activity.
- ``outcomes``: ``renewed`` on each subscription start after the first, ``churned`` on the last
  subscription's end when that is within the simulated period.

Every builder takes a day window ``(after, through]`` (or an as-of day) so the data can be
replayed day by day as a live installation would have received it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from bench.external.dataset import Dataset

#: ChurnSim's bill period in months -> the service's billing terms (scoring.stage.BillingTerm);
#: socialnet7 bills monthly only.
BILLING_TERMS = {1: "monthly", 3: "quarterly", 12: "annual", 24: "multi_year", 36: "multi_year"}


def external_id(dataset: Dataset, row: int) -> str:
    return f"sn7-{int(dataset.source_id[row])}"


def account_records(dataset: Dataset, as_of: dt.date, *, billing_term: bool) -> list[dict[str, Any]]:
    """Every account that had started by ``as_of``, as known on that day."""
    day = np.datetime64(as_of, "D")
    records = []
    for row in np.flatnonzero(dataset.start <= day):
        subs = dataset.subscriptions[row]
        churned = not np.isnat(dataset.churn[row]) and dataset.churn[row] <= day
        current = dataset.subscription_on(row, as_of) or subs[-1]  # after churn: the last one
        record: dict[str, Any] = {
            "external_id": external_id(dataset, row),
            "name": f"socialnet7 subscriber {int(dataset.source_id[row])}",
            "contract_start": subs[0].start.isoformat(),
            "renewal_date": current.end.isoformat(),
            "arr": round(current.mrr * 12, 2),
            "seats_purchased": 1,
            "status": "churned" if churned else "active",
        }
        term = BILLING_TERMS.get(current.bill_period_months)
        if billing_term and term is not None:
            record["billing_term"] = term
        records.append(record)
    return records


def _day_range(dataset: Dataset, after: dt.date | None, through: dt.date) -> range:
    first = 0 if after is None else (after - dataset.first_day).days + 1
    last = min((through - dataset.first_day).days, dataset.days - 1)
    return range(max(first, 0), last + 1)


def usage_records(dataset: Dataset, after: dt.date | None, through: dt.date) -> list[dict[str, Any]]:
    """Daily usage rows for the days in ``(after, through]`` (all days up to ``through`` when
    ``after`` is None)."""
    days = _day_range(dataset, after, through)
    if not days:
        return []
    block = dataset.events[:, days.start : days.stop, :]
    rows, offsets = np.nonzero(block.sum(axis=2))
    records = []
    for row, offset in zip(rows.tolist(), offsets.tolist(), strict=True):
        counts = block[row, offset]
        records.append(
            {
                "account": external_id(dataset, row),
                "day": (dataset.first_day + dt.timedelta(days=days.start + offset)).isoformat(),
                "active_users": 1,
                "logins": 1,
                "signals": {name: int(n) for name, n in zip(dataset.event_types, counts.tolist(), strict=True) if n},
            }
        )
    return records


def outcome_records(dataset: Dataset, after: dt.date | None, through: dt.date) -> list[dict[str, Any]]:
    """Renewals and churns dated in ``(after, through]``."""
    records = []

    def within(day: dt.date) -> bool:
        return (after is None or day > after) and day <= through

    for row, subs in enumerate(dataset.subscriptions):
        account = external_id(dataset, row)
        for sub in subs[1:]:
            if within(sub.start):
                records.append(
                    {"account": account, "external_id": f"{account}-renewed-{sub.start.isoformat()}",
                     "kind": "renewed", "day": sub.start.isoformat(), "arr_change": 0.0}
                )  # fmt: skip
        churn = dataset.churn[row]
        if not np.isnat(churn) and within(churn.astype(dt.date)):
            records.append(
                {"account": account, "external_id": f"{account}-churned", "kind": "churned",
                 "day": churn.astype(dt.date).isoformat(), "arr_change": -round(subs[-1].mrr * 12, 2)}
            )  # fmt: skip
    return records
